"""The repository as the broker plan needs it: principals, `data_access` policies, deciders.

`read_directory(store)` reads the users and service accounts (with their groups and
whether they are enabled), the published `data_access` policies, and compiles one
decision point per policy group of those policies (the same policy set the relay and
the event service decide with). It also says how long the result stays true by
itself: until the next `valid_from`/`valid_until` of a policy in those groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adapters.broker._plan import DataPolicy, Directory, Principal, data_policy, next_boundary
from pbgm.model import PolicyStatus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import Decider
from pbgm.store.base import Store

DATA_ACCESS = "data_access"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A directory, the store revision it was read at, and seconds until a policy of it
    becomes valid or expires (infinity when none will)."""

    directory: Directory
    revision: int
    valid_for_s: float


def read_directory(store: Store, now: datetime) -> Snapshot:
    """Read everything the plan is compiled from (revision first: a change made while
    reading shows as a newer revision at the next check)."""
    revision = store.revision()
    principals = _principals(store)
    records = store.list_policies(policy_type=DATA_ACCESS, status=PolicyStatus.PUBLISHED)
    policies = tuple(
        data_policy(r.id, r.policy_group, (r.published_document or r.document).get("content", {}))
        for r in records
    )
    deciders: dict[str, Decider] = {}
    boundary = float("inf")
    pap = PolicyAdministrationPoint(store)
    for group in sorted({p.policy_group for p in policies}):
        policy_set = pap.load_policy_set(group)
        deciders[group] = PolicyDecisionPoint(policy_set)
        boundary = min(boundary, next_boundary(policy_set.policies, now))
    return Snapshot(Directory(principals, policies, deciders), revision, boundary)


def _principals(store: Store) -> tuple[Principal, ...]:
    found: dict[str, Principal] = {}
    for user in store.list_users():
        found[user.name] = Principal(user.name, _groups(store, user.name), user.enabled)
    for account in store.list_service_accounts():
        groups = _groups(store, account.client_id)
        found[account.client_id] = Principal(account.client_id, groups, account.enabled)
    return tuple(found[name] for name in sorted(found))


def _groups(store: Store, principal: str) -> tuple[str, ...]:
    return tuple(sorted(store.groups_of(principal)))


__all__ = ["DataPolicy", "Snapshot", "read_directory"]
