"""Fixtures for the MQTT adapter tests: a real Mosquitto with TLS and a password file.

`broker` is shared by the session (started once); `own_broker` is a fresh one for a test
that stops or restarts it. Without the mosquitto binary the tests skip with an install
hint (and fail under `CI=true`, see `tests/conftest.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt import MqttBus, MqttSettings
from tests.conftest import require_service
from tests.mqtt_broker import INSTALL_HINT, Broker, Pki, mosquitto_binary


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _started(directory: Path, pki: Pki) -> Broker:
    if mosquitto_binary() is None:
        require_service("mosquitto", f"not found: {INSTALL_HINT}")
    broker = Broker(directory, pki)
    broker.start()
    return broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Broker]:
    started = _started(tmp_path_factory.mktemp("broker"), pki)
    yield started
    started.stop()


@pytest.fixture
def own_broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    started = _started(tmp_path / "broker", pki)
    yield started
    started.stop()


MakeBus = Callable[..., MqttBus]


@pytest.fixture
def make_bus() -> Iterator[MakeBus]:
    """`make_bus(config, connect=True)`: an `MqttBus`, closed at the end of the test."""
    buses: list[MqttBus] = []

    def make(config: Mapping[str, Any], *, connect: bool = True) -> MqttBus:
        bus = MqttBus(MqttSettings.from_mapping(config))
        buses.append(bus)
        if connect:
            bus.connect(timeout=10)
        return bus

    yield make
    for bus in buses:
        bus.close()
