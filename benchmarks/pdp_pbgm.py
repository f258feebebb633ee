"""pbgm in the PDP benchmark: the decision point alone, and behind the Access Point.

The decision point is given the policies the idiomatic pbgm way: one `pbgm/v1` document
per resource, targeted on `resource.id`, with a `read` rule (the groups by
`at-least-one-member-of(subject.groups, [...])`, the users by `is-in(subject.id, [...])`)
and a `write` rule for the admin group, rules combined by `permit-overrides` and
policies by `deny-unless-permit`. The documents carry no `content`: the decision does
not read it and the peers load none (they are otherwise valid pbgm/v1). Loading parses
and compiles the documents one at a time into one compiled set
(`PolicyDecisionPoint.load_documents`, pbgm's loader for many policies). Group memberships
reach it in one of two ways, measured apart: resolved before timing into
`subject.groups` (as Casbin's role manager and Cedar's entity parents hold them ready),
or fetched per request by the PIP (`GroupMembershipProvider` over a dict).

The Access Point reads users, groups, memberships and grants from a migrated SQLite file
and answers `AccessPoint.authorize(principal, action, {"policy_id": ...})`: per request
it asks the store for its revision, the principal and its groups, then decides with the
PDP compiled from the grants (`pbgm.access.compile_grants`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.pdp_peers import Decide
from benchmarks.pdp_workload import Grants, Triple, Workload, iter_grant_statements
from pbgm.access import AccessPoint, Principal
from pbgm.model import Decision, Permission, Request, utc_now
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import FORMAT
from pbgm.store.base import Grant, User
from pbgm.store.factory import open_store

POLICY_GROUP = "benchmark"
ACTOR = "benchmark"
PERMIT = Decision.PERMIT


def policy_document(grants: Grants) -> dict[str, Any]:
    """The `pbgm/v1` document of one workload policy."""
    readers = [*grants.read_groups, grants.write_group]  # write includes read
    read_condition: dict[str, Any] = _member_of(readers)
    if grants.read_users:
        users = {"apply": "is-in", "args": [{"attr": "subject.id"}, list(grants.read_users)]}
        read_condition = {"apply": "or", "args": [read_condition, users]}
    return {
        "format": FORMAT,
        "id": grants.id,
        "type": grants.type,
        "policy_group": POLICY_GROUP,
        "target": {"resource": {"id": grants.id}},
        "rule_combining": "permit-overrides",
        "rules": [
            _rule("read", read_condition),
            _rule("write", _member_of([grants.write_group])),
        ],
        "content": {},
    }


def _member_of(groups: list[str]) -> dict[str, Any]:
    return {"apply": "at-least-one-member-of", "args": [{"attr": "subject.groups"}, groups]}


def _rule(action: str, condition: dict[str, Any]) -> dict[str, Any]:
    target = {"action": {"id": action}}
    return {"id": action, "effect": "Permit", "target": target, "condition": condition}


SET_DOCUMENT = {"id": POLICY_GROUP, "policy_combining": "deny-unless-permit"}


def loaded(documents: list[dict[str, Any]], pip: PolicyInformationPoint | None = None) -> Decide:
    """The decide function of a decision point loaded with the documents."""
    pdp = PolicyDecisionPoint(pip=pip)
    pdp.load_documents(SET_DOCUMENT, documents)
    decide = pdp.decide
    return lambda request: decide(request).decision is PERMIT


class PbgmPdpEngine:
    """`PolicyDecisionPoint.decide(request)`; requests carry `subject.groups`."""

    name = "pbgm PDP"
    note = "decide(request) on the compiled set; subject.groups resolved before timing"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.workload = workload
        self.documents = [policy_document(p) for p in workload.policies]

    def load(self) -> Decide:
        return loaded(self.documents)

    def prepare(self, triple: Triple) -> Request:
        subject, action, resource = triple
        groups = self.workload.memberships.get(subject, ())
        return Request(
            subject={"id": subject, "groups": groups},
            resource={"id": resource},
            action={"id": action},
        )


class PbgmPipEngine(PbgmPdpEngine):
    """As `PbgmPdpEngine`, but `subject.groups` is fetched by the PIP on every decision."""

    name = "pbgm PDP+PIP"
    note = "decide(request); subject.groups fetched per request by GroupMembershipProvider"

    def load(self) -> Decide:
        memberships = dict(self.workload.memberships)
        provider = GroupMembershipProvider(lambda subject: memberships.get(subject, ()))
        return loaded(self.documents, PolicyInformationPoint([provider]))

    def prepare(self, triple: Triple) -> Request:
        subject, action, resource = triple
        return Request(subject={"id": subject}, resource={"id": resource}, action={"id": action})


class PbgmPdpBuiltEngine(PbgmPdpEngine):
    """As `PbgmPdpEngine`, with the `Request` built inside the timed call from the plain
    triple and the subject's groups, as a caller builds it per decision (and as the
    peers build their input: OPA's JSON text, `benchmarks.pdp_peers.OpaBuiltEngine`)."""

    name = "pbgm PDP, request built per call"
    note = "decide(Request(subject, resource, action)) with the Request built in the timed call"

    def load(self) -> Decide:
        pdp = PolicyDecisionPoint()
        pdp.load_documents(SET_DOCUMENT, self.documents)
        decide = pdp.decide
        return lambda t: (
            decide(Request({"id": t[0], "groups": t[1]}, {"id": t[3]}, {"id": t[2]})).decision
            is PERMIT
        )

    def prepare(self, triple: Triple) -> tuple[str, tuple[str, ...], str, str]:
        subject, action, resource = triple
        return subject, self.workload.memberships.get(subject, ()), action, resource


class PbgmPipBuiltEngine(PbgmPipEngine):
    """As `PbgmPipEngine`, with the `Request` built inside the timed call."""

    name = "pbgm PDP+PIP, request built per call"
    note = "decide(Request(...)) built in the timed call; subject.groups fetched by the PIP"

    def load(self) -> Decide:
        memberships = dict(self.workload.memberships)
        provider = GroupMembershipProvider(lambda subject: memberships.get(subject, ()))
        pdp = PolicyDecisionPoint(pip=PolicyInformationPoint([provider]))
        pdp.load_documents(SET_DOCUMENT, self.documents)
        decide = pdp.decide
        return lambda t: (
            decide(Request({"id": t[0]}, {"id": t[2]}, {"id": t[1]})).decision is PERMIT
        )

    def prepare(self, triple: Triple) -> Triple:  # type: ignore[override]
        return triple


class PbgmAccessPointEngine:
    """`AccessPoint.authorize` over a migrated SQLite file holding the grants."""

    name = "pbgm AP+SQL"
    note = "AccessPoint(SqlStore(sqlite file)).authorize(principal, action, {policy_id})"

    def __init__(self, workload: Workload, workdir: Path) -> None:
        self.url = f"sqlite:///{workdir / 'pbgm.db'}"
        start = time.perf_counter()
        fill_store(self.url, workload)
        self.setup_s = time.perf_counter() - start

    def load(self) -> Decide:
        access = AccessPoint(open_store(self.url))
        access.authorize(Principal("u0"), "read", {"policy_id": "policy:0"})  # compiles grants
        authorize = access.authorize
        return lambda request: authorize(*request).decision is PERMIT

    @staticmethod
    def prepare(triple: Triple) -> tuple[Principal, str, dict[str, str]]:
        subject, action, resource = triple
        return Principal(subject), action, {"policy_id": resource}


def fill_store(url: str, workload: Workload) -> None:
    """Migrate an empty SQLite file and store the workload's users, groups, memberships
    and grants as rows built by the store's own mapping (`pbgm.store.sql.mapping`),
    inserted in bulk in one transaction: through the `Store` write API each call costs
    milliseconds (its audit entry, revision bump and savepoint), which would make the
    400,000 grants of N = 100,000 take the better part of an hour to set up."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from pbgm.store.sql import SqlStore
    from pbgm.store.sql.mapping import grant_row, user_row
    from pbgm.store.sql.migrate import upgrade
    from pbgm.store.sql.tables import GrantRow, GroupRow, MembershipRow, UserRow

    upgrade(url)
    now = utc_now()
    users = [User(u, created_at=now) for u in workload.memberships]
    grants = [
        Grant(kind, who, "policy", resource, Permission(level), created_by=ACTOR, created_at=now)
        for kind, who, level, resource in iter_grant_statements(workload)
    ]
    memberships = [
        {"group_name": g, "user_name": u}
        for u, groups in workload.memberships.items()
        for g in groups
    ]
    store = SqlStore(url)
    with Session(store.engine) as session:
        session.execute(insert(GroupRow), [{"name": g, "description": ""} for g in workload.groups])
        session.execute(insert(UserRow), _columns(UserRow, [user_row(u) for u in users]))
        session.execute(insert(MembershipRow), memberships)
        session.execute(insert(GrantRow), _columns(GrantRow, [grant_row(g) for g in grants]))
        session.commit()
    store.close()


def _columns(table: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as column dicts for a bulk insert (the autoincrement id left to the database)."""
    keys = [c.key for c in table.__table__.columns if c.key != "id"]
    return [{k: getattr(row, k) for k in keys} for row in rows]


ENGINES = {
    "pbgm-pdp": PbgmPdpEngine,
    "pbgm-pdp-pip": PbgmPipEngine,
    "pbgm-pdp-built": PbgmPdpBuiltEngine,
    "pbgm-pdp-pip-built": PbgmPipBuiltEngine,
    "pbgm-ap-sql": PbgmAccessPointEngine,
}
