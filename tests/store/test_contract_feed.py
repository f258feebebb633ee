"""The Store contract, continued: the decision and access revisions, and the change feed
decision points follow (`Store.revisions`, `Store.read_published`), on every store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.policy.published import unpack
from pbgm.store import Store
from pbgm.store.base import Revisions
from tests.store.conftest import policy_doc, table_ids
from tests.store.test_contract_changes import CHANGES, populate

PUBLISHED, RETIRED = PolicyStatus.PUBLISHED, PolicyStatus.RETIRED

# What each change of the contract's change table moves, once `p1` is published:
# (decision revision, access revision); the repository revision always moves by one.
MOVES = {
    "create a policy": (0, 0),
    "update a policy": (0, 0),  # a draft: the published version stays
    "roll a policy back": (0, 0),
    "publish a policy": (1, 0),
    "retire a policy": (1, 0),
    "delete a policy": (1, 0),
    "add a policy group": (1, 0),
    "change a policy group": (1, 0),
}


@pytest.mark.parametrize(("what", "change", "audited"), CHANGES, ids=table_ids(CHANGES))
def test_each_change_moves_the_revisions_that_count_it(
    store: Store, what: str, change: Callable[[Store], Any], audited: Any
) -> None:
    populate(store)
    store.set_policy_status("p1", PUBLISHED, actor="root")
    before = store.revisions()
    change(store)
    after = store.revisions()
    decisions, access = MOVES.get(what, (0, 1))  # the rest: principals and grants
    assert after == Revisions(
        before.repository + 1, before.decisions + decisions, before.access + access
    )


def test_changes_of_a_draft_leave_the_decision_revision_alone(store: Store) -> None:
    store.create_policy(policy_doc("p1"), actor="x")
    before = store.revisions().decisions
    store.update_policy("p1", policy_doc("p1", asset_id="b"), expected_version=1, actor="x")
    store.set_policy_status("p1", RETIRED, actor="x")
    store.delete_policy("p1", actor="x")
    store.record_audit(actor="x", action="decision", object_type="decision", object_id="r")
    assert store.revisions().decisions == before


def _texts(published: Any) -> dict[str, dict[str, Any]]:
    return {p.id: json.loads(unpack(p.document)) for p in published.policies}


def test_a_full_read_gives_every_published_policy_compactly_in_id_order(store: Store) -> None:
    target = {"resource": {"asset_id": "bess-01"}}
    for policy_id in ("p3", "p1", "p2"):
        store.create_policy(policy_doc(policy_id, target=target), actor="x")
    for policy_id in ("p3", "p1"):
        store.set_policy_status(policy_id, PUBLISHED, actor="x")
    read = store.read_published()
    assert read.full and read.revision == store.revisions().decisions == 2
    assert [(p.id, p.policy_group, p.version) for p in read.policies] == [
        ("p1", "voltage-control", 1),
        ("p3", "voltage-control", 1),
    ]
    expected = {k: v for k, v in policy_doc("p1", target=target).items() if k != "content"}
    assert _texts(read)["p1"] == expected  # the content left out: no decision reads it
    assert json.loads(read.policies[0].target or "null") == target
    store.create_policy(policy_doc("p4"), actor="x")
    store.set_policy_status("p4", PUBLISHED, actor="x")
    assert store.read_published().policies[-1].target is None


def test_a_delta_names_what_changed_since_and_what_left(store: Store) -> None:
    for policy_id in ("p1", "p2", "p3"):
        store.create_policy(policy_doc(policy_id), actor="x")
        store.set_policy_status(policy_id, PUBLISHED, actor="x")
    since = store.revisions().decisions
    store.update_policy("p1", policy_doc("p1", asset_id="new"), expected_version=1, actor="x")
    store.set_policy_status("p1", PUBLISHED, actor="x")
    store.set_policy_status("p2", RETIRED, actor="x")
    store.delete_policy("p3", actor="x")
    store.create_policy(policy_doc("p4"), actor="x")
    store.set_policy_status("p4", PUBLISHED, actor="x")
    delta = store.read_published(since=since)
    assert not delta.full and delta.revision == since + 4
    assert [(p.id, p.version) for p in delta.policies] == [("p1", 2), ("p4", 1)]
    assert _texts(delta)["p1"]["asset_id"] == "new"
    assert delta.removed == {"p2", "p3"}
    assert store.read_published(since=delta.revision).policies == ()  # nothing since
    assert not store.read_published(since=delta.revision).full


def test_a_policy_belongs_to_the_group_of_its_published_version(store: Store) -> None:
    store.put_policy_group(PolicyGroup("limits", "first-applicable"), actor="x")
    store.create_policy(policy_doc("p1", policy_group="limits"), actor="x")
    store.set_policy_status("p1", PUBLISHED, actor="x")
    since = store.revisions().decisions
    draft = policy_doc("p1", policy_group="elsewhere")
    store.update_policy("p1", draft, expected_version=1, actor="x")  # a draft elsewhere
    limits = store.read_published("limits")
    assert [p.id for p in limits.policies] == ["p1"]
    assert limits.group == PolicyGroup("limits", "first-applicable")
    assert store.read_published("elsewhere").policies == ()
    assert store.read_published("elsewhere").group is None
    store.set_policy_status("p1", PUBLISHED, actor="x")  # now it moves
    assert store.read_published("limits", since=since).removed == {"p1"}
    moved = store.read_published("elsewhere", since=since)
    assert [p.id for p in moved.policies] == ["p1"] and not moved.removed


def test_a_reader_the_feed_no_longer_reaches_gets_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pbgm.store._feed.FEED_LENGTH", 3)
    monkeypatch.setattr("pbgm.store.sql._base._PRUNE_EVERY", 1)
    store.create_policy(policy_doc("p1"), actor="x")
    for _ in range(4):  # publish, retire, publish, ...: eight changes
        store.set_policy_status("p1", PUBLISHED, actor="x")
        store.set_policy_status("p1", RETIRED, actor="x")
    store.set_policy_status("p1", PUBLISHED, actor="x")
    current = store.revisions().decisions
    assert not store.read_published(since=current - 2).full
    behind = store.read_published(since=1)
    assert behind.full and [p.id for p in behind.policies] == ["p1"]
    assert store.read_published(since=current + 5).full  # ahead of the store: start over


def test_a_change_undone_by_its_atomic_block_leaves_no_feed_entry(store: Store) -> None:
    store.create_policy(policy_doc("p1"), actor="x")
    before = store.revisions()
    with pytest.raises(RuntimeError), store.atomic() as view:
        view.set_policy_status("p1", PUBLISHED, actor="x")
        raise RuntimeError("undo")
    assert store.revisions() == before
    assert store.read_published(since=before.decisions).policies == ()


# --- audit entries in batches (the decision log's writer) ------------------------------------


def test_audit_entries_are_appended_in_one_batch_without_moving_a_revision(store: Store) -> None:
    from pbgm.store import AuditItem

    before = store.revisions()
    items = [AuditItem("svc", "decision", "decision", f"r{i}", {"n": i}) for i in range(3)]
    assert store.record_audits(items) == 3
    assert store.record_audits([]) == 0
    assert store.revisions() == before
    newest = store.list_audit(limit=3)
    assert [(e.object_id, e.details) for e in newest] == [
        ("r2", {"n": 2}),
        ("r1", {"n": 1}),
        ("r0", {"n": 0}),
    ]


def test_a_batch_with_a_bad_entry_writes_nothing(store: Store) -> None:
    from pbgm.errors import InvalidInputError
    from pbgm.store import AuditItem

    items = [AuditItem("svc", "decision", "decision", "r1"), AuditItem("", "decision", "x", "y")]
    with pytest.raises(InvalidInputError):
        store.record_audits(items)
    assert store.list_audit(limit=10) == []


# --- policies created in bulk (imports) ---------------------------------------------------------


@pytest.mark.parametrize("publish", [True, False])
def test_policies_created_in_bulk_leave_what_the_calls_one_by_one_leave(
    store: Store, publish: bool
) -> None:
    from pbgm.store import MemoryStore

    documents = [policy_doc(f"p{i}", target={"resource": {"id": f"r{i}"}}) for i in range(3)]
    store.create_policy(policy_doc("p0-first"), actor="x")
    reference = MemoryStore()
    reference.create_policy(policy_doc("p0-first"), actor="x")
    for document in documents:
        reference.create_policy(document, actor="bulk", reason="import")
        if publish:
            reference.set_policy_status(document["id"], PUBLISHED, actor="bulk", reason="import")
    assert store.create_policies(documents, actor="bulk", reason="import", publish=publish) == 3
    assert store.revisions() == reference.revisions()
    assert [(p.id, p.status, p.published_version) for p in store.list_policies()] == [
        (p.id, p.status, p.published_version) for p in reference.list_policies()
    ]

    def audit(s: Store) -> list[tuple[str, str, Any]]:
        return [(e.action, e.object_id, e.details) for e in s.list_audit(limit=100)]

    assert audit(store) == audit(reference)
    assert store.read_published(since=0) == reference.read_published(since=0)
    assert store.policy_versions("p1")[0].reason == "import"


def test_a_bulk_creation_with_an_id_taken_writes_nothing(store: Store) -> None:
    from pbgm.errors import AlreadyExistsError

    store.create_policy(policy_doc("p2"), actor="x")
    before = store.revisions()
    documents = [policy_doc("p1"), policy_doc("p2")]
    with pytest.raises(AlreadyExistsError):
        store.create_policies(documents, actor="x", publish=True)
    with pytest.raises(AlreadyExistsError):
        store.create_policies([policy_doc("p3"), policy_doc("p3")], actor="x")
    assert store.revisions() == before
    assert [p.id for p in store.list_policies()] == ["p2"]
