"""The decision log of a served process (`pbgm serve`, real signals): SIGTERM loses
nothing queued, even behind a stalled database; kill -9 loses at most the documented
bound (`docs/rest-api.md`: the queue and the batch being written); a stalled database
makes the queue drop and count calls instead of growing.

The database is stalled by another connection holding SQLite's write lock (`BEGIN
IMMEDIATE`): requests still read (WAL), the writer waits on the busy timeout."""

from __future__ import annotations

import http.client
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pbgm.api._audit import BATCH
from pbgm.store.sql import SqlStore
from tests.api.test_api_serve import Served

pytestmark = pytest.mark.slow

QUEUE = 50
"""`PBGM_DECISION_LOG_QUEUE` of these servers: a small queue makes the bound tight."""
BOUND = QUEUE + min(QUEUE, BATCH)
"""What a worker killed with SIGKILL may lose (docs/rest-api.md)."""
REQUEST = {
    "subject": {"id": "op-anna"},
    "resource": {"asset_id": "bess-01"},
    "action": {"id": "write"},
}
ENV = {"PBGM_DECISION_LOG_QUEUE": str(QUEUE), "PBGM_RATE_LIMIT": "0", "PBGM_METRICS_PUBLIC": "true"}


def _path(db: str) -> Path:
    return Path(db.removeprefix("sqlite:///"))


def _written(db: str) -> int:
    store = SqlStore(db)
    try:
        return sum(1 for e in store.list_audit(limit=10_000) if e.action == "decision")
    finally:
        store.close()


@contextmanager
def _stalled(db: str) -> Iterator[None]:
    """The database's write lock held by another connection."""
    blocker = sqlite3.connect(_path(db), isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def _decide(served: Served, count: int) -> int:
    """`count` decisions, one after the other; how many were answered 200."""
    return sum(
        served.as_caller("svc-voltage", "POST", "/api/v1/decisions", REQUEST).status == 200
        for _ in range(count)
    )


def _metric(served: Served, name: str) -> float:
    text = served.call("GET", "/metrics").body.decode()
    values = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(v) for v in values)


def _workers(served: Served) -> list[int]:
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.exists():
        pytest.skip("needs Linux's /proc/<pid>/task/<pid>/children to find gunicorn's workers")
    return [int(p) for p in children.read_text().split()]


def _stop(served: Served) -> int:
    served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=30)
    served.stop()
    return code


def test_sigterm_writes_every_decision_queued_behind_a_stalled_database(sqlite_db, keys):
    served = Served(sqlite_db, keys, "--workers", "2", env=ENV)
    try:
        served.wait_ready()
        served.token("svc-voltage")  # the token endpoint writes too: before the stall
        with _stalled(sqlite_db):
            answered = _decide(served, QUEUE - 5)  # fits in either worker's queue
            served.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # the workers are closing, their logs still waiting
            assert _written(sqlite_db) == 0
        assert served.process.wait(timeout=30) == 0
    finally:
        served.stop()
    assert answered == QUEUE - 5
    assert _written(sqlite_db) == answered


def test_a_stalled_database_drops_and_counts_instead_of_growing(sqlite_db, keys):
    served = Served(sqlite_db, keys, "--workers", "1", env=ENV)
    try:
        served.wait_ready()
        served.token("svc-voltage")
        with _stalled(sqlite_db):
            answered = _decide(served, 600)
            depth = _metric(served, "pbgm_decision_log_queue")
            dropped = _metric(served, "pbgm_decision_log_dropped_total")
        assert answered == 600  # every decision answered, logged or not
        assert depth <= QUEUE
        assert dropped >= answered - BOUND
        assert _stop(served) == 0
    finally:
        served.stop()
    assert _written(sqlite_db) == answered - dropped


def test_kill_9_loses_at_most_the_documented_bound(sqlite_db, keys):
    """The worker is killed while clients keep deciding; every call answered 200 is in
    the log, or dropped and counted, or among at most `BOUND` the worker held."""
    served = Served(sqlite_db, keys, "--workers", "1", env=ENV)
    answered, stop, lock = [0], threading.Event(), threading.Lock()

    def load() -> None:
        while not stop.is_set():
            try:
                ok = _decide(served, 1)
            except (OSError, http.client.HTTPException):
                continue  # the killed worker's connection, or its answer cut short
            with lock:
                answered[0] += ok

    try:
        served.wait_ready()
        served.token("svc-voltage")
        (worker,) = _workers(served)
        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while answered[0] < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(worker, signal.SIGKILL)
        time.sleep(0.5)
        stop.set()
        for client in clients:
            client.join()
        served.wait_ready()  # gunicorn's new worker
        dropped = _metric(served, "pbgm_decision_log_dropped_total")
        code = _stop(served)
        assert code == 0, f"gunicorn exited {code}"
    finally:
        stop.set()
        served.stop()
    written = _written(sqlite_db)
    counts = f"answered {answered[0]}, written {written}, dropped {dropped}, bound {BOUND}"
    assert answered[0] >= 300, counts
    assert 0 <= answered[0] - written - dropped <= BOUND, counts
