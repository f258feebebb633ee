"""Requests of a served worker take the revisions its follower read (`pbgm.api._cache`):
no query of their own while those are younger than `FOLLOWED_FOR_S`; a write made
through the process makes its next request read them itself; a token whose account is
disabled elsewhere is refused within the bound (served, through another connection)."""

from __future__ import annotations

import time

from flask import Flask

from pbgm.api._cache import FOLLOWED_FOR_S, RevisionReads
from pbgm.store.base import Revisions
from pbgm.store.memory import MemoryStore
from pbgm.store.sql import SqlStore
from tests.api.test_api_serve import LIMITS, Served


class Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def revisions(self) -> Revisions:
        self.reads += 1
        return super().revisions()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _current(store: MemoryStore) -> int:
    return MemoryStore.revisions(store).repository  # not counted


def _begin(reads: RevisionReads) -> int:
    with Flask("t").test_request_context():
        return reads.begin_request()


def test_followed_revisions_stand_for_the_query_while_fresh():
    store, clock = Counting(), Clock()
    reads = RevisionReads(store, monotonic=clock)
    assert _begin(reads) == _current(store) and store.reads == 1  # nothing followed yet
    reads.followed(Revisions(7, 3, 2), read_at=clock.now, writes=reads.writes)
    assert [_begin(reads) for _ in range(3)] == [7, 7, 7]
    assert store.reads == 1
    clock.now += FOLLOWED_FOR_S  # the follower stopped handing them over: read again
    assert _begin(reads) == _current(store) and store.reads == 2


def test_a_write_through_the_process_is_seen_by_its_next_request():
    store, clock = Counting(), Clock()
    reads = RevisionReads(store, monotonic=clock)
    before = reads.writes
    reads.followed(Revisions(7, 3, 2), read_at=clock.now, writes=before)
    reads.wrote()
    assert _begin(reads) == _current(store) and store.reads == 1
    # a follower that read before the write does not hand over what it read
    reads.followed(Revisions(7, 3, 2), read_at=clock.now, writes=before)
    assert _begin(reads) == _current(store) and store.reads == 2
    reads.followed(Revisions(9, 3, 2), read_at=clock.now, writes=reads.writes)
    assert _begin(reads) == 9 and store.reads == 2


def test_a_served_worker_refuses_a_disabled_accounts_token_within_the_bound(sqlite_db, keys):
    served = Served(sqlite_db, keys, "--workers", "2", env={"PBGM_RATE_LIMIT": "0"})
    try:
        served.wait_ready()
        assert served.as_caller("svc-voltage", "GET", LIMITS).status == 200
        other = SqlStore(sqlite_db)  # as another server or the CLI would
        other.set_service_account_enabled("svc-voltage", False, actor="test")
        other.close()
        disabled_at = time.monotonic()
        while served.as_caller("svc-voltage", "GET", LIMITS).status != 401:
            assert time.monotonic() - disabled_at < 10, "the disabled account still served"
            time.sleep(0.02)
        time.sleep(FOLLOWED_FOR_S + 0.1)
        statuses = {served.as_caller("svc-voltage", "GET", LIMITS).status for _ in range(6)}
        assert statuses == {401}  # every worker refuses it by now
    finally:
        served.stop()
