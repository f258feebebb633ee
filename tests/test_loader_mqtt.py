"""Push over a real broker: the API's change notice and the loader's retained delivery on
the local Mosquitto (127.0.0.1:1883, anonymous) through `adapters.mqtt`."""

from __future__ import annotations

import json
import queue
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbgm.api._notify import install_change_notifications
from pbgm.auth.keys import KeyRing
from pbgm.bus import Bus, BusMessage, open_bus
from tests.api.conftest import SECRET, Server, World, make_world
from tests.conftest import LOCAL_BROKER
from tests.test_loader import BESS, admin_update, make_loader

pytestmark = pytest.mark.mosquitto

MQTT = {"factory": "adapters.mqtt:open_mqtt_bus", "host": LOCAL_BROKER[0], "port": LOCAL_BROKER[1]}


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    keys = tmp_path_factory.mktemp("mqtt-keys")
    KeyRing(keys).generate()
    running = Server()
    yield make_world(running, keys)
    running.close()


def connect(buses: list[Bus], name: str) -> Bus:
    bus = open_bus({**MQTT, "client_id": f"pbgm-loader-test-{name}-{secrets.token_hex(3)}"})
    buses.append(bus)
    return bus


def test_an_admin_change_reaches_the_loader_by_push_over_mosquitto(
    world: World, buses: list[Bus], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"pbgm-test/{secrets.token_hex(4)}"
    server_bus, loader_bus, reader_bus = (connect(buses, n) for n in ("api", "loader", "reader"))
    install_change_notifications(world.app, server_bus, world.store, topic=f"{prefix}/changes")
    (tmp_path / "secret").write_text(SECRET)
    retained = {"mqtt_topic": f"{prefix}/limits", "retain": True}
    loader, _ = make_loader(
        world,
        tmp_path,
        {**BESS, "deliver_to": retained},
        bus=loader_bus,
        refresh_interval_s=3600,
        notifications={"topic": f"{prefix}/changes"},
    )
    arrivals: queue.Queue[dict[str, Any]] = queue.Queue()
    try:
        with loader:
            first = _wait_retained(reader_bus, f"{prefix}/limits", arrivals, version=1)
            time.sleep(0.3)  # the loader's subscription to the notices is in place
            started = time.perf_counter()
            admin_update(world, 1.07)
            second = _next_version(arrivals, version=2)
            elapsed = time.perf_counter() - started
    finally:
        reader_bus.publish(f"{prefix}/limits", b"", retain=True)  # clear the retained copy
    with capsys.disabled():
        print(f"\npropagation over Mosquitto, admin change -> retained delivery: {elapsed:.3f} s")
    assert first["source"] == "server"
    assert second["document"]["content"]["voltage"]["v_max_pu"] == 1.07
    assert elapsed < 10


def _wait_retained(
    bus: Bus, topic: str, arrivals: queue.Queue[dict[str, Any]], *, version: int
) -> dict[str, Any]:
    def keep(message: BusMessage) -> None:
        if message.payload:
            arrivals.put(json.loads(message.payload))

    bus.subscribe(topic, keep, qos=1)
    return _next_version(arrivals, version=version)


def _next_version(arrivals: queue.Queue[dict[str, Any]], *, version: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        item = arrivals.get(timeout=max(0.01, deadline - time.monotonic()))
        if item["version"] == version:
            return item
