"""The Store contract, continued (see `test_contract.py`): every change bumps the
revision once and is audited in the same transaction; atomic blocks keep all or
nothing; ids are data, stored verbatim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pbgm.auth.secrets import hash_secret
from pbgm.errors import (
    AlreadyExistsError,
    ConflictError,
    PbgmError,
    UnsupportedOperationError,
)
from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.store import Grant, Group, ServiceAccount, Store, User
from tests.store.conftest import FakeClock, policy_doc, snapshot, table_ids

PUBLISHED, RETIRED = PolicyStatus.PUBLISHED, PolicyStatus.RETIRED


# -- every change: one revision bump and one audit entry, in the same transaction


def populate(store: Store) -> None:
    """One of everything, for the change table below."""
    store.put_policy_group(PolicyGroup("pg"), actor="root")
    store.add_user(User("alice"), actor="root")
    store.add_user(User("bob"), actor="root")
    store.add_group(Group("ops"), actor="root")
    store.add_member("ops", "alice", actor="root")
    store.add_service_account(ServiceAccount("svc", SECRET_HASH), actor="root")
    store.add_grant(Grant("user", "alice", "policy_group", "pg", "read"), actor="root")
    store.create_policy(policy_doc(), actor="root")


SECRET_HASH = hash_secret("s3cret")


def _update(action: str) -> Callable[[Store], Any]:
    doc = policy_doc()
    return lambda s: s.update_policy("p1", doc, expected_version=1, actor="x", action=action)


CHANGES: list[tuple[str, Callable[[Store], Any], tuple[str, str, str]]] = [
    (
        "create a policy",
        lambda s: s.create_policy(policy_doc("p2"), actor="x"),
        ("policy.create", "policy", "p2"),
    ),
    ("update a policy", _update("update"), ("policy.update", "policy", "p1")),
    ("roll a policy back", _update("rollback"), ("policy.rollback", "policy", "p1")),
    (
        "publish a policy",
        lambda s: s.set_policy_status("p1", PUBLISHED, actor="x"),
        ("policy.publish", "policy", "p1"),
    ),
    (
        "retire a policy",
        lambda s: s.set_policy_status("p1", RETIRED, actor="x"),
        ("policy.retire", "policy", "p1"),
    ),
    (
        "delete a policy",
        lambda s: s.delete_policy("p1", actor="x"),
        ("policy.delete", "policy", "p1"),
    ),
    (
        "add a policy group",
        lambda s: s.put_policy_group(PolicyGroup("pg2"), actor="x"),
        ("policy_group.create", "policy_group", "pg2"),
    ),
    (
        "change a policy group",
        lambda s: s.put_policy_group(PolicyGroup("pg", "first-applicable"), actor="x"),
        ("policy_group.update", "policy_group", "pg"),
    ),
    ("add a user", lambda s: s.add_user(User("carol"), actor="x"), ("user.add", "user", "carol")),
    (
        "disable a user",
        lambda s: s.set_user_enabled("alice", False, actor="x"),
        ("user.disable", "user", "alice"),
    ),
    (
        "set a password hash",
        lambda s: s.set_user_password_hash("alice", SECRET_HASH, actor="x"),
        ("user.password", "user", "alice"),
    ),
    ("add a group", lambda s: s.add_group(Group("g2"), actor="x"), ("group.add", "group", "g2")),
    (
        "add a member",
        lambda s: s.add_member("ops", "bob", actor="x"),
        ("group.add_member", "group", "ops"),
    ),
    (
        "remove a member",
        lambda s: s.remove_member("ops", "alice", actor="x"),
        ("group.remove_member", "group", "ops"),
    ),
    (
        "add a service account",
        lambda s: s.add_service_account(ServiceAccount("svc2", SECRET_HASH), actor="x"),
        ("service_account.add", "service_account", "svc2"),
    ),
    (
        "disable a service account",
        lambda s: s.set_service_account_enabled("svc", False, actor="x"),
        ("service_account.disable", "service_account", "svc"),
    ),
    (
        "rotate a service account's secret",
        lambda s: s.set_service_account_secret("svc", SECRET_HASH, actor="x"),
        ("service_account.rotate", "service_account", "svc"),
    ),
    (
        "delete a service account",
        lambda s: s.delete_service_account("svc", actor="x"),
        ("service_account.delete", "service_account", "svc"),
    ),
    (
        "add a grant",
        lambda s: s.add_grant(Grant("group", "ops", "policy", "p9", "write"), actor="x"),
        ("grant.add", "grant", "2"),
    ),
    (
        "disable a grant",
        lambda s: s.set_grant_enabled(1, False, actor="x"),
        ("grant.disable", "grant", "1"),
    ),
    ("delete a grant", lambda s: s.delete_grant(1, actor="x"), ("grant.delete", "grant", "1")),
]


@pytest.mark.parametrize(("what", "change", "audited"), CHANGES, ids=table_ids(CHANGES))
def test_every_change_bumps_the_revision_once_and_is_audited(
    store: Store, clock: FakeClock, what: str, change: Callable, audited: tuple[str, str, str]
) -> None:
    populate(store)
    revision, seen = store.revision(), {e.id for e in store.list_audit(limit=1000)}
    change(store)
    new = [e for e in store.list_audit(limit=1000) if e.id not in seen]
    assert store.revision() == revision + 1
    assert len(new) == 1
    assert (new[0].actor, (new[0].action, new[0].object_type, new[0].object_id)) == ("x", audited)
    assert new[0].at == clock.last


def test_reads_neither_bump_the_revision_nor_audit(store: Store) -> None:
    populate(store)
    before = snapshot(store)
    store.get_policy("p1")
    store.get_policy_version("p1", 1)
    store.get_policy_group("pg")
    store.get_user("alice")
    store.get_group("ops")
    store.groups_of("alice")
    store.get_service_account("svc")
    store.list_grants(principal="alice")
    snapshot(store)
    assert snapshot(store) == before


def test_a_failed_change_neither_bumps_the_revision_nor_audits(store: Store) -> None:
    populate(store)
    before = snapshot(store)
    for call in (
        lambda: store.add_user(User("alice"), actor="x"),
        lambda: store.add_member("ops", "nobody", actor="x"),
        lambda: store.add_grant(Grant("user", "alice", "policy_group", "pg", "read"), actor="x"),
        lambda: store.set_grant_enabled(99, True, actor="x"),
        lambda: store.create_policy(policy_doc(), actor=""),
    ):
        with pytest.raises(PbgmError):
            call()
    assert snapshot(store) == before


# -- atomic blocks


def test_atomic_commits_every_change_at_the_end(store: Store) -> None:
    with store.atomic() as tx:
        tx.create_policy(policy_doc(), actor="alice")
        tx.add_user(User("bob"), actor="alice")
        tx.set_policy_status("p1", PUBLISHED, actor="alice")
        assert tx.get_policy("p1").status is PUBLISHED and tx.revision() == 3
        assert store.list_policies() == [] and store.revision() == 0  # not visible yet
    assert store.get_policy("p1").status is PUBLISHED
    assert store.get_user("bob").name == "bob" and store.revision() == 3
    assert [e.action for e in store.list_audit()] == ["policy.publish", "user.add", "policy.create"]


def test_an_exception_in_atomic_keeps_nothing(store: Store) -> None:
    populate(store)
    before = snapshot(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.atomic() as tx:
        tx.create_policy(policy_doc("p2"), actor="x")
        tx.update_policy("p1", policy_doc(content={}), expected_version=1, actor="x")
        tx.delete_grant(1, actor="x")
        tx.add_member("ops", tx.add_user(User("carol"), actor="x").name, actor="x")
        tx.record_audit(actor="x", action="note", object_type="policy", object_id="p1")
        raise Boom
    assert snapshot(store) == before


def test_a_call_that_fails_inside_atomic_leaves_no_trace(store: Store) -> None:
    with store.atomic() as tx:
        tx.create_policy(policy_doc("a"), actor="x")
        with pytest.raises(AlreadyExistsError):
            tx.create_policy(policy_doc("a"), actor="x")
        with pytest.raises(ConflictError):
            tx.update_policy("a", policy_doc("a"), expected_version=7, actor="x")
        tx.create_policy(policy_doc("b"), actor="x")
    assert [p.id for p in store.list_policies()] == ["a", "b"]
    assert store.revision() == 2 and len(store.list_audit()) == 2


def test_a_nested_atomic_block_rolls_back_alone(store: Store) -> None:
    with store.atomic() as tx:
        tx.create_policy(policy_doc("outer"), actor="x")
        with pytest.raises(RuntimeError), tx.atomic() as inner:
            inner.create_policy(policy_doc("inner"), actor="x")
            raise RuntimeError("undo the inner block")
        with tx.atomic() as kept:
            kept.create_policy(policy_doc("kept"), actor="x")
    assert [p.id for p in store.list_policies()] == ["kept", "outer"]
    assert store.revision() == 2


def test_a_view_cannot_be_used_after_its_block(store: Store) -> None:
    with store.atomic() as tx:
        pass
    with pytest.raises(UnsupportedOperationError):
        tx.create_policy(policy_doc(), actor="x")
    assert store.revision() == 0


# -- ids are data


ODD_IDS = [
    ("unicode", "Umspannwerk-Süd ⚡ 変電所"),
    ("an SQL injection attempt", "x'); DROP TABLE policies; --"),
    ("quotes and backslashes", "a\"b\\c'd"),
    ("LIKE wildcards", "%_%"),
    ("surrounding spaces", "  padded  "),
    ("255 characters", "é" * 255),
]


@pytest.mark.parametrize(("what", "odd"), ODD_IDS, ids=table_ids(ODD_IDS))
def test_odd_ids_are_stored_verbatim(store: Store, what: str, odd: str) -> None:
    store.put_policy_group(PolicyGroup(odd), actor=odd)
    store.create_policy(policy_doc(odd, policy_group=odd, asset_id=odd), actor=odd, reason=odd)
    store.add_user(User(odd, display_name=odd), actor=odd)
    store.add_group(Group(odd), actor=odd)
    store.add_member(odd, odd, actor=odd)
    grant = store.add_grant(Grant("group", odd, "policy_group", odd, "admin"), actor=odd)
    assert [p.id for p in store.list_policies(policy_group=odd, asset_id=odd)] == [odd]
    assert store.get_policy(odd).document["id"] == odd
    assert store.policy_versions(odd)[0].reason == odd
    assert store.groups_of(odd) == [odd] and store.members_of(odd) == [odd]
    assert store.list_grants(principal=odd, target=odd) == [grant]
    assert store.list_audit(object_id=odd, limit=1)[0].actor == odd
    assert store.list_policies(policy_group="%") == []  # no pattern matching
