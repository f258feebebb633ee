"""`pbgm decide` and `pbgm flexoffer validate`: answers whose exit status means something.

A request document is `{"subject": {...}, "resource": {...}, "action": {...},
"environment": {...}}` with an optional `"now"` (ISO 8601, overridden by `--now`) and
`"memberships"` (`{principal: [group, ...]}`, added to the repository's memberships),
the shape of the conformance corpus requests. The `Response` is printed as JSON
(both in `pbgm.messages` form).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pbgm.cli._app import DECISION_STATUS, Env, main, parse_now, pass_env
from pbgm.errors import InvalidInputError, NotFoundError, Problem, ValidationError
from pbgm.flexoffer import validate_offer
from pbgm.messages import request_from_json, request_problems, response_to_json
from pbgm.model import PolicyStatus, Request, utc_now
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import load_file, parse_datetime
from pbgm.store.base import PolicyRecord

DOCUMENT_KEYS = ("now", "memberships")


@main.command("decide")
@click.argument(
    "request_file", metavar="REQUEST.json", type=click.Path(exists=True, path_type=Path)
)
@click.option("--group", "policy_group", help="Evaluate only this policy group.")
@click.option("--now", help="Decision time, ISO 8601 with a timezone (default: now).")
@pass_env
def decide(env: Env, request_file: Path, policy_group: str | None, now: str | None) -> None:
    """Ask the PDP about a request; print the Response as JSON.

    Exit 0 on Permit, 10 Deny, 11 NotApplicable, 12 Indeterminate.
    """
    document = load_file(request_file)
    request, memberships, at = request_from_document(document)
    pdp = _decision_point(env, policy_group, memberships)
    response = pdp.decide(request, now=parse_now(now) if now else at or utc_now())
    click.echo(json.dumps(response_to_json(response), ensure_ascii=False, indent=2))
    click.get_current_context().exit(DECISION_STATUS[response.decision])


def _decision_point(
    env: Env, policy_group: str | None, memberships: Mapping[str, Any]
) -> PolicyDecisionPoint:
    store = env.store

    def groups_of(principal: str) -> list[str]:
        return sorted({*store.groups_of(principal), *memberships.get(principal, ())})

    pip = PolicyInformationPoint([GroupMembershipProvider(groups_of)])
    return PolicyDecisionPoint(env.pap.load_policy_set(policy_group), pip=pip)


@main.group()
def flexoffer() -> None:
    """FlexOffers."""


@flexoffer.command("validate")
@click.argument("offer_file", metavar="OFFER.json", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policy",
    "policy_id",
    help="The published `flexoffer` policy to check against (default: the only one).",
)
@click.option("--now", help="Time of receipt, ISO 8601 with a timezone (default: now).")
@pass_env
def flexoffer_validate(env: Env, offer_file: Path, policy_id: str | None, now: str | None) -> None:
    """Validate a FlexOffer against its template policy; list every violation."""
    offer = load_file(offer_file)
    record = _flexoffer_policy(env, policy_id)
    template = (record.published_document or {}).get("content") or {}
    violations = validate_offer(offer, template, now=parse_now(now))
    name = offer.get("id", offer_file.name) if isinstance(offer, Mapping) else offer_file.name
    if violations:
        raise ValidationError(
            [Problem(v.path, v.code, v.message) for v in violations],
            f"offer `{name}` breaks {len(violations)} rule(s) of policy `{record.id}`",
        )
    env.emit(
        {"valid": True, "offer": name, "policy": record.id, "violations": []},
        f"offer `{name}` is valid under policy `{record.id}`",
    )


def _flexoffer_policy(env: Env, policy_id: str | None) -> PolicyRecord:
    if policy_id is None:
        found = env.store.list_policies(policy_type="flexoffer", status=PolicyStatus.PUBLISHED)
        if len(found) != 1:
            names = ", ".join(f"`{r.id}`" for r in found) or "none"
            raise InvalidInputError(
                f"name the template with `--policy` (published flexoffer policies: {names})"
            )
        return found[0]
    record = env.store.get_policy(policy_id)
    if record.published_document is None or record.status is not PolicyStatus.PUBLISHED:
        raise NotFoundError(f"policy `{policy_id}` is not published")
    if record.type != "flexoffer":
        raise InvalidInputError(
            f"policy `{policy_id}` is of type `{record.type}`, not `flexoffer`",
            code="id_type_mismatch",
        )
    return record


def request_from_document(
    document: Any,
) -> tuple[Request, dict[str, list[str]], datetime | None]:
    """The request, extra memberships and `now` of a request document.

    Raises `ValidationError` listing every problem of the document.
    """
    problems = request_problems(document, extra=DOCUMENT_KEYS)
    if not isinstance(document, Mapping):
        raise ValidationError(problems)
    memberships = _memberships(document.get("memberships") or {}, problems)
    now = _now(document.get("now"), problems)
    if problems:
        raise ValidationError(problems)
    return request_from_json(document, extra=DOCUMENT_KEYS), memberships, now


def _memberships(value: Any, problems: list[Problem]) -> dict[str, list[str]]:
    if isinstance(value, Mapping) and all(
        isinstance(groups, list) and all(isinstance(g, str) for g in groups)
        for groups in value.values()
    ):
        return {str(k): list(v) for k, v in value.items()}
    problems.append(Problem("$.memberships", "type", "expected `{principal: [group, ...]}`"))
    return {}


def _now(value: Any, problems: list[Problem]) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value, "$.now")
    except ValidationError as error:
        problems.extend(error.problems)
        return None
