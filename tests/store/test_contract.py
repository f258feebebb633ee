"""The Store contract: one suite, every test run against the memory store, an SQLite
file and PostgreSQL (the `store` fixture of `conftest.py`).

This part: policies, their versions, lifecycle and optimistic concurrency. The
rest of the suite: `test_contract_changes.py` (one revision bump and one audit
entry per change, atomic blocks, odd ids) and `test_contract_access.py` (policy
groups, users, groups, service accounts, grants, audit queries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pbgm.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from pbgm.model import PolicyStatus
from pbgm.store import Store, iter_published
from tests.store.conftest import FakeClock, policy_doc, snapshot, table_ids

PUBLISHED, RETIRED, DRAFT = PolicyStatus.PUBLISHED, PolicyStatus.RETIRED, PolicyStatus.DRAFT


# -- create, get, list


def test_create_then_get_returns_version_one_as_a_draft(store: Store, clock: FakeClock) -> None:
    created = store.create_policy(policy_doc(), actor="alice", reason="first cut")
    assert created.version == 1 and created.status is DRAFT
    assert created.document == policy_doc()
    assert created.published_version is None and created.published_document is None
    assert created.created_at == created.updated_at == clock.last
    assert created.updated_by == "alice"
    assert store.get_policy("p1") == created


def test_documents_are_private_copies(store: Store) -> None:
    doc = policy_doc()
    store.create_policy(doc, actor="alice")
    doc["content"]["v_min_pu"] = 0.0
    store.get_policy("p1").document["content"]["v_max_pu"] = 9.9
    assert store.get_policy("p1").document == policy_doc()


def test_documents_keep_json_types(store: Store) -> None:
    doc = policy_doc(content={"n": 1, "x": 0.1, "t": True, "z": None, "s": "é", "l": [1, [2]]})
    store.create_policy(doc, actor="alice")
    assert store.get_policy("p1").document == doc


LIST_CASES = [
    ("no filter gives every policy in id order", {}, ["a", "b", "c", "d"]),
    ("a policy group", {"policy_group": "frequency"}, ["b", "c"]),
    ("a type", {"policy_type": "flexoffer"}, ["c"]),
    ("an asset id", {"asset_id": "pv-7"}, ["d"]),
    ("a status", {"status": PUBLISHED}, ["b"]),
    ("filters combine with and", {"policy_group": "frequency", "status": DRAFT}, ["c"]),
    ("no match gives an empty list", {"asset_id": "nowhere"}, []),
]


@pytest.mark.parametrize(("what", "filters", "expected"), LIST_CASES, ids=table_ids(LIST_CASES))
def test_list_policies_filters(
    store: Store, what: str, filters: dict[str, Any], expected: list[str]
) -> None:
    for doc in (
        policy_doc("d", asset_id="pv-7"),
        policy_doc("b", policy_group="frequency"),
        policy_doc("a"),
        policy_doc("c", policy_group="frequency", type="flexoffer"),
    ):
        store.create_policy(doc, actor="alice")
    store.set_policy_status("b", PUBLISHED, actor="alice")
    assert [p.id for p in store.list_policies(**filters)] == expected


def test_iter_published_yields_only_published_policies(store: Store) -> None:
    store.create_policy(policy_doc("a"), actor="alice")
    store.create_policy(policy_doc("b"), actor="alice")
    store.set_policy_status("b", PUBLISHED, actor="alice")
    assert [p.id for p in iter_published(store, policy_group="voltage-control")] == ["b"]


def test_creating_an_existing_policy_raises_and_changes_nothing(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    before = snapshot(store)
    with pytest.raises(AlreadyExistsError):
        store.create_policy(policy_doc(content={}), actor="bob")
    assert snapshot(store) == before


NOPE = policy_doc("nope")
MISSING_POLICY_CALLS: list[tuple[str, Callable[[Store], Any]]] = [
    ("get", lambda s: s.get_policy("nope")),
    ("update", lambda s: s.update_policy("nope", NOPE, expected_version=1, actor="a")),
    ("publish", lambda s: s.set_policy_status("nope", PUBLISHED, actor="a")),
    ("history", lambda s: s.policy_versions("nope")),
    ("one version", lambda s: s.get_policy_version("nope", 1)),
    ("delete", lambda s: s.delete_policy("nope", actor="a")),
]


MISSING_IDS = table_ids(MISSING_POLICY_CALLS)


@pytest.mark.parametrize(("what", "call"), MISSING_POLICY_CALLS, ids=MISSING_IDS)
def test_a_missing_policy_raises_not_found(store: Store, what: str, call: Callable) -> None:
    store.create_policy(policy_doc(), actor="alice")
    before = snapshot(store)
    with pytest.raises(NotFoundError) as caught:
        call(store)
    assert caught.value.code == "not_found" and "`nope`" in caught.value.message
    assert snapshot(store) == before


BAD_DOCUMENTS = [
    ("a document without an id", {k: v for k, v in policy_doc().items() if k != "id"}),
    ("an empty type", policy_doc(type="")),
    ("a policy group that is not a string", policy_doc(policy_group=7)),
    ("an id longer than 255 characters", policy_doc("x" * 256)),
    ("a NUL character in the id", policy_doc("a\x00b")),
    ("a NUL character in the content", policy_doc(content={"s": "a\x00"})),
    ("NaN in the content", policy_doc(content={"x": float("nan")})),
    ("a value JSON cannot hold", policy_doc(content={"x": object()})),
    ("a list instead of an object", [1, 2]),
]


@pytest.mark.parametrize(("what", "doc"), BAD_DOCUMENTS, ids=table_ids(BAD_DOCUMENTS))
def test_unstorable_documents_are_refused(store: Store, what: str, doc: Any) -> None:
    with pytest.raises(InvalidInputError):
        store.create_policy(doc, actor="alice")
    assert store.list_policies() == [] and store.revision() == 0


# -- updates and optimistic concurrency


def test_update_with_the_current_version_makes_a_new_version(
    store: Store, clock: FakeClock
) -> None:
    store.create_policy(policy_doc(), actor="alice")
    new = policy_doc(asset_id="bess-02", content={"v_min_pu": 0.9})
    updated = store.update_policy("p1", new, expected_version=1, actor="bob", reason="widen")
    assert (updated.version, updated.document, updated.asset_id) == (2, new, "bess-02")
    assert updated.updated_by == "bob" and updated.updated_at == clock.last
    assert updated.created_at < updated.updated_at
    assert store.get_policy("p1") == updated
    assert [p.id for p in store.list_policies(asset_id="bess-02")] == ["p1"]


def test_update_with_a_stale_version_raises_conflict_and_changes_nothing(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="bob")
    before = snapshot(store)
    with pytest.raises(ConflictError) as caught:
        store.update_policy("p1", policy_doc(), expected_version=1, actor="carol")
    assert caught.value.code == "version_conflict"
    assert caught.value.details == {"expected_version": 1, "current_version": 2}
    assert snapshot(store) == before


def test_update_refuses_a_document_with_another_id(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    with pytest.raises(InvalidInputError):
        store.update_policy("p1", policy_doc("p2"), expected_version=1, actor="bob")
    assert store.get_policy("p1").version == 1


def test_update_refuses_an_unknown_version_action(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    with pytest.raises(InvalidInputError):
        store.update_policy("p1", policy_doc(), expected_version=1, actor="a", action="create")


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released at once; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_racing_updates_on_one_version_let_exactly_one_win(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    racers = 4
    results = run_together(
        racers,
        lambda i: store.update_policy(
            "p1", policy_doc(content={"by": i}), expected_version=1, actor=f"user{i}"
        ),
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and all(isinstance(e, ConflictError) for e in losers)
    assert store.get_policy("p1") == winners[0]
    assert [v.version for v in store.policy_versions("p1")] == [1, 2]
    assert store.revision() == 2


def test_racing_writers_never_lose_a_revision_bump(store: Store) -> None:
    count = 6
    results = run_together(count, lambda i: store.create_policy(policy_doc(f"p{i}"), actor="a"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert store.revision() == count
    assert len(store.list_audit()) == count and len(store.list_policies()) == count


# -- lifecycle and history


def test_publish_the_latest_version_then_retire(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    published = store.set_policy_status("p1", PUBLISHED, actor="bob", reason="go live")
    assert published.status is PUBLISHED and published.published_version == 1
    assert published.published_document == policy_doc()
    assert store.get_policy("p1") == published
    retired = store.set_policy_status("p1", RETIRED, actor="bob")
    assert retired.status is RETIRED and retired.published_version == 1
    assert store.list_policies(status=PUBLISHED) == []


def test_publish_a_given_version(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    second = policy_doc(content={"v_min_pu": 0.9})
    store.update_policy("p1", second, expected_version=1, actor="alice")
    record = store.set_policy_status("p1", PUBLISHED, actor="bob", version=1)
    assert (record.version, record.published_version) == (2, 1)
    assert record.document == second and record.published_document == policy_doc()


def test_an_update_keeps_what_is_published(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    store.set_policy_status("p1", PUBLISHED, actor="bob")
    updated = store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="a")
    assert updated.status is PUBLISHED and updated.published_version == 1
    assert updated.published_document == policy_doc()
    assert store.get_policy("p1") == updated


@pytest.mark.parametrize("version", [0, -1, 3, "1", True])
def test_publishing_an_unknown_version_raises_not_found(store: Store, version: Any) -> None:
    store.create_policy(policy_doc(), actor="alice")
    store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="alice")
    before = snapshot(store)
    with pytest.raises(NotFoundError):
        store.set_policy_status("p1", PUBLISHED, actor="bob", version=version)
    assert snapshot(store) == before


def test_publishing_with_a_stale_expected_version_conflicts(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="alice")
    with pytest.raises(ConflictError):
        store.set_policy_status("p1", PUBLISHED, actor="bob", expected_version=1)
    record = store.set_policy_status("p1", PUBLISHED, actor="bob", expected_version=2)
    assert record.published_version == 2


def test_a_version_can_only_be_named_when_publishing(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    with pytest.raises(InvalidInputError):
        store.set_policy_status("p1", RETIRED, actor="bob", version=1)
    with pytest.raises(InvalidInputError):
        store.set_policy_status("p1", "archived", actor="bob")  # type: ignore[arg-type]


def test_history_records_author_time_reason_and_action(store: Store, clock: FakeClock) -> None:
    first = policy_doc()
    store.create_policy(first, actor="alice", reason="initial")
    t1 = clock.last
    store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="bob", reason="b")
    t2 = clock.last
    store.update_policy(
        "p1", first, expected_version=2, actor="carol", reason="back", action="rollback"
    )
    history = store.policy_versions("p1")
    assert [(v.version, v.author, v.reason, v.action) for v in history] == [
        (1, "alice", "initial", "create"),
        (2, "bob", "b", "update"),
        (3, "carol", "back", "rollback"),
    ]
    assert [v.created_at for v in history[:2]] == [t1, t2]
    assert history[2].document == first and history[1].document == policy_doc(content={})
    assert store.get_policy_version("p1", 2) == history[1]


def test_delete_removes_the_policy_and_its_history(store: Store) -> None:
    store.create_policy(policy_doc(), actor="alice")
    store.update_policy("p1", policy_doc(content={}), expected_version=1, actor="alice")
    store.delete_policy("p1", actor="bob", reason="obsolete")
    with pytest.raises(NotFoundError):
        store.get_policy("p1")
    assert store.list_policies() == []
    entry = store.list_audit(limit=1)[0]
    assert (entry.action, entry.actor, entry.object_id) == ("policy.delete", "bob", "p1")
    assert entry.details == {"version": 2, "reason": "obsolete"}
    recreated = store.create_policy(policy_doc(), actor="alice")
    assert recreated.version == 1 and len(store.policy_versions("p1")) == 1
