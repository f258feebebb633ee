"""The access-control workload of the PDP benchmark, and its plain-Python reference.

Per `docs/benchmarks.md`: 1,000 users `u0..u999`, 100 groups `g0..g99` (`g0..g9` are
admin groups), each user in 1-3 groups; N policies `policy:<k>` of a type among
`flexoffer`, `operational_limits`, `data_access` and `service_trigger`, each granting
`read` to 1-3 groups and 0-2 users directly and `write` to exactly one admin group.

Semantics every engine must reproduce (`reference_decide`): `write` is permitted to the
members of the policy's admin group; `read` to its read groups and users and, since a
permission level includes the ones below it (as pbgm grants do), to the members of its
write group too. Anything else, including an unknown subject, resource or action, is denied.

Requests `(subject, action, resource)`: 80 % read, 20 % write, on a resource drawn
uniformly; with probability 0.7 the subject is drawn among those granted that action on
that resource, otherwise among those not granted, so about 70 % are permitted. Everything
is drawn from a seeded `random.Random`: the same seed gives the same workload.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

USERS = 1_000
GROUPS = 100
ADMIN_GROUPS = 10
POLICY_TYPES = ("flexoffer", "operational_limits", "data_access", "service_trigger")
ACTIONS = ("read", "write")
SEED = 20_260_101
WRITE_SHARE = 0.2
PERMITTED_SHARE = 0.7

Triple = tuple[str, str, str]
"""A request as every engine receives it: (subject, action, resource)."""


@dataclass(frozen=True, slots=True)
class Grants:
    """Who may do what on one policy."""

    id: str
    type: str
    read_groups: tuple[str, ...]
    read_users: tuple[str, ...]
    write_group: str


@dataclass(frozen=True)
class Workload:
    """Users with their groups, and the grants of N policies (in id order of creation)."""

    memberships: dict[str, tuple[str, ...]]
    policies: tuple[Grants, ...]
    seed: int

    @property
    def users(self) -> list[str]:
        return list(self.memberships)

    @property
    def groups(self) -> list[str]:
        return [f"g{i}" for i in range(GROUPS)]

    @cached_property
    def by_id(self) -> dict[str, Grants]:
        return {p.id: p for p in self.policies}

    @cached_property
    def group_sets(self) -> dict[str, frozenset[str]]:
        return {user: frozenset(groups) for user, groups in self.memberships.items()}

    @cached_property
    def members(self) -> dict[str, tuple[str, ...]]:
        """The users of each group, in user order."""
        members: dict[str, list[str]] = {g: [] for g in self.groups}
        for user, groups in self.memberships.items():
            for group in groups:
                members[group].append(user)
        return {g: tuple(users) for g, users in members.items()}


def make_workload(policies: int, seed: int = SEED) -> Workload:
    """The users, groups and `policies` policies drawn from `seed`."""
    rng = random.Random(seed)
    groups = [f"g{i}" for i in range(GROUPS)]
    memberships = {
        f"u{i}": tuple(sorted(rng.sample(groups, rng.randint(1, 3)), key=_number))
        for i in range(USERS)
    }
    users = list(memberships)
    return Workload(
        memberships, tuple(_grants(rng, k, groups, users) for k in range(policies)), seed
    )


def _grants(rng: random.Random, k: int, groups: list[str], users: list[str]) -> Grants:
    return Grants(
        id=f"policy:{k}",
        type=rng.choice(POLICY_TYPES),
        read_groups=tuple(rng.sample(groups, rng.randint(1, 3))),
        read_users=tuple(rng.sample(users, rng.randint(0, 2))),
        write_group=groups[rng.randrange(ADMIN_GROUPS)],
    )


def _number(name: str) -> int:
    return int(name[1:])


# --- the reference -------------------------------------------------------------------


def reference_decide(workload: Workload, subject: str, action: str, resource: str) -> bool:
    """The decision every engine must return: True is Permit, anything else False."""
    grants = workload.by_id.get(resource)
    groups = workload.group_sets.get(subject)
    if grants is None or groups is None:
        return False
    if action == "write":
        return grants.write_group in groups
    if action == "read":
        return (
            subject in grants.read_users
            or grants.write_group in groups
            or not groups.isdisjoint(grants.read_groups)
        )
    return False


def granted(workload: Workload, action: str, resource: str) -> frozenset[str]:
    """The users the workload allows `action` on `resource` (built from the grants,
    independently of `reference_decide`, so that each checks the other)."""
    grants = workload.by_id[resource]
    holders = set(workload.members[grants.write_group])
    if action == "read":
        holders.update(grants.read_users)
        for group in grants.read_groups:
            holders.update(workload.members[group])
    return frozenset(holders)


# --- requests ------------------------------------------------------------------------


def make_requests(workload: Workload, count: int, seed: int) -> list[Triple]:
    """`count` requests drawn from `seed` (see the module docstring for the mix)."""
    rng = random.Random(seed)
    return [_request(rng, workload) for _ in range(count)]


def _request(rng: random.Random, workload: Workload) -> Triple:
    users = workload.users
    while True:
        action = "write" if rng.random() < WRITE_SHARE else "read"
        resource = workload.policies[rng.randrange(len(workload.policies))].id
        holders = granted(workload, action, resource)
        want = rng.random() < PERMITTED_SHARE
        if (want and holders) or (not want and len(holders) < len(users)):
            return _pick(rng, users, holders, want), action, resource


def _pick(rng: random.Random, users: Sequence[str], holders: frozenset[str], inside: bool) -> str:
    if inside:
        return rng.choice(sorted(holders, key=_number))
    while True:
        user = users[rng.randrange(len(users))]
        if user not in holders:
            return user


def streams(workload: Workload, warmup: int, measured: int) -> tuple[list[Triple], list[Triple]]:
    """A warm-up stream and a measured stream, from different seeds."""
    return (
        make_requests(workload, warmup, workload.seed + 1),
        make_requests(workload, measured, workload.seed + 2),
    )


def iter_grant_statements(workload: Workload) -> Iterator[tuple[str, str, str, str]]:
    """(principal kind, principal, permission, policy id): the grants as a list of rows."""
    for p in workload.policies:
        for group in p.read_groups:
            yield "group", group, "read", p.id
        for user in p.read_users:
            yield "user", user, "read", p.id
        yield "group", p.write_group, "write", p.id
