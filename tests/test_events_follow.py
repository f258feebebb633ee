"""The event service's policies follow the store's change feed (`pbgm.events.PolicyCache`):
a change reaches its decision points and triggers without reading the group again; a
gap in the feed makes it read everything once."""

from __future__ import annotations

from typing import Any

import pytest

from pbgm.events import PolicyCache
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store import _feed
from pbgm.store.base import PublishedSet
from pbgm.store.memory import MemoryStore
from pbgm.testing import make_request
from tests.api.conftest import EXAMPLES

GROUP = "grid-services"
TRIGGER = "inertia-on-rocof"


class Counting(MemoryStore):
    """A memory store that counts the whole reads of published policies it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.full_reads = 0

    def read_published(self, policy_group: Any = None, *, since: int | None = None) -> PublishedSet:
        read = super().read_published(policy_group, since=since)
        self.full_reads += read.full
        return read


@pytest.fixture
def store() -> Counting:
    from pbgm.bundle import import_bundle, read_bundle

    store = Counting()
    import_bundle(store, read_bundle(EXAMPLES / "policies"), actor="test", publish=True)
    return store


def _limit_to(store: Counting, runs: int) -> None:
    pap = PolicyAdministrationPoint(store)
    record = store.get_policy(TRIGGER)
    document = dict(record.document)
    document["content"] = {**document["content"], "max_runs_per_hour": runs}
    pap.update(TRIGGER, document, actor="test", expected_version=record.version)
    pap.publish(TRIGGER, actor="test")


def _runs(cache: PolicyCache) -> list[int | None]:
    return [t.max_runs_per_hour for t in cache.triggers(GROUP)]


def test_a_change_reaches_triggers_and_decisions_without_a_reload(store: Counting):
    cache = PolicyCache(store, refresh_s=0.02)
    assert [t.policy_id for t in cache.triggers(GROUP)] == [TRIGGER]
    request = make_request(
        {"id": "pbgm-event-service"}, {"service": "inertia-estimation"}, {"id": "trigger"}
    )
    assert cache.decider(GROUP).decide(request).allowed
    loaded, reloads = store.full_reads, cache.reloads
    assert (loaded, reloads) == (2, 1)  # the decision point's first load and the triggers'
    _limit_to(store, 7)
    assert cache.settle(10)
    assert _runs(cache) == [7]
    PolicyAdministrationPoint(store).retire(TRIGGER, actor="test")
    assert cache.settle(10)
    assert cache.triggers(GROUP) == ()
    assert not cache.decider(GROUP).decide(request).allowed
    assert (store.full_reads, cache.reloads) == (loaded, reloads)  # only what changed was read
    cache.follower.stop()


def test_a_gap_in_the_feed_reads_the_group_once(store: Counting, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_feed, "FEED_LENGTH", 1)
    cache = PolicyCache(store, refresh_s=0.02)
    assert _runs(cache) != [9]
    cache.follower.stop()
    loaded, reloads = store.full_reads, cache.reloads
    for runs in (5, 6, 7, 8, 9):  # more changes than the feed keeps
        _limit_to(store, runs)
    cache.refresh(force=True)
    assert _runs(cache) == [9]
    assert cache.reloads == reloads + 1
    assert store.full_reads == loaded + 2  # the decision point's and the triggers' read
    cache.follower.stop()
