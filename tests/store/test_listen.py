"""A change of the decision revision announced on PostgreSQL (`pbgm.store.sql.listen`):
a follower that listens syncs at once, long before its next poll; one that does not
listen, or a store that cannot announce (SQLite), still follows by polling."""

from __future__ import annotations

import time

import pytest

from benchmarks import scale_workload as workload
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import Follower, PolicyDecisionPoint
from pbgm.store.sql import SqlStore
from tests.store.conftest import policy_doc

ACTOR = "test"


def _publish(store: SqlStore, policy_id: str) -> None:
    store.create_policy(policy_doc(policy_id), actor=ACTOR)
    PolicyAdministrationPoint(store).publish(policy_id, actor=ACTOR)


def _caught_up(pdp: PolicyDecisionPoint, store: SqlStore, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pdp.revision == store.revisions().decisions:
            return True
        time.sleep(0.01)
    return False


def _started(
    store: SqlStore, *, every: float, listen: bool
) -> tuple[Follower, PolicyDecisionPoint]:
    follower = Follower(store, every=every, listen=listen)
    pdp = follower.add(PolicyDecisionPoint(store=store))
    follower.start()
    assert pdp.wait_ready(5)
    return follower, pdp


@pytest.mark.postgres
def test_a_listening_follower_applies_a_change_long_before_its_next_poll(postgres_engine):
    from tests.store.conftest import empty_postgres

    empty_postgres(postgres_engine)
    store = SqlStore(postgres_engine)
    follower, pdp = _started(store, every=60.0, listen=True)  # one poll a minute
    try:
        deadline = time.monotonic() + 5
        while not follower.listening and time.monotonic() < deadline:
            time.sleep(0.01)
        assert follower.listening
        for policy_id in ("p1", "p2"):
            _publish(store, policy_id)
            assert _caught_up(pdp, store, within=3.0)  # woken by the announcement
        assert [c.id for c in pdp.compiled.children] == ["p1", "p2"]
    finally:
        follower.stop()
    deadline = time.monotonic() + 3
    while follower.listening and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not follower.listening  # the listening thread ended with the follower


def test_a_follower_that_does_not_listen_polls(sql_store):
    """Without listening (or on SQLite, which announces nothing) changes come by polling."""
    follower, pdp = _started(sql_store, every=0.05, listen=False)
    try:
        assert not follower.listening
        _publish(sql_store, "p1")
        assert _caught_up(pdp, sql_store, within=3.0)
        assert [c.id for c in pdp.compiled.children] == ["p1"]
    finally:
        follower.stop()


def test_sqlite_announces_nothing(sqlite_url):
    store = SqlStore(sqlite_url)
    assert store.listen_decisions() is None
    follower, pdp = _started(store, every=0.05, listen=True)
    try:
        _publish(store, "p1")
        assert _caught_up(pdp, store, within=3.0)
        assert not follower.listening
    finally:
        follower.stop()
        store.close()


@pytest.mark.postgres
def test_a_bulk_import_is_announced_once_committed(postgres_engine):
    from pbgm.bundle import Bundle, import_bundle
    from tests.store.conftest import empty_postgres

    empty_postgres(postgres_engine)
    store = SqlStore(postgres_engine)
    listener = store.listen_decisions()
    assert listener is not None
    try:
        assert not listener.wait(0.05)  # nothing announced yet
        documents = tuple(workload.document(k) for k in range(3))
        import_bundle(store, Bundle(policies=documents), actor=ACTOR, publish=True)
        assert listener.wait(3.0)
        assert not listener.wait(0.05)  # taken at once, all of them
    finally:
        listener.close()
