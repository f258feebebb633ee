"""Policy propagation: from a change committed through the admin API to the loader's callback.

The bus figures say how fast the event service decides; this says how soon it decides on
a new policy. A real HTTP server runs the admin API (REST PUT + publish) and two loaders
follow it, one by push (the API's change notice over MQTT) and one by poll (1 s refresh
interval). The API and loader test fixtures (`tests.api.conftest`, `tests.test_loader`)
are reused, imported inside `propagation` so that the rest of the benchmark does not need
the test tree's dependencies.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bus_load import HOST


def propagation(port: int, pushes: int, polls: int) -> dict[str, Any]:
    """Admin change -> loader callback, by push over MQTT and by a 1 s poll."""
    from adapters.mqtt import open_mqtt_bus
    from pbgm.api._notify import install_change_notifications
    from pbgm.auth.keys import KeyRing
    from tests.api.conftest import SECRET, Server, make_world
    from tests.test_loader import BESS, admin_update, make_loader

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        KeyRing(root / "keys").generate()
        server = Server()
        world = make_world(server, root / "keys")
        topic = f"bench/changes/{secrets.token_hex(3)}"
        api_bus = open_mqtt_bus({"host": HOST, "port": port, "client_id": "bench-api"})
        loader_bus = open_mqtt_bus({"host": HOST, "port": port, "client_id": "bench-loader"})
        install_change_notifications(world.app, api_bus, world.store, topic=topic)
        for name in ("push", "poll"):
            (root / name).mkdir()
            (root / name / "secret").write_text(SECRET)
        pushed, by_push = make_loader(
            world, root / "push", BESS, bus=loader_bus, refresh_interval_s=3600,
            notifications={"topic": topic},
        )  # fmt: skip
        polled, by_poll = make_loader(world, root / "poll", BESS, refresh_interval_s=1)
        push_s: list[float] = []
        poll_s: list[float] = []
        try:
            with pushed, polled:
                version = 1
                by_push.wait_for(lambda item: item.version == 1)
                by_poll.wait_for(lambda item: item.version == 1)
                time.sleep(0.3)
                for k in range(max(pushes, polls)):
                    version += 1
                    started = time.perf_counter()
                    admin_update(world, 1.05 + 0.001 * k)
                    by_push.wait_for(lambda item, v=version: item.version == v)
                    push_s.append(time.perf_counter() - started)
                    if k < polls:
                        by_poll.wait_for(lambda item, v=version: item.version == v)
                        poll_s.append(time.perf_counter() - started)
        finally:
            api_bus.close()
            loader_bus.close()
            server.close()
    return {"push": _seconds(push_s), "poll": _seconds(poll_s)}


def _seconds(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "samples": len(ordered),
        "p50_s": round(ordered[len(ordered) // 2], 4),
        "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
        "max_s": round(ordered[-1], 4),
    }
