"""The MQTT adapter: `pbgm.bus.Bus` over paho-mqtt 2.x, with TLS, passwords, MQTT 5 and
3.1.1, QoS 0/1/2, persistent sessions, reconnection with back-off and jitter,
resubscription and a bounded queue for publishes while disconnected.

`open_mqtt_bus(config)` is the `pbgm.bus` entry point `mqtt`
(`open_bus({"kind": "mqtt", "host": ...})`); the config keys are listed in
`adapters.mqtt._settings`. Connection failures raise `pbgm.bus.BusConnectionError`
subclasses with the codes `mqtt_auth_failed`, `mqtt_tls_failed`, `mqtt_refused` and
`mqtt_unreachable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.mqtt._bus import MqttBus
from adapters.mqtt._errors import (
    BrokerAuthError,
    BrokerRefusedError,
    BrokerTlsError,
    BrokerUnreachableError,
)
from adapters.mqtt._paho import make_client
from adapters.mqtt._queues import COUNTERS
from adapters.mqtt._settings import QUEUE_POLICIES, MqttSettings
from adapters.mqtt.topics import EDGEFLEX_TOPICS, Topics

__all__ = [
    "COUNTERS",
    "EDGEFLEX_TOPICS",
    "QUEUE_POLICIES",
    "BrokerAuthError",
    "BrokerRefusedError",
    "BrokerTlsError",
    "BrokerUnreachableError",
    "MqttBus",
    "MqttSettings",
    "Topics",
    "make_client",
    "open_mqtt_bus",
]


def open_mqtt_bus(config: Mapping[str, Any]) -> MqttBus:
    """A connected `MqttBus` for `config`; raises a `BusConnectionError` (and leaves no
    thread behind) when the broker cannot be used within `connect_timeout` seconds."""
    bus = MqttBus(MqttSettings.from_mapping(config))
    try:
        bus.connect(timeout=bus.settings.connect_timeout)
    except BaseException:
        bus.close()
        raise
    return bus
