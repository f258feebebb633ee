"""The decision log off the request path (`pbgm.api._audit`): calls are queued and written
by one thread in batches; a stalled database drops and counts instead of growing memory;
nothing queued is lost when the log is closed (as at a clean stop)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.api._audit import BATCH, DecisionLog, bounded_entries
from pbgm.api._metrics import Metrics
from pbgm.model import Decision, Request, Response
from pbgm.store import AuditItem, MemoryStore
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade

DECIDED = Response(Decision.PERMIT, policy_ids=("p1",))


def _call(i: int) -> tuple[str, list[Request], list[Response]]:
    return "svc", [Request({"id": f"u{i}"}, {"id": f"r{i}"}, {"id": "read"})], [DECIDED]


@pytest.fixture
def store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade(url)
    store = SqlStore(url)
    yield store
    store.close()


def _written(store: SqlStore) -> int:
    return len([e for e in store.list_audit(limit=10_000) if e.action == "decision"])


def _metric(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_calls_are_written_in_batches_by_the_writer(store):
    metrics = Metrics()
    log = DecisionLog(store, metrics=metrics)
    for i in range(300):
        log.record(*_call(i))
    assert log.flush(10)
    assert _written(store) == 300
    assert _metric(metrics, "pbgm_decision_log_written_total") == 300
    transactions = _metric(metrics, "pbgm_decision_log_batch_count")
    assert 1 <= transactions < 300  # batched, not one transaction per call
    entry = store.list_audit(limit=1)[0]
    assert (entry.object_id, entry.details["decisions"][0]["policy_ids"]) == ("r299", ["p1"])


def test_a_stalled_database_drops_and_counts_instead_of_growing(store, tmp_path: Path):
    """Another connection holds SQLite's write lock: the writer waits on it (its busy
    timeout), the queue fills to its capacity, and every further call is dropped and
    counted. Once the lock is released, everything queued is written."""
    metrics = Metrics()
    capacity = 50
    log = DecisionLog(store, capacity=capacity, metrics=metrics)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the database stalls for writers
    try:
        log.record(*_call(0))  # taken by the writer, which now waits for the lock
        for i in range(1, 1_000):
            log.record(*_call(i))
        assert log.writer.depth <= capacity
        assert _metric(metrics, "pbgm_decision_log_queue") <= capacity
        dropped = _metric(metrics, "pbgm_decision_log_dropped_total")
        assert dropped == log.writer.dropped >= 1_000 - capacity - BATCH
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert log.flush(40)
    assert _written(store) == 1_000 - dropped


def test_closing_writes_everything_queued(store, tmp_path: Path):
    """As at a clean stop: calls queued behind a stalled write are all written by
    `close`, which waits for them; a call after it is refused and counted."""
    log = DecisionLog(store)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    for i in range(1_200):
        log.record(*_call(i))
    closing = threading.Thread(target=log.close, args=(30,))
    closing.start()
    assert _written(store) == 0 and closing.is_alive()
    blocker.execute("ROLLBACK")
    blocker.close()
    closing.join()
    assert _written(store) == 1_200 and log.writer.dropped == 0
    log.record(*_call(1_200))
    assert log.writer.dropped == 1


# --- one encoding per entry ---------------------------------------------------------------

_NEAR_BOUND = st.text(alphabet=st.sampled_from('ab,:"\\é\x01'), min_size=0, max_size=700)


_MANY = st.dictionaries(st.text("abcdefgh", min_size=2, max_size=4), st.integers(0, 9), max_size=90)


@settings(max_examples=300, deadline=None)
@given(
    notes=st.lists(st.tuples(_NEAR_BOUND, _MANY), min_size=1, max_size=4),
    bound=st.integers(64, 1400),
)
def test_an_entry_encoded_once_is_what_measuring_and_cutting_would_store(notes, bound):
    """Requests near `max_request` (many attributes, whose separators the measure
    widens; commas and colons in texts; escapes; non-ASCII): the entry keeps exactly
    the requests `bounded_entries` keeps, and its text, when it has one, is the details
    as a store encodes them."""
    log = DecisionLog(MemoryStore(), max_request=bound)
    requests = [Request({**many, "id": "u", "note": n}, {"id": "r"}) for n, many in notes]
    item = log.item("svc", requests, [DECIDED] * len(requests))
    entries = [log._entry(q, r) for q, r in zip(requests, [DECIDED] * len(requests), strict=True)]
    assert item.details == {"decisions": bounded_entries(entries, max_request=bound)}
    if item.text is not None:
        assert item.text == json.dumps(
            item.details, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )


def test_a_small_call_carries_its_text_and_a_large_one_is_measured():
    log = DecisionLog(MemoryStore(), max_request=256)
    small = log.item("svc", [Request({"id": "u"})], [DECIDED])
    large = log.item("svc", [Request({"id": "u", "note": "x" * 300})], [DECIDED])
    assert small.text is not None and json.loads(small.text) == small.details
    assert large.text is None and large.details["decisions"][0]["request_truncated"] is True


def test_a_given_text_that_is_not_storable_is_encoded_from_the_details_again():
    store = MemoryStore()
    details = {"decisions": [{"decision": "Permit"}]}
    item = AuditItem("svc", "decision", "decision", "r", details, text='{"x":"\\u0000"}')
    store.record_audit_batch([item])
    [entry] = [e for e in store.list_audit() if e.action == "decision"]
    assert entry.details == details


def test_a_request_over_the_bound_only_by_its_measures_separators_is_cut():
    """`_size` measures with `", "` and `": "`: a request of many attributes whose
    compact entry fits the bound, but whose measure does not, is still cut."""
    request = Request({**{f"a{i:02d}": i % 10 for i in range(80)}, "id": "u"})
    entry = DecisionLog(MemoryStore())._entry(request, DECIDED)
    compact = len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
    measured = len(json.dumps(entry["request"], ensure_ascii=False))
    assert compact < measured  # the bound below falls between the two
    item = DecisionLog(MemoryStore(), max_request=compact).item("svc", [request], [DECIDED])
    assert item.text is None and item.details["decisions"][0]["request_truncated"] is True
