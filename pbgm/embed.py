"""pbgm inside a program, in one call: a decision point from a bundle or from documents.

    import pbgm

    pdp = pbgm.load_pdp("examples/policies", policy_group="operational-limits")
    pdp.is_permitted(subject="op-anna", resource={"asset_id": "bess-01"}, action="write")

`load_pdp(source)` takes a bundle (a `.json`/`.yaml` file or a bundle directory, as
`pbgm policy import` reads them) or an iterable of `pbgm/v1` policy documents
(mappings). Every document is validated first (a `ValidationError` lists every
problem); the policies are published at once. From a bundle, the decision point
combines each policy group with the group's own algorithm (all groups together with
deny-overrides when `policy_group` is None, as `pbgm decide` does) and fills
`subject.groups` from the bundle's memberships; from documents, they are combined
with `combining` and `subject.groups` comes from `memberships` if given.

For the full lifecycle (versions, publishing, grants, an SQL repository) use
`pbgm.pap.PolicyAdministrationPoint` over a `pbgm.store`; `load_pdp` is the short
path for a service that only decides.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pbgm.bundle import import_bundle, read_bundle
from pbgm.errors import Problem, ValidationError
from pbgm.model import Policy
from pbgm.pap import PolicyAdministrationPoint, checked_document
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import parse_policy_set
from pbgm.store.memory import MemoryStore

ACTOR = "pbgm.embed"
Source = str | os.PathLike[str] | Iterable[Mapping[str, Any]]


def load_pdp(
    source: Source,
    *,
    policy_group: str | None = None,
    combining: str = "deny-overrides",
    memberships: Mapping[str, Iterable[str]] | None = None,
) -> PolicyDecisionPoint:
    """A ready `PolicyDecisionPoint` over a bundle path or policy documents (module
    docstring). `policy_group` keeps only that group's policies."""
    if isinstance(source, str | os.PathLike):
        return _from_bundle(source, policy_group)
    checked = _checked(list(source))
    kept = [p for d, p in checked if policy_group is None or d["policy_group"] == policy_group]
    header = {"id": policy_group or "policies", "policy_combining": combining}
    policies = parse_policy_set(header, kept)
    known = {who: sorted(groups) for who, groups in (memberships or {}).items()}
    pip = PolicyInformationPoint([GroupMembershipProvider(lambda who: known.get(who, []))])
    return PolicyDecisionPoint(policies, pip=pip)


def _checked(documents: list[Mapping[str, Any]]) -> list[tuple[dict[str, Any], Policy]]:
    """Each document validated; every problem of every document listed at once."""
    problems: list[Problem] = []
    checked: list[tuple[dict[str, Any], Policy]] = []
    for number, document in enumerate(documents):
        try:
            checked.append(checked_document(document))
        except ValidationError as error:
            at = f"$[{number}]"
            problems += [
                Problem(at + p.path.removeprefix("$"), p.code, p.message) for p in error.problems
            ]
    if problems:
        raise ValidationError(problems)
    return checked


def _from_bundle(path: str | os.PathLike[str], policy_group: str | None) -> PolicyDecisionPoint:
    store = MemoryStore()
    import_bundle(store, read_bundle(Path(path)), actor=ACTOR, publish=True)
    pap = PolicyAdministrationPoint(store)
    pip = PolicyInformationPoint([GroupMembershipProvider(store.groups_of)])
    return PolicyDecisionPoint(pap.load_policy_set(policy_group), pip=pip)
