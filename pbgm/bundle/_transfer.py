"""Moving bundles in and out of a store: `export_bundle` and `import_bundle`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from pbgm.bundle._format import EVERY, Bundle, BundleGroup, Phases
from pbgm.decision.compiled import gc_paused
from pbgm.errors import ConflictError, NotFoundError, PbgmError, Problem, ValidationError
from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.pap import plain_json
from pbgm.policy import problems_of, validate_policy_set_document
from pbgm.store.base import Grant, Group, Store, User

Progress = Callable[[int, int], None]

UNCHANGED = "unchanged"


def export_bundle(
    store: Store, *, policy_group: str | None = None, include_principals: bool = True
) -> Bundle:
    """The store's content as a bundle: the latest document of every policy.

    With `policy_group`, only that group, its policies and the grants on them.
    The parts are read without a transaction; if the revision moved meanwhile,
    the export is read again so that they are consistent with each other.
    """
    for _ in range(5):
        revision = store.revision()
        bundle = _export(store, policy_group, include_principals)
        if store.revision() == revision:
            return bundle
    raise ConflictError("the repository kept changing during the export: try again")


def _export(store: Store, policy_group: str | None, include_principals: bool) -> Bundle:
    records = store.list_policies(policy_group=policy_group)
    groups = [g for g in store.list_policy_groups() if policy_group in (None, g.id)]
    bundle = Bundle(
        policies=tuple(plain_json(r.document) for r in records), policy_groups=tuple(groups)
    )
    if not include_principals:
        return bundle
    targets = {("policy", r.id) for r in records} | {("policy_group", g.id) for g in groups}
    grants = [
        replace(g, id=None, created_by="", created_at=None)
        for g in store.list_grants()
        if policy_group is None or (g.target_kind, g.target) in targets
    ]
    return replace(
        bundle,
        users=tuple(User(u.name, u.display_name, u.enabled) for u in store.list_users()),
        groups=tuple(
            BundleGroup(g.name, g.description, tuple(store.members_of(g.name)))
            for g in store.list_groups()
        ),
        grants=tuple(grants),
    )


# --- import -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One line of an import plan.

    `kind`: policy, policy_group, user, group, member, grant. `action`: create,
    update, publish (a policy whose document is already there but not published),
    enable, disable, or unchanged.
    """

    kind: str
    key: str
    action: str


@dataclass(frozen=True)
class ImportPlan:
    """What an import changes (or, for a dry run, would change)."""

    changes: tuple[Change, ...]
    dry_run: bool
    publish: bool
    revision: int

    @property
    def changed(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != UNCHANGED)

    @property
    def is_noop(self) -> bool:
        return not self.changed

    def counts(self) -> dict[str, int]:
        """Number of changes by action, e.g. `{"create": 3, "unchanged": 5}`."""
        return dict(sorted(Counter(c.action for c in self.changes).items()))


def import_bundle(
    store: Store,
    bundle: Bundle,
    *,
    actor: str,
    dry_run: bool = False,
    publish: bool = True,
    progress: Progress | None = None,
    reason: str = "bundle import",
    phases: Phases | None = None,
) -> ImportPlan:
    """Bring the store up to the bundle, all or nothing.

    Every policy and reference is checked before anything is written; the
    `ValidationError` lists the problems of all policies, located as
    `<file or policies[i]>:<json path>`. A dry run only reads. `progress` follows the
    writing; `phases` every phase (validating, planning, writing). Each document is
    validated once: the store receives the checked documents.
    """
    # Python's cyclic garbage collector off for the import: with 100,000 documents held
    # (some 10 million objects) its full passes took 40 % of an import's time, and an
    # import leaves no cycles behind (the peak memory is the same either way)
    with gc_paused():
        check_documents(bundle, phases)
        if dry_run:
            return _plan(store, bundle, publish, dry_run=True)
        with store.atomic() as view:
            plan = _plan(view, bundle, publish, dry_run=False, phases=phases)
            _apply(view, bundle, plan, actor=actor, reason=reason, progress=progress,
                   phases=phases)  # fmt: skip
    return replace(plan, revision=store.revision())


def check_documents(bundle: Bundle, phases: Phases | None = None) -> None:
    """Validate every policy of the bundle (plain JSON already: `Bundle`) and its policy
    groups; `ValidationError` lists the problems of all of them."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    total = len(bundle.policies)
    for done, (doc, source) in enumerate(zip(bundle.policies, bundle.sources, strict=True)):
        if phases is not None and done % EVERY == 0:
            phases("validating", done, total)
        problems += _located(source, _problems_of(doc))
        policy_id = doc.get("id") if isinstance(doc, dict) else None
        if isinstance(policy_id, str) and policy_id in seen:
            problems.append(
                Problem(
                    f"{source}:$.id", "duplicate_id", f"`{policy_id}` is also in {seen[policy_id]}"
                )
            )
        seen.setdefault(str(policy_id), source)
    for i, group in enumerate(bundle.policy_groups):
        doc = {"id": group.id, "policy_combining": group.policy_combining}
        problems += _located(f"policy_groups[{i}]", _problems_of(doc, policy_set=True))
    if phases is not None:
        phases("validating", total, total)
    if problems:
        raise ValidationError(problems)


_BULK = 1_000  # new policies written in one `Store.create_policies`


def _problems_of(doc: Any, *, policy_set: bool = False) -> list[Problem]:
    """The problems of a plain document: those `pbgm.pap.checked_document` would raise,
    without parsing the policy (nothing here uses the parsed form)."""
    try:
        if policy_set:
            validate_policy_set_document(doc)
        else:
            return problems_of(doc)
    except ValidationError as error:
        return list(error.problems)
    except PbgmError as error:
        return [Problem("$", error.code, error.message)]
    return []


def _located(source: str, problems: list[Problem]) -> list[Problem]:
    return [Problem(f"{source}:{p.path}", p.code, p.message) for p in problems]


def _plan(
    store: Store, bundle: Bundle, publish: bool, *, dry_run: bool, phases: Phases | None = None
) -> ImportPlan:
    _check_references(store, bundle)
    changes = [
        *_plan_policy_groups(store, bundle.policy_groups),
        *_plan_policies(store, bundle.policies, publish, phases),
        *_plan_users(store, bundle.users),
        *_plan_groups(store, bundle.groups),
        *_plan_grants(store, bundle.grants),
    ]
    return ImportPlan(tuple(changes), dry_run, publish, store.revision())


def _lookup(get: Callable[[str], Any], key: str) -> Any:
    try:
        return get(key)
    except NotFoundError:
        return None


def _plan_policy_groups(store: Store, groups: tuple[PolicyGroup, ...]) -> Iterator[Change]:
    for group in groups:
        old = _lookup(store.get_policy_group, group.id)
        action = "create" if old is None else UNCHANGED if old == group else "update"
        yield Change("policy_group", group.id, action)


def _plan_policies(
    store: Store, docs: tuple[dict[str, Any], ...], publish: bool, phases: Phases | None = None
) -> Iterator[Change]:
    """What each policy needs; the existing ones are read in one listing, not one by one."""
    existing = {record.id: record for record in store.list_policies()} if docs else {}
    for done, doc in enumerate(docs):
        if phases is not None and done % EVERY == 0:
            phases("planning", done, len(docs))
        record = existing.get(doc["id"])
        if record is None:
            yield Change("policy", doc["id"], "create")
        elif plain_json(record.document) != doc:
            yield Change("policy", doc["id"], "update")
        elif publish and not _published_latest(record):
            yield Change("policy", doc["id"], "publish")
        else:
            yield Change("policy", doc["id"], UNCHANGED)
    if phases is not None:
        phases("planning", len(docs), len(docs))


def _published_latest(record: Any) -> bool:
    return record.status is PolicyStatus.PUBLISHED and record.published_version == record.version


def _plan_users(store: Store, users: tuple[User, ...]) -> Iterator[Change]:
    for user in users:
        old = _lookup(store.get_user, user.name)
        if old is None:
            yield Change("user", user.name, "create")
        elif old.enabled != user.enabled:
            yield Change("user", user.name, "enable" if user.enabled else "disable")
        else:
            yield Change("user", user.name, UNCHANGED)


def _plan_groups(store: Store, groups: tuple[BundleGroup, ...]) -> Iterator[Change]:
    for group in groups:
        exists = _lookup(store.get_group, group.name) is not None
        yield Change("group", group.name, UNCHANGED if exists else "create")
        members = set(store.members_of(group.name)) if exists else set()
        for member in group.members:
            action = UNCHANGED if member in members else "create"
            yield Change("member", member_key(group.name, member), action)


def _plan_grants(store: Store, grants: tuple[Grant, ...]) -> Iterator[Change]:
    existing = {grant_key(g): g for g in store.list_grants()}
    for grant in grants:
        old = existing.get(grant_key(grant))
        if old is None:
            action = "create"
        elif old.enabled != grant.enabled:
            action = "enable" if grant.enabled else "disable"
        else:
            action = UNCHANGED
        yield Change("grant", describe_grant(grant), action)


def member_key(group: str, member: str) -> str:
    """`operators <- op-anna`."""
    return f"{group} <- {member}"


def grant_key(grant: Grant) -> tuple[str, str, str, str, str]:
    return (
        grant.principal_kind,
        grant.principal,
        grant.target_kind,
        grant.target,
        str(grant.permission),
    )


def describe_grant(grant: Grant) -> str:
    """`user:op-anna read policy_group:voltage-control`."""
    return (
        f"{grant.principal_kind}:{grant.principal} {grant.permission} "
        f"{grant.target_kind}:{grant.target}"
    )


def _check_references(store: Store, bundle: Bundle) -> None:
    """Members, grant principals and policy-group targets must exist in the bundle
    or the store (a grant may name a policy that does not exist yet)."""
    users = {u.name for u in bundle.users} | {u.name for u in store.list_users()}
    services = {s.client_id for s in store.list_service_accounts()}
    groups = {g.name for g in bundle.groups} | {g.name for g in store.list_groups()}
    known = {"user": users, "service": services, "group": groups}
    problems = [
        Problem(f"groups[{i}].members", "unknown_member", f"no user `{m}`: add it to `users`")
        for i, group in enumerate(bundle.groups)
        for m in group.members
        if m not in users
    ]
    problems += [
        Problem(
            f"grants[{i}].principal",
            "unknown_principal",
            f"no {g.principal_kind} `{g.principal}`: add it to the bundle or the repository",
        )
        for i, g in enumerate(bundle.grants)
        if g.principal not in known[g.principal_kind]
    ]
    policy_groups = {g.id for g in bundle.policy_groups} | {
        g.id for g in store.list_policy_groups()
    }
    problems += [
        Problem(
            f"grants[{i}].target",
            "unknown_target",
            f"no policy group `{g.target}`: add it to `policy_groups`",
        )
        for i, g in enumerate(bundle.grants)
        if g.target_kind == "policy_group" and g.target not in policy_groups
    ]
    if problems:
        raise ValidationError(problems)


def _apply(
    store: Store,
    bundle: Bundle,
    plan: ImportPlan,
    *,
    actor: str,
    reason: str,
    progress: Progress | None,
    phases: Phases | None = None,
) -> None:
    steps = _Steps(store, bundle, actor=actor, reason=reason)
    total = len(plan.changes)
    created: list[dict[str, Any]] = []  # new policies, written in bulk

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)
        if phases is not None and (done % EVERY == 0 or done == total):
            phases("writing", done, total)

    def write_created(done: int) -> None:
        store.create_policies(created, actor=actor, reason=reason, publish=plan.publish)
        for moment in range(done - len(created) + 1, done + 1):
            report(moment)
        created.clear()

    if phases is not None:
        phases("writing", 0, total)
    for done, change in enumerate(plan.changes, start=1):
        if change.kind == "policy" and change.action == "create":
            created.append(steps.policies[change.key])
            if len(created) == _BULK:
                write_created(done)
            continue
        if created:
            write_created(done - 1)
        if change.action != UNCHANGED:
            steps.run(change, publish=plan.publish)
        report(done)
    if created:
        write_created(total)


class _Steps:
    """The store calls behind each kind of change."""

    def __init__(self, store: Store, bundle: Bundle, *, actor: str, reason: str) -> None:
        self.store, self.actor, self.reason = store, actor, reason
        self.policies = {doc["id"]: doc for doc in bundle.policies}
        self.policy_groups = {g.id: g for g in bundle.policy_groups}
        self.users = {u.name: u for u in bundle.users}
        self.groups = {g.name: g for g in bundle.groups}
        self.grants = {describe_grant(g): g for g in bundle.grants}
        self.members = {
            member_key(g.name, m): (g.name, m) for g in bundle.groups for m in g.members
        }

    def run(self, change: Change, *, publish: bool) -> None:
        getattr(self, f"_{change.kind}")(change, publish)

    def _policy_group(self, change: Change, publish: bool) -> None:
        self.store.put_policy_group(self.policy_groups[change.key], actor=self.actor)

    def _policy(self, change: Change, publish: bool) -> None:
        """The store calls for one policy; its document was validated by `check_documents`."""
        doc, actor, reason = self.policies[change.key], self.actor, self.reason
        if change.action == "create":
            self.store.create_policy(doc, actor=actor, reason=reason)
        elif change.action == "update":
            version = self.store.get_policy(change.key).version
            self.store.update_policy(
                change.key, doc, expected_version=version, actor=actor, reason=reason
            )
        if publish:
            self.store.set_policy_status(
                change.key, PolicyStatus.PUBLISHED, actor=actor, reason=reason
            )

    def _user(self, change: Change, publish: bool) -> None:
        user = self.users[change.key]
        if change.action == "create":
            self.store.add_user(User(user.name, user.display_name, user.enabled), actor=self.actor)
        else:
            self.store.set_user_enabled(user.name, user.enabled, actor=self.actor)

    def _group(self, change: Change, publish: bool) -> None:
        group = self.groups[change.key]
        self.store.add_group(Group(group.name, group.description), actor=self.actor)

    def _member(self, change: Change, publish: bool) -> None:
        group, member = self.members[change.key]
        self.store.add_member(group, member, actor=self.actor)

    def _grant(self, change: Change, publish: bool) -> None:
        grant = self.grants[change.key]
        if change.action == "create":
            self.store.add_grant(replace(grant, created_by=self.actor), actor=self.actor)
            return
        for old in self.store.list_grants(principal=grant.principal, target=grant.target):
            if grant_key(old) == grant_key(grant) and old.id is not None:
                self.store.set_grant_enabled(old.id, grant.enabled, actor=self.actor)
