"""Connecting to a real Mosquitto: credentials, TLS, and what happens when it fails.

A fatal failure (bad credentials, TLS) must raise a clear error with a stable code and
must not retry: the client counts its attempts (`connection_attempts`) and the broker
log counts the connections it saw; both stay at one while we wait several back-off
periods (min_delay is 0.05 s in these configs, so a retrying client would try >10 times).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.mqtt import MqttBus, MqttSettings, open_mqtt_bus
from pbgm.bus import BusConnectionError, open_bus
from tests.adapters.mqtt.conftest import MakeBus
from tests.mqtt_broker import Broker, free_port

WAIT_FOR_STORM = 0.6

pytestmark = pytest.mark.mosquitto


def _wrong_password(broker: Broker) -> dict[str, Any]:
    return broker.bus_config(password="not-the-password")


def _unknown_user(broker: Broker) -> dict[str, Any]:
    return broker.bus_config(user="mallory", password="whatever")


def _no_credentials(broker: Broker) -> dict[str, Any]:
    return broker.bus_config(username=None, password=None)


def _wrong_ca(broker: Broker) -> dict[str, Any]:
    return broker.bus_config(ca_file=str(broker.pki.other_ca_file))


def _expired_client_cert(broker: Broker) -> dict[str, Any]:
    return broker.cert_config(broker.pki.expired_client)


def _client_cert_of_other_ca(broker: Broker) -> dict[str, Any]:
    return broker.cert_config(broker.pki.foreign_client)


def _hostname_mismatch(broker: Broker) -> dict[str, Any]:
    return broker.bus_config(port=broker.elsewhere_port)


FATAL = [
    ("wrong password", _wrong_password, "mqtt_auth_failed", "refused the credentials"),
    ("unknown user", _unknown_user, "mqtt_auth_failed", "refused the credentials"),
    ("no credentials", _no_credentials, "mqtt_auth_failed", "refused the credentials"),
    ("server cert from an unknown CA", _wrong_ca, "mqtt_tls_failed", "certificate"),
    ("expired client certificate", _expired_client_cert, "mqtt_tls_failed", "expired"),
    ("client cert of another CA", _client_cert_of_other_ca, "mqtt_tls_failed", "unknown ca"),
    ("hostname mismatch", _hostname_mismatch, "mqtt_tls_failed", "mismatch"),
]


def _connections_in_log(broker: Broker) -> int:
    return broker.log_text().count("New connection from")


@pytest.mark.parametrize(("case", "config", "code", "says"), FATAL, ids=[c[0] for c in FATAL])
def test_a_fatal_failure_raises_its_code_and_is_not_retried(
    broker: Broker, case: str, config: Any, code: str, says: str
) -> None:
    bus = MqttBus(MqttSettings.from_mapping(config(broker)))
    seen_before = _connections_in_log(broker)
    try:
        with pytest.raises(BusConnectionError) as raised:
            bus.connect(timeout=5)
        time.sleep(WAIT_FOR_STORM)
        assert raised.value.code == code
        assert says in raised.value.message
        assert bus.failure is raised.value
        assert bus.stats()["connection_attempts"] == 1
        assert _connections_in_log(broker) - seen_before <= 2
    finally:
        bus.close()


def test_error_messages_never_show_the_password(broker: Broker) -> None:
    bus = MqttBus(MqttSettings.from_mapping(_wrong_password(broker)))
    try:
        with pytest.raises(BusConnectionError) as raised:
            bus.connect(timeout=5)
    finally:
        bus.close()
    assert "not-the-password" not in str(raised.value.as_dict())
    assert "not-the-password" not in repr(bus.settings)


def test_an_unreachable_broker_is_retried_with_growing_delays() -> None:
    config = {"host": "127.0.0.1", "port": free_port(), "min_delay": 0.1, "max_delay": 0.4}
    bus = MqttBus(MqttSettings.from_mapping(config))
    started = time.monotonic()
    try:
        with pytest.raises(BusConnectionError) as raised:
            bus.connect(timeout=2.5)
        elapsed = time.monotonic() - started
        attempts = bus.stats()["connection_attempts"]
    finally:
        bus.close()
    assert raised.value.code == "mqtt_unreachable"
    assert "connection refused" in raised.value.message
    # delays 0.05-0.1, 0.1-0.2, then 0.2-0.4 s: 6 to 14 attempts in 2.5 s; no back-off: 25+
    assert 2.4 <= elapsed < 4.5
    assert 5 <= attempts <= 15


@pytest.mark.parametrize(
    ("case", "how"),
    [
        ("password over TLS", lambda b: b.bus_config()),
        ("client certificate", lambda b: b.cert_config()),
        ("password over TLS, MQTT 3.1.1", lambda b: b.bus_config(protocol="3.1.1")),
        ("no hostname check", lambda b: b.bus_config(port=b.elsewhere_port, check_hostname=False)),
        ("localhost by name", lambda b: b.bus_config(host="localhost")),
    ],
)
def test_valid_credentials_connect(broker: Broker, make_bus: MakeBus, case: str, how: Any) -> None:
    bus = make_bus(how(broker))
    assert bus.connected
    assert bus.failure is None
    assert bus.stats()["connection_attempts"] == 1


def test_open_bus_reaches_the_adapter_through_a_factory(broker: Broker) -> None:
    config = {"kind": "mqtt", "factory": "adapters.mqtt:open_mqtt_bus", **broker.bus_config()}
    bus = open_bus(config)
    try:
        assert isinstance(bus, MqttBus)
        assert bus.connected
    finally:
        bus.close()


def test_open_mqtt_bus_raises_and_leaves_no_thread(broker: Broker) -> None:
    import threading

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(BusConnectionError) as raised:
        open_mqtt_bus(_wrong_password(broker))
    assert raised.value.code == "mqtt_auth_failed"
    time.sleep(0.1)
    assert {t.name for t in threading.enumerate()} <= before
