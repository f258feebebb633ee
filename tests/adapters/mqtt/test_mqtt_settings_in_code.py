"""`MqttSettings` made in code are checked by `MqttBus` as a config mapping is by
`MqttSettings.from_mapping`: a value the mapping would be refused for is the same
`ValidationError` naming the key when the bus is made, not a paho error at connect, a
dead network thread, a lost session or a publish that fails (no broker needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.mqtt import MqttBus, MqttSettings
from pbgm.errors import ValidationError
from tests.mqtt_broker import Pki

ROOT = Path(__file__).resolve().parents[3]
HOST = {"host": "broker.local"}


def bus_of(settings: MqttSettings) -> MqttBus:
    """An `MqttBus` that is never connected; closed by the caller."""
    return MqttBus(settings)


@pytest.fixture
def closing() -> Iterator[list[MqttBus]]:
    buses: list[MqttBus] = []
    yield buses
    for bus in buses:
        bus.close()


@pytest.mark.parametrize(
    ("case", "values", "key"),
    [
        ("no host", {"host": ""}, "host"),
        ("port zero", {"port": 0}, "port"),
        ("port above 65535", {"port": 70000}, "port"),
        ("port as text", {"port": "1883"}, "port"),
        ("websockets not offered", {"transport": "websockets"}, "transport"),
        ("unknown protocol", {"protocol": "4.0"}, "protocol"),
        ("persistent session without a client id (v5)", {"persistent_session": True},
         "client_id"),
        ("persistent session without a client id (3.1.1)",
         {"persistent_session": True, "protocol": "3.1.1"}, "client_id"),
        ("persistent session as text", {"persistent_session": "true"}, "persistent_session"),
        ("negative session expiry", {"session_expiry": -5, "persistent_session": True,
                                     "client_id": "c"}, "session_expiry"),
        ("negative keepalive", {"keepalive": -1}, "keepalive"),
        ("keepalive above 65535", {"keepalive": 70000}, "keepalive"),
        ("zero connect timeout", {"connect_timeout": 0}, "connect_timeout"),
        ("tls as text", {"tls": "yes"}, "tls"),
        ("missing CA file", {"tls": True, "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ("certificates with TLS off", {"tls": False, "ca_file": __file__}, "tls"),
        ("key file without certificate", {"tls": True, "key_file": __file__}, "key_file"),
        ("check_hostname as text", {"check_hostname": "no"}, "check_hostname"),
        ("empty user name", {"username": ""}, "username"),
        ("password without user", {"password": "p"}, "password"),
        ("password not a text", {"username": "u", "password": 1234}, "password"),
        ("zero min delay", {"min_delay": 0}, "min_delay"),
        ("zero max delay", {"max_delay": 0}, "max_delay"),
        ("min delay above max", {"min_delay": 5.0, "max_delay": 1.0}, "min_delay"),
        ("queue of zero", {"queue_size": 0}, "queue_size"),
        ("unknown queue policy", {"queue_policy": "block"}, "queue_policy"),
        ("inbound queue of zero", {"inbound_queue_size": 0}, "inbound_queue_size"),
        ("negative in-flight window", {"max_inflight": -1}, "max_inflight"),
        ("negative hold", {"hold_unmatched_s": -1.0}, "hold_unmatched_s"),
        ("hold above an hour", {"hold_unmatched_s": 4000.0}, "hold_unmatched_s"),
        ("ack_after_handling as text", {"ack_after_handling": "yes"}, "ack_after_handling"),
        ("client id above 65535 bytes", {"client_id": "c" * 70000}, "client_id"),
    ],
)  # fmt: skip
def test_a_bad_value_made_in_code_is_refused_when_the_bus_is_made(
    case: str, values: dict[str, Any], key: str, closing: list[MqttBus]
) -> None:
    settings = MqttSettings(**{**HOST, **values})
    with pytest.raises(ValidationError) as raised:
        closing.append(bus_of(settings))
    assert [p.path for p in raised.value.problems] == [f"$.{key}"], case
    assert f"(at `$.{key}`)" in raised.value.message


def test_every_bad_value_made_in_code_is_listed_at_once(closing: list[MqttBus]) -> None:
    settings = MqttSettings(host="h", port=0, keepalive=-1, queue_policy="x")
    with pytest.raises(ValidationError) as raised:
        closing.append(bus_of(settings))
    assert {p.path for p in raised.value.problems} >= {"$.port", "$.keepalive", "$.queue_policy"}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    """The bus mappings of the repository's examples, as `open_bus` hands them over."""
    out = []
    for name in ("events.yaml", "loader.yaml", "device-events.yaml"):
        bus = yaml.safe_load((ROOT / "examples" / name).read_text())["bus"]
        out.append((name, {k: v for k, v in bus.items() if k not in ("kind", "factory")}))
    broker = yaml.safe_load((ROOT / "examples" / "broker.yaml").read_text())["broker"]["bus"]
    out.append(("broker.yaml", broker))
    return out


GOOD_CONFIGS = [
    *_examples(),
    ("a host alone", {"host": "broker.local"}),
    ("mqtts url", {"url": "mqtts://b.example"}),
    ("mqtt url with a port", {"url": "mqtt://b.example:1884"}),
    ("3.1.1 persistent", {"host": "h", "protocol": "311", "persistent_session": True,
                          "client_id": "c"}),
    ("every bound", {"host": "h", "port": 65535, "keepalive": 0, "session_expiry": 0,
                     "connect_timeout": 0.1, "min_delay": 0.01, "max_delay": 0.01,
                     "queue_size": 1, "queue_policy": "raise", "inbound_queue_size": 1,
                     "max_inflight": 65535, "hold_unmatched_s": 3600,
                     "ack_after_handling": False}),
    ("credentials", {"host": "h", "username": "u", "password": "p", "tls": True}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "config"), GOOD_CONFIGS)
def test_what_the_reader_makes_passes_unchanged(
    case: str, config: dict[str, Any], tmp_path: Path, pki: Pki, closing: list[MqttBus]
) -> None:
    files = {}
    if "ca_file" in config:  # the example's files, made here
        files["ca_file"] = str(pki.ca_file)
    if "password_file" in config:
        files["password_file"] = str(tmp_path / "password")
        Path(files["password_file"]).write_text("secret\n")
    settings = MqttSettings.from_mapping({**config, **files})
    assert settings.checked() is settings, case
    bus = bus_of(settings)
    closing.append(bus)
    assert bus.settings is settings


@pytest.mark.parametrize(
    ("case", "values"),
    [
        ("the dataclass defaults", {}),
        ("an empty client id (the broker assigns one)", {"client_id": ""}),
        ("a fixed client id, persistent", {"client_id": "c", "persistent_session": True}),
        ("TLS with the system CAs", {"tls": True, "port": 8883}),
        ("TLS with a CA file", {"tls": True, "ca_file": __file__}),
        ("credentials", {"username": "u", "password": "p", "tls": True}),
        ("3.1.1", {"protocol": "3.1.1"}),
        ("whole seconds", {"connect_timeout": 5, "min_delay": 1, "max_delay": 30}),
    ],
)
def test_good_values_made_in_code_pass_unchanged(case: str, values: dict[str, Any]) -> None:
    settings = MqttSettings(**{**HOST, **values})
    assert settings.checked() is settings, case


def test_a_bus_made_in_code_keeps_its_settings(closing: list[MqttBus]) -> None:
    settings = MqttSettings(host="h", client_id="", queue_size=5, queue_policy="raise")
    bus = bus_of(settings)
    closing.append(bus)
    assert bus.settings is settings


def test_a_protocol_spelling_made_in_code_is_read_as_the_reader_reads_it(
    closing: list[MqttBus],
) -> None:
    """`5.0` is MQTT 5 in a config; made in code, the bus took it for 3.1.1."""
    bus = bus_of(MqttSettings(host="h", protocol="5.0"))
    closing.append(bus)
    assert bus.settings.protocol == "5"
