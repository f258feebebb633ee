"""Retention: `prune_audit` deletes the old entries of one log (audit or decisions),
keeps the other log and the recent entries, records itself, and never reuses an id."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pbgm.errors import InvalidInputError
from pbgm.store import AUDIT_LOG, DECISION_LOG, Group, Store, is_decision_entry
from tests.store.conftest import FakeClock


def _entries(store: Store) -> list[tuple[str, str]]:
    return [(e.action, e.object_id) for e in reversed(store.list_audit(limit=1000))]


def _fill(store: Store) -> None:
    """Two old and two new entries of each log (the fake clock ticks a second a call)."""
    store.add_group(Group("old-group"), actor="admin")
    store.record_audit(actor="api", action="decision", object_type="decision", object_id="old")
    store.record_audit(actor="relay", action="relay.deny", object_type="topic", object_id="/old")


@pytest.mark.parametrize(
    ("log", "gone"),
    [
        ("decisions", {("decision", "old"), ("relay.deny", "/old")}),
        ("audit", {("group.add", "old-group")}),
    ],
)
def test_only_old_entries_of_the_named_log_go(store: Store, clock: FakeClock, log, gone):
    _fill(store)
    cut = clock.last + timedelta(milliseconds=500)
    store.add_group(Group("new-group"), actor="admin")
    store.record_audit(actor="api", action="decision", object_type="decision", object_id="new")
    before = _entries(store)
    removed = store.prune_audit(log=log, before=cut, actor="ops")
    after = _entries(store)
    assert removed == len(gone)
    assert set(before) - set(after) == gone
    assert after[-1] == ("audit.prune", log)
    prune = store.list_audit(limit=1)[0]
    assert prune.details["removed"] == len(gone) and prune.actor == "ops"


def test_ids_are_never_reused_after_everything_was_pruned(store: Store, clock: FakeClock):
    _fill(store)
    highest = store.list_audit(limit=1)[0].id
    store.prune_audit(log=DECISION_LOG, before=clock.last + timedelta(days=1), actor="ops")
    store.prune_audit(log=AUDIT_LOG, before=clock.last + timedelta(days=1), actor="ops")
    newest = store.list_audit(limit=1)[0]
    assert newest.action == "audit.prune" and newest.id > highest


def test_pruning_does_not_move_the_revision(store: Store, clock: FakeClock):
    _fill(store)
    revision = store.revision()
    store.prune_audit(log=AUDIT_LOG, before=clock.last + timedelta(days=1), actor="ops")
    assert store.revision() == revision


def test_an_unknown_log_is_refused(store: Store, clock: FakeClock):
    with pytest.raises(InvalidInputError):
        store.prune_audit(log="everything", before=clock.last, actor="ops")


@pytest.mark.parametrize(
    ("action", "decision"),
    [("decision", True), ("relay.forward", True), ("events.measurement", True),
     ("policy.create", False), ("token.issue", False), ("audit.prune", False)],
)  # fmt: skip
def test_which_entries_are_the_decision_log(action, decision):
    assert is_decision_entry(action) is decision
