"""Try it: a request decided by the published policies of a group, and by a draft beside them.

The published set is what the API's `POST /api/v1/decisions?policy_group=`
decides with (`PolicyAdministrationPoint.load_policy_set`); the draft set is
the same with one policy replaced by a version that is not published yet
(or added, if it never was). Both are decided at the same moment with the
same group memberships, so the difference is the draft's effect. For each
deciding policy the page names the rules that applied: each rule is decided
alone, first-applicable, and kept when it gives the policy's decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint, render_template, request

from pbgm.errors import NotFoundError, PbgmError, Problem, ValidationError
from pbgm.messages import request_from_json, response_to_json
from pbgm.model import Policy, PolicySet, Request, Response
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import load_document, parse_policy
from pbgm.store.base import AuditEntry, AuditQuery, PolicyQuery
from pbgm_admin._gui import Gui, Visibility

EXAMPLE = {
    "subject": {"id": "op-anna"},
    "resource": {"asset_id": "bess-01"},
    "action": {"id": "write"},
}
MAX_REQUEST_BYTES = 64 * 1024
LOG_SHOWN = 20
LOG_BATCH = 100
LOG_SCANNED = 1000
"""Decision log entries read at most to find the `LOG_SHOWN` a user may see."""


def _decide(
    gui: Gui, policy_set: PolicySet, asked: Request
) -> tuple[Response, dict[str, list[str]]]:
    pip = PolicyInformationPoint([GroupMembershipProvider(gui.store.groups_of)])
    pdp = PolicyDecisionPoint(policy_set, pip=pip, clock=gui.clock)
    now = gui.now()
    answer = pdp.decide(asked, now=now)
    rules = {
        p.id: _deciding_rules(p, asked, pip, answer, gui)
        for p in policy_set.policies
        if p.id in answer.policy_ids
    }
    return answer, rules


def _deciding_rules(
    policy: Policy, asked: Request, pip: PolicyInformationPoint, answer: Response, gui: Gui
) -> list[str]:
    found = []
    for rule in policy.rules:
        alone = replace(policy, rules=(rule,), rule_combining="first-applicable")
        single = PolicyDecisionPoint(PolicySet("explain", (alone,)), pip=pip, clock=gui.clock)
        if single.decide(asked, now=gui.now()).decision is answer.decision:
            found.append(rule.id)
    return found


def _draft_set(
    gui: Gui, published: PolicySet, policy_id: str, version: int | None
) -> tuple[PolicySet, int]:
    record = gui.store.get_policy(policy_id)
    number = version or record.version
    document = gui.store.get_policy_version(policy_id, number).document
    draft = parse_policy(document, version=number)
    kept = tuple(p for p in published.policies if p.id != policy_id)
    policies = tuple(sorted((*kept, draft), key=lambda p: p.id))
    return replace(published, policies=policies), number


def _request(text: str) -> Request:
    data = load_document(text.encode(), source="request", max_bytes=MAX_REQUEST_BYTES)
    return request_from_json(data)


def _decided_group(
    gui: Gui, decided: Mapping[str, Any], seen: Visibility, groups: dict[str, str | None]
) -> str | None:
    """The policy group of a logged decision when the user may read it, else None.

    The log names the deciding policies, not the group asked: a decision is the
    user's to see when it has deciding policies and the user may read every one of
    them (by its group now, or a grant on the policy). A decision that no policy
    made (NotApplicable) could have been asked of any group: global administrators
    only.
    """
    ids = [i for i in decided.get("policy_ids") or () if isinstance(i, str)]
    if not ids:
        return "" if seen.groups is None else None
    found = []
    for policy_id in ids:
        if policy_id not in groups:
            try:
                groups[policy_id] = gui.store.get_policy(policy_id).policy_group
            except NotFoundError:
                groups[policy_id] = None
        group = groups[policy_id]
        if group is None or not seen.allows(group, policy_id):
            return None
        found.append(group)
    return found[0]


def _shown(gui: Gui, entry: AuditEntry, seen: Visibility, groups: dict[str, str | None]) -> Any:
    """The entry's first decision the user may see, as the page lists it (or None)."""
    for decided in entry.details.get("decisions", []):
        group = _decided_group(gui, decided, seen, groups) if isinstance(decided, dict) else None
        if group is not None:
            return {
                "id": entry.id,
                "at": entry.at,
                "decision": decided.get("decision"),
                "group": group,
                "request": json.dumps(decided.get("request", {}), indent=2),
            }
    return None


def logged_request(gui: Gui, entry_id: int) -> Any:
    """Decision log entry `entry_id` as the page lists it, if the user may see it."""
    query = AuditQuery(object_type="decision", action_prefix="decision", before_id=entry_id + 1)
    entries = gui.store.search_audit(query, limit=1)
    if not entries or entries[0].id != entry_id:
        return None
    return _shown(gui, entries[0], gui.visibility(), {})


def logged_requests(gui: Gui, *, limit: int = LOG_SHOWN) -> list[Any]:
    """The latest decisions of the log the user may see (as logged: masked values stay
    masked), newest first; at most `LOG_SCANNED` entries are read to find them."""
    seen = gui.visibility()
    groups: dict[str, str | None] = {}
    found: list[Any] = []
    scanned, before = 0, None
    while len(found) < limit and scanned < LOG_SCANNED:
        query = AuditQuery(object_type="decision", action_prefix="decision", before_id=before)
        entries = gui.store.search_audit(query, limit=LOG_BATCH)
        for entry in entries:
            shown = _shown(gui, entry, seen, groups)
            if shown is not None and len(found) < limit:
                found.append(shown)
        scanned += len(entries)
        if len(entries) < LOG_BATCH:
            break
        before = entries[-1].id
    return found


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    def page(status: int = 200, **values: Any) -> tuple[str, int]:
        seen = gui.visibility()
        groups = gui.groups_with_read()
        group = values.pop("group", "") or (groups[0] if groups else "")
        drafts = (
            gui.store.page_policies(
                PolicyQuery(
                    visible_groups=seen.groups, visible_ids=seen.ids, policy_group=group or None
                ),
                limit=200,
            ).records
            if group
            else ()
        )
        logged = logged_requests(gui)
        values.setdefault("text", json.dumps(EXAMPLE, indent=2))
        return render_template(
            "try.html", groups=groups, group=group, drafts=drafts, logged=logged, **values
        ), status

    @blueprint.get("/try", endpoint="try_it")
    def try_it() -> tuple[str, int]:
        logged = request.args.get("log", "")
        group = request.args.get("policy_group", "")
        picked = logged_request(gui, int(logged)) if logged.isdigit() and len(logged) < 16 else None
        if picked is None:
            return page(group=group)
        return page(group=picked["group"] or group, text=picked["request"])

    @blueprint.post("/try", endpoint="run_try_it")
    def run_try_it() -> tuple[str, int]:
        group = request.form.get("policy_group", "")
        text = request.form.get("request", "")
        draft_id = request.form.get("draft_policy_id", "").strip()
        version_text = request.form.get("draft_version", "").strip()
        values: dict[str, Any] = {
            "group": group,
            "text": text,
            "draft_id": draft_id,
            "draft_version": version_text,
        }
        try:
            asked = _request(text)
        except PbgmError as error:
            problems = (
                list(error.problems)
                if isinstance(error, ValidationError)
                else [Problem("$", error.code, error.message)]
            )
            return page(422, problems=problems, **values)
        published = gui.pap.load_policy_set(group)
        answer, rules = _decide(gui, published, asked)
        values["published"] = {
            "response": response_to_json(answer),
            "rules": rules,
            "count": len(published.policies),
        }
        if draft_id:
            try:
                version = int(version_text) if version_text.isdigit() else None
                draft_set, number = _draft_set(gui, published, draft_id, version)
            except NotFoundError as error:
                return page(422, problems=[Problem("$.draft", error.code, error.message)], **values)
            draft_answer, draft_rules = _decide(gui, draft_set, asked)
            values["draft"] = {
                "response": response_to_json(draft_answer),
                "rules": draft_rules,
                "policy_id": draft_id,
                "version": number,
                "differs": draft_answer != answer,
            }
        return page(**values)
