"""The Store contract, part 2: policy groups, users, groups, service accounts,
grants and the audit log, against every store (see `test_contract.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from pbgm.auth.secrets import generate_secret, hash_secret, verify_secret
from pbgm.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from pbgm.model import Permission, PolicyGroup
from pbgm.store import Grant, Group, ServiceAccount, Store, User
from pbgm.store.sql import SqlStore
from tests.store.conftest import FakeClock, table_ids

HASH = hash_secret("correct horse")


# -- policy groups


def test_put_policy_group_creates_then_replaces(store: Store) -> None:
    store.put_policy_group(PolicyGroup("voltage", description="LV feeders"), actor="root")
    store.put_policy_group(PolicyGroup("frequency"), actor="root")
    changed = PolicyGroup("voltage", "permit-overrides", "all feeders")
    assert store.put_policy_group(changed, actor="root") == changed
    assert store.get_policy_group("voltage") == changed
    assert [g.id for g in store.list_policy_groups()] == ["frequency", "voltage"]
    actions = [e.action for e in store.list_audit()]
    assert actions == ["policy_group.update", "policy_group.create", "policy_group.create"]


def test_policy_group_errors(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.get_policy_group("missing")
    with pytest.raises(InvalidInputError):
        store.put_policy_group(PolicyGroup("g", "majority-vote"), actor="root")
    assert store.list_policy_groups() == [] and store.revision() == 0


# -- users


def test_add_get_and_list_users(store: Store, clock: FakeClock) -> None:
    added = store.add_user(User("zoe", display_name="Zoë"), actor="root")
    assert added.created_at == clock.last and added.enabled
    store.add_user(User("adam"), actor="root")
    assert store.get_user("zoe") == added
    assert [u.name for u in store.list_users()] == ["adam", "zoe"]
    with pytest.raises(AlreadyExistsError):
        store.add_user(User("zoe"), actor="root")
    with pytest.raises(NotFoundError):
        store.get_user("nobody")


def test_disable_and_enable_a_user(store: Store) -> None:
    store.add_user(User("alice"), actor="root")
    assert store.set_user_enabled("alice", False, actor="root").enabled is False
    assert store.get_user("alice").enabled is False
    assert store.set_user_enabled("alice", True, actor="root").enabled is True
    with pytest.raises(NotFoundError):
        store.set_user_enabled("nobody", False, actor="root")


def test_only_password_hashes_are_stored(store: Store) -> None:
    store.add_user(User("alice"), actor="root")
    with pytest.raises(InvalidInputError):
        store.set_user_password_hash("alice", "correct horse", actor="root")
    with pytest.raises(InvalidInputError):
        store.add_user(User("bob", password_hash="hunter2"), actor="root")
    store.set_user_password_hash("alice", HASH, actor="root")
    assert verify_secret("correct horse", store.get_user("alice").password_hash or "")
    assert "correct horse" not in repr(store.list_audit())


# -- groups and memberships


def test_memberships(store: Store) -> None:
    for name in ("alice", "bob"):
        store.add_user(User(name), actor="root")
    for name in ("operators", "auditors"):
        store.add_group(Group(name, description=f"the {name}"), actor="root")
    store.add_member("operators", "bob", actor="root")
    store.add_member("operators", "alice", actor="root")
    store.add_member("auditors", "alice", actor="root")
    assert store.groups_of("alice") == ["auditors", "operators"]
    assert store.members_of("operators") == ["alice", "bob"]
    store.remove_member("operators", "alice", actor="root")
    assert store.groups_of("alice") == ["auditors"]
    assert store.groups_of("nobody") == []
    assert store.get_group("auditors") == Group("auditors", "the auditors")
    assert [g.name for g in store.list_groups()] == ["auditors", "operators"]


MEMBERSHIP_ERRORS = [
    ("an unknown group", lambda s: s.add_member("nope", "alice", actor="r"), NotFoundError),
    ("an unknown user", lambda s: s.add_member("ops", "nope", actor="r"), NotFoundError),
    ("a member twice", lambda s: s.add_member("ops", "alice", actor="r"), AlreadyExistsError),
    ("removing a non-member", lambda s: s.remove_member("ops", "bob", actor="r"), NotFoundError),
    ("the members of an unknown group", lambda s: s.members_of("nope"), NotFoundError),
    ("a group twice", lambda s: s.add_group(Group("ops"), actor="r"), AlreadyExistsError),
    ("getting an unknown group", lambda s: s.get_group("nope"), NotFoundError),
]


@pytest.mark.parametrize(
    ("what", "call", "error"), MEMBERSHIP_ERRORS, ids=table_ids(MEMBERSHIP_ERRORS)
)
def test_membership_errors(store: Store, what: str, call: Any, error: type) -> None:
    store.add_user(User("alice"), actor="root")
    store.add_user(User("bob"), actor="root")
    store.add_group(Group("ops"), actor="root")
    store.add_member("ops", "alice", actor="root")
    revision = store.revision()
    with pytest.raises(error):
        call(store)
    assert store.members_of("ops") == ["alice"] and store.revision() == revision


# -- service accounts


def test_a_service_account_keeps_only_the_hash_of_its_secret(store: Store) -> None:
    secret = generate_secret()
    account = ServiceAccount("meter-gw", hash_secret(secret), scopes=("policy:read",))
    with pytest.raises(InvalidInputError):
        store.add_service_account(ServiceAccount("leaky", secret), actor="root")
    added = store.add_service_account(account, actor="root")
    stored = store.get_service_account("meter-gw")
    assert stored == added and stored.scopes == ("policy:read",)
    assert verify_secret(secret, stored.secret_hash)
    assert not verify_secret(secret + "x", stored.secret_hash)
    assert secret not in repr(store.list_audit()) and stored.secret_hash not in repr(
        store.list_audit()
    )
    if isinstance(store, SqlStore):
        assert secret not in _every_stored_text(store)


def _every_stored_text(store: SqlStore) -> str:
    """All rows of every table, as text: to look for what must never be stored."""
    dump = []
    with store.engine.connect() as connection:
        for table in ("service_accounts", "audit_log", "users", "grants"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            dump.append(repr(rows))
    return "\n".join(dump)


def test_service_accounts_are_disabled_and_deleted_with_their_grants(store: Store) -> None:
    store.add_service_account(ServiceAccount("b-svc", HASH), actor="root")
    store.add_service_account(ServiceAccount("a-svc", HASH), actor="root")
    store.add_grant(Grant("service", "b-svc", "policy", "p1", "read"), actor="root")
    kept = store.add_grant(Grant("service", "a-svc", "policy", "p1", "read"), actor="root")
    assert [a.client_id for a in store.list_service_accounts()] == ["a-svc", "b-svc"]
    assert store.set_service_account_enabled("b-svc", False, actor="root").enabled is False
    assert store.get_service_account("b-svc").enabled is False
    store.delete_service_account("b-svc", actor="root")
    with pytest.raises(NotFoundError):
        store.get_service_account("b-svc")
    assert store.list_grants() == [kept]
    assert store.list_audit(limit=1)[0].details == {"grants_removed": 1}
    with pytest.raises(NotFoundError):
        store.delete_service_account("b-svc", actor="root")
    with pytest.raises(AlreadyExistsError):
        store.add_service_account(ServiceAccount("a-svc", HASH), actor="root")


def test_every_instance_of_an_account_has_its_own_token_generation(store: Store) -> None:
    first = store.add_service_account(ServiceAccount("svc", HASH), actor="root").token_generation
    assert first and store.get_service_account("svc").token_generation == first
    same_state = store.set_service_account_enabled("svc", True, actor="root")
    assert same_state.token_generation == first  # no change of state, no new generation
    disabled = store.set_service_account_enabled("svc", False, actor="root").token_generation
    enabled = store.set_service_account_enabled("svc", True, actor="root").token_generation
    assert len({first, disabled, enabled}) == 3
    assert store.get_service_account("svc").token_generation == enabled
    store.delete_service_account("svc", actor="root")
    again = store.add_service_account(ServiceAccount("svc", HASH), actor="root")
    assert again.token_generation not in {first, disabled, enabled}


def test_a_generation_given_by_the_caller_is_not_kept(store: Store) -> None:
    given = ServiceAccount("svc", HASH, token_generation="chosen-by-the-caller")
    assert store.add_service_account(given, actor="root").token_generation != given.token_generation


# -- grants


def _principals(store: Store) -> None:
    store.add_user(User("alice"), actor="root")
    store.add_group(Group("ops"), actor="root")
    store.add_service_account(ServiceAccount("svc", HASH), actor="root")
    store.put_policy_group(PolicyGroup("voltage"), actor="root")


def test_grants_get_increasing_ids_and_list_by_principal_or_target(
    store: Store, clock: FakeClock
) -> None:
    _principals(store)
    first = store.add_grant(Grant("user", "alice", "policy_group", "voltage", "read"), actor="r")
    assert (first.id, first.created_by, first.created_at) == (1, "r", clock.last)
    assert first.permission is Permission.READ and first.enabled
    second = store.add_grant(Grant("group", "ops", "policy", "p1", Permission.WRITE), actor="r")
    third = store.add_grant(Grant("service", "svc", "policy", "p1", "admin"), actor="r")
    assert [g.id for g in (first, second, third)] == [1, 2, 3]
    assert store.list_grants() == [first, second, third]
    assert store.list_grants(principal="ops") == [second]
    assert store.list_grants(target="p1") == [second, third]
    assert store.list_grants(principal="svc", target="p1") == [third]
    assert store.list_grants(principal="svc", target="voltage") == []


def test_a_grant_may_name_a_policy_that_does_not_exist_yet(store: Store) -> None:
    _principals(store)
    grant = store.add_grant(Grant("user", "alice", "policy", "future-policy", "read"), actor="r")
    assert store.list_grants(target="future-policy") == [grant]


GRANT_ERRORS = [
    ("an unknown user", Grant("user", "nobody", "policy", "p", "read"), NotFoundError),
    ("an unknown group", Grant("group", "nobody", "policy", "p", "read"), NotFoundError),
    ("an unknown service", Grant("service", "nobody", "policy", "p", "read"), NotFoundError),
    ("an unknown policy group", Grant("user", "alice", "policy_group", "x", "read"), NotFoundError),
    ("a principal kind", Grant("robot", "alice", "policy", "p", "read"), InvalidInputError),
    ("a target kind", Grant("user", "alice", "asset", "p", "read"), InvalidInputError),
    ("a permission", Grant("user", "alice", "policy", "p", "own"), InvalidInputError),
    ("an empty target", Grant("user", "alice", "policy", "", "read"), InvalidInputError),
    ("a grant twice", Grant("user", "alice", "policy", "p1", "read"), AlreadyExistsError),
]


@pytest.mark.parametrize(("what", "grant", "error"), GRANT_ERRORS, ids=table_ids(GRANT_ERRORS))
def test_grants_are_refused_for(store: Store, what: str, grant: Grant, error: type) -> None:
    _principals(store)
    existing = store.add_grant(Grant("user", "alice", "policy", "p1", "read"), actor="r")
    revision = store.revision()
    with pytest.raises(error):
        store.add_grant(grant, actor="r")
    assert store.list_grants() == [existing] and store.revision() == revision


def test_disable_and_delete_grants_without_reusing_ids(store: Store) -> None:
    _principals(store)
    grant = store.add_grant(Grant("user", "alice", "policy", "p1", "read"), actor="r")
    disabled = store.set_grant_enabled(grant.id or 0, False, actor="r")
    assert disabled.enabled is False and store.list_grants() == [disabled]
    assert store.set_grant_enabled(grant.id or 0, True, actor="r").enabled is True
    store.delete_grant(grant.id or 0, actor="r")
    assert store.list_grants() == []
    for call in (
        lambda: store.delete_grant(grant.id or 0, actor="r"),
        lambda: store.set_grant_enabled(42, True, actor="r"),
    ):
        with pytest.raises(NotFoundError):
            call()
    again = store.add_grant(Grant("user", "alice", "policy", "p1", "read"), actor="r")
    assert again.id == 2


# -- the audit log


def test_audit_log_pages_newest_first(store: Store) -> None:
    for i in range(5):
        store.add_user(User(f"u{i}"), actor="root")
    note = store.record_audit(
        actor="ops", action="export", object_type="policy", object_id="u3", details={"n": [1]}
    )
    assert note.id == 6 and note.details == {"n": [1]}
    assert store.revision() == 5
    assert [e.id for e in store.list_audit(limit=3)] == [6, 5, 4]
    assert [e.id for e in store.list_audit(limit=3, before_id=4)] == [3, 2, 1]
    assert [e.action for e in store.list_audit(object_id="u3")] == ["export", "user.add"]
    assert store.list_audit(before_id=1) == []


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_audit_limit_out_of_range_is_refused(store: Store, limit: int) -> None:
    with pytest.raises(InvalidInputError):
        store.list_audit(limit=limit)


def test_audit_details_must_be_an_object(store: Store) -> None:
    with pytest.raises(InvalidInputError):
        store.record_audit(
            actor="a",
            action="x",
            object_type="t",
            object_id="o",
            details=[1],  # type: ignore[arg-type]
        )
    assert store.list_audit() == []
