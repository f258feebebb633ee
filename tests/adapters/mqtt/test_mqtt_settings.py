"""MQTT settings from a config mapping, the topic defaults, and error classification
(no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt import EDGEFLEX_TOPICS, MqttBus, MqttSettings, Topics, make_client
from adapters.mqtt._errors import connect_failure, refusal
from pbgm.errors import ConfigurationError, ValidationError


def test_defaults_for_a_host_alone() -> None:
    settings = MqttSettings.from_mapping({"host": "broker.local"})
    assert (settings.port, settings.protocol, settings.tls) == (1883, "5", False)
    assert (settings.queue_size, settings.queue_policy) == (10000, "drop_oldest")
    assert settings.client_id.startswith("pbgm-")
    assert not settings.persistent_session


@pytest.mark.parametrize(
    ("case", "config", "expected"),
    [
        (
            "mqtts url turns TLS on, port 8883",
            {"url": "mqtts://b.example"},
            ("b.example", 8883, True),
        ),
        ("mqtt url with a port", {"url": "mqtt://b.example:1884"}, ("b.example", 1884, False)),
        ("a CA file turns TLS on", {"host": "h", "ca_file": "CA"}, ("h", 8883, True)),
        ("explicit port wins", {"host": "h", "tls": True, "port": 9999}, ("h", 9999, True)),
    ],
)
def test_addresses(
    case: str, config: dict[str, Any], expected: tuple[Any, ...], tmp_path: Path
) -> None:
    if "ca_file" in config:
        (tmp_path / "ca.pem").write_text("x")
        config = {**config, "ca_file": str(tmp_path / "ca.pem")}
    settings = MqttSettings.from_mapping(config)
    assert (settings.host, settings.port, settings.tls) == expected


@pytest.mark.parametrize(
    ("case", "config", "path"),
    [
        ("no host", {}, "$.host"),
        ("unknown key (a typo)", {"host": "h", "pasword": "x"}, "$.pasword"),
        ("bad protocol", {"host": "h", "protocol": "4.0"}, "$.protocol"),
        ("port out of range", {"host": "h", "port": 70000}, "$.port"),
        ("port as text", {"host": "h", "port": "1883"}, "$.port"),
        ("unknown queue policy", {"host": "h", "queue_policy": "block"}, "$.queue_policy"),
        ("queue of zero", {"host": "h", "queue_size": 0}, "$.queue_size"),
        ("persistent without client id", {"host": "h", "persistent_session": True}, "$.client_id"),
        ("min delay above max", {"host": "h", "min_delay": 5, "max_delay": 1}, "$.min_delay"),
        ("missing CA file", {"host": "h", "ca_file": "/nonexistent/ca.pem"}, "$.ca_file"),
        ("password without user", {"host": "h", "password": "p"}, "$.password"),
        ("both password forms", {"host": "h", "username": "u", "password": "p",
                                 "password_file": "/x"}, "$.password"),
        ("credentials in the url", {"url": "mqtt://u:p@h"}, "$.url"),
        ("other scheme", {"url": "http://h"}, "$.url"),
        ("websockets not offered", {"host": "h", "transport": "websockets"}, "$.transport"),
        ("certificates with TLS off", {"host": "h", "tls": False, "ca_file": __file__}, "$.tls"),
    ],
)  # fmt: skip
def test_invalid_settings_are_listed(case: str, config: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        MqttSettings.from_mapping(config)
    assert path in [p.path for p in raised.value.problems]
    assert raised.value.code == "validation_failed"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        MqttSettings.from_mapping({"port": 0, "keepalive": -1, "queue_policy": "x"})
    assert {p.path for p in raised.value.problems} >= {"$.host", "$.port", "$.keepalive"}


def test_the_password_comes_from_a_file_and_never_shows(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    settings = MqttSettings.from_mapping(
        {"host": "h", "username": "svc", "password_file": str(secret), "tls": True}
    )
    assert settings.password == "s3cret-value"
    assert "s3cret" not in repr(settings)


def test_an_unreadable_password_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        MqttSettings.from_mapping(
            {"host": "h", "username": "u", "password_file": str(tmp_path / "missing")}
        )
    assert [p.path for p in raised.value.problems] == ["$.password_file"]


def test_protocol_spellings() -> None:
    for spelling, expected in (("3.1.1", "3.1.1"), ("311", "3.1.1"), (5, "5"), ("5.0", "5")):
        assert MqttSettings.from_mapping({"host": "h", "protocol": spelling}).protocol == expected


def test_the_tls_context_checks_hostnames_and_needs_tls12() -> None:
    context = MqttSettings.from_mapping({"host": "h", "tls": True}).ssl_context()
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    relaxed = MqttSettings.from_mapping({"host": "h", "tls": True, "check_hostname": False})
    assert not relaxed.ssl_context().check_hostname


def test_edgeflex_topic_defaults_keep_the_published_spelling() -> None:
    assert EDGEFLEX_TOPICS.voltage == "/voltage_control/measuremnts/voltage"
    assert EDGEFLEX_TOPICS.pv == "/voltage_control/measuremnts/pv"
    assert EDGEFLEX_TOPICS.active_power_ess == "/voltage_control/control/active_power_ESS"
    assert EDGEFLEX_TOPICS.flex_request == "/edgeflex/goflex/flex_request"
    assert EDGEFLEX_TOPICS.flex_result == "/edgeflex/goflex/flex_result"


def test_topics_are_overridable_by_key() -> None:
    topics = Topics.from_mapping({"voltage": "/feeder7/voltage"})
    assert topics.voltage == "/feeder7/voltage"
    assert topics.pv == EDGEFLEX_TOPICS.pv
    assert topics.as_dict()["voltage"] == "/feeder7/voltage"


@pytest.mark.parametrize(
    ("case", "overrides", "says"),
    [
        ("unknown key", {"voltag": "/x"}, "unknown topic `voltag`"),
        ("wildcard in a topic name", {"voltage": "/x/+"}, "must not contain"),
        ("empty name", {"pv": ""}, "non-empty"),
    ],
)
def test_bad_topic_overrides_are_refused(case: str, overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Topics.from_mapping(overrides)
    assert says in raised.value.message


@pytest.mark.parametrize(
    ("made", "says"),
    [
        ({"voltage": "/x/+"}, "topic `voltage`"),
        ({"flex_request": "/edgeflex/#"}, "topic `flex_request`"),
        ({"pv": ""}, "topic `pv`"),
    ],
)
def test_topics_made_in_code_are_checked_as_overrides_are(made: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Topics(**made)  # a wildcard would fail at every publish
    assert says in raised.value.message


@pytest.mark.parametrize(
    ("case", "reason", "code"),
    [
        ("bad user name or password", 0x86, "mqtt_auth_failed"),
        ("not authorized", 0x87, "mqtt_auth_failed"),
        ("bad authentication method", 0x8C, "mqtt_auth_failed"),
        ("server unavailable is transient", 0x88, "mqtt_unreachable"),
        ("server busy is transient", 0x89, "mqtt_unreachable"),
        ("unsupported protocol version", 0x84, "mqtt_refused"),
        ("client identifier not valid", 0x85, "mqtt_refused"),
        ("banned", 0x8A, "mqtt_refused"),
    ],
)
def test_connack_refusals_are_classified(case: str, reason: int, code: str) -> None:
    error = refusal("h:1", reason, case)
    assert error.code == code
    assert "`h:1`" in error.message


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        (
            "connection refused",
            ConnectionRefusedError(111, "Connection refused"),
            "mqtt_unreachable",
        ),
        ("timeout", TimeoutError("timed out"), "mqtt_unreachable"),
        ("tls cut short is transient", ssl.SSLEOFError(8, "EOF"), "mqtt_unreachable"),
        ("certificate verification", ssl.SSLCertVerificationError(1, "verify"), "mqtt_tls_failed"),
        ("tls alert", ssl.SSLError(1, "alert"), "mqtt_tls_failed"),
        ("nothing known", None, "mqtt_unreachable"),
    ],
)
def test_socket_failures_are_classified(case: str, error: BaseException | None, code: str) -> None:
    failure = connect_failure("h:1", error)
    assert failure.code == code
    assert failure.message == failure.message.rstrip(".")


@pytest.mark.parametrize(
    ("what_is_checked", "config", "window"),
    [
        ("no window of our own by default (paho's fast path)", {}, 0),
        ("a window for a broker that enforces its Receive Maximum", {"max_inflight": 20}, 20),
    ],
)
def test_the_in_flight_window_reaches_paho(
    what_is_checked: str, config: dict[str, Any], window: int
) -> None:
    settings = MqttSettings.from_mapping({"host": "broker.local", **config})
    client = make_client(settings)
    bus = MqttBus(settings, client=client)
    try:
        assert settings.max_inflight == window
        assert client.max_inflight_messages == window
    finally:
        bus.close()


@pytest.mark.parametrize(
    "config",
    [
        {"host": "broker.feeder3.example"},
        {"url": "mqtt://10.0.0.7:1883"},
        {"host": "10.0.0.7", "tls": False, "plaintext_password": False},
    ],
)
def test_a_password_to_another_host_without_tls_is_refused(config: dict[str, Any]) -> None:
    """It would cross the network in the clear, as the REST peers' secrets may not."""
    with pytest.raises(ValidationError) as raised:
        MqttSettings.from_mapping(config | {"username": "svc", "password": "p"})
    assert [p.path for p in raised.value.problems] == ["$.password"]
    assert "plaintext_password" in raised.value.problems[0].message
    host = MqttSettings.from_mapping(config).host
    with pytest.raises(ValidationError):  # made in code: the same rule
        MqttSettings(host=host, username="svc", password="p").checked()


@pytest.mark.parametrize(
    "config",
    [
        {"host": "127.0.0.1"},
        {"host": "::1"},
        {"host": "localhost"},
        {"host": "broker.feeder3.example", "tls": True},
        {"url": "mqtts://broker.feeder3.example"},
        {"host": "10.0.0.7", "plaintext_password": True},
    ],
)
def test_a_password_over_tls_on_this_host_or_allowed_in_the_clear_is_taken(
    config: dict[str, Any],
) -> None:
    settings = MqttSettings.from_mapping(config | {"username": "svc", "password": "p"})
    assert settings.password == "p"
    assert settings.checked() is settings
