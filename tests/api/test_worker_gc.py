"""A served worker leaves its long-lived objects out of the cyclic garbage collector's
work (`pbgm.api.server.freeze_long_lived`): the app at once, and its first policy sets
once they are loaded, however long that takes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbgm.api import create_app
from pbgm.api.server import freeze_long_lived
from pbgm.pdp import PolicyDecisionPoint
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW, example_store


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process's objects back in the collector's care afterwards."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _tracked_ids() -> set[int]:
    return {id(o) for o in gc.get_objects()}  # the generations: frozen objects are in none


def test_the_app_is_frozen_at_once_and_the_policy_sets_once_loaded(unfrozen, key_dir: Path):
    clock = FrozenClock(NOW)
    app = create_app({"keys_dir": str(key_dir)}, store=example_store(clock), clock=clock)
    decisions = app.extensions["pbgm"].decisions
    release = threading.Event()
    loads = PolicyDecisionPoint.sync

    def slow_sync(pdp: PolicyDecisionPoint) -> bool:
        release.wait(10)  # the first sets load only once the app is frozen
        return loads(pdp)

    PolicyDecisionPoint.sync = slow_sync  # type: ignore[method-assign]
    try:
        decisions.start(share_revisions=True)
        waiting = freeze_long_lived(decisions)
        assert gc.get_freeze_count() > 0 and id(app) not in _tracked_ids()
        assert not decisions.ready and waiting.is_alive()
        release.set()
        waiting.join(10)
    finally:
        PolicyDecisionPoint.sync = loads  # type: ignore[method-assign]
        decisions.follower.stop()
    assert decisions.ready and not waiting.is_alive()
    compiled = [pdp._compiled for pdp in decisions._preloaded]
    assert compiled and all(gc.is_tracked(c) for c in compiled)
    assert not {id(c) for c in compiled} & _tracked_ids()  # frozen after they loaded
