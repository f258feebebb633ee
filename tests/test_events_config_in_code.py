"""An `EventServiceConfig` made in code is checked as one read from a file.

`EventService` refuses a bad configuration at construction with the `ConfigurationError`
the file reader raises, naming the setting's path, instead of failing (or misbehaving)
when messages arrive; every configuration the file reader makes, the examples included,
passes unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.events import EventService, EventServiceConfig, JwtConfig, SubscriptionConfig
from pbgm.testing import memory_store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PMU = SubscriptionConfig(
    topic="/edgeflex/+/ch0",
    kind="measurement",
    codec="json.edgeflex",
    policy_group="grid-services",
    device_level=2,
)
REQUESTS = SubscriptionConfig(
    topic="/pbgm/requests/data", kind="data_request", codec="json", policy_group="data-sharing"
)
JWT = JwtConfig(issuer="https://pbgm.example", audience="pbgm-api", keys_dir=Path("keys"))
GOOD = EventServiceConfig(
    subscriptions=(PMU, REQUESTS),
    policies=(Path("policies"),),
    jwt=JWT,
    services={"inertia-estimation": {"method": "least_squares"}},
)


def _pmu(**change: Any) -> dict[str, Any]:
    return {"subscriptions": (dataclasses.replace(PMU, **change), REQUESTS)}


def _jwt(**change: Any) -> dict[str, Any]:
    return {"jwt": dataclasses.replace(JWT, **change)}


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("a negative RoCoF window", {"rocof_window_ms": -5}, "$.rocof_window_ms"),
    ("a RoCoF window as a float", {"rocof_window_ms": 200.0}, "$.rocof_window_ms"),
    ("no RoCoF window", {"rocof_window_ms": None}, "$.rocof_window_ms"),
    ("a zero power-step window", {"delta_p_window_ms": 0}, "$.delta_p_window_ms"),
    ("a negative history", {"history_s": -1}, "$.history_s"),
    ("a NaN history", {"history_s": math.nan}, "$.history_s"),
    ("an infinite history", {"history_s": math.inf}, "$.history_s"),
    ("a boolean history", {"history_s": True}, "$.history_s"),
    ("no history", {"history_s": None}, "$.history_s"),
    ("no samples per topic", {"max_samples_per_topic": 0}, "$.max_samples_per_topic"),
    ("no topics", {"max_topics": 0}, "$.max_topics"),
    ("a negative refresh", {"refresh_ms": -1}, "$.refresh_ms"),
    ("no service workers", {"service_workers": 0}, "$.service_workers"),
    ("a negative audit interval", {"audit_interval_s": -5}, "$.audit_interval_s"),
    ("a zero reply window", {"reply_window_s": 0}, "$.reply_window_s"),
    ("an empty service id", {"service_id": ""}, "$.service_id"),
    ("no reply topic prefix", {"reply_topic_prefix": None}, "$.reply_topic_prefix"),
    ("no notification topic", {"notification_topic": None}, "$.notification_topic"),
    ("an empty policy group", {"policy_group": ""}, "$.policy_group"),
    ("a non-boolean require_policies", {"require_policies": 1}, "$.require_policies"),
    ("no subscriptions", {"subscriptions": ()}, "$.subscriptions"),
    ("a bus that is not a mapping", {"bus": "memory"}, "$.bus"),
    ("an empty store URL", {"store": "", "policies": ()}, "$.store"),
    ("store together with policies", {"store": "sqlite:///x.db"}, "$.policies"),
    ("services that are not mappings", {"services": {"x": 1}}, "$.services.x"),
    ("a QoS of 5", _pmu(qos=5), "$.subscriptions[0].qos"),
    ("a boolean QoS", _pmu(qos=True), "$.subscriptions[0].qos"),
    ("an unknown kind", _pmu(kind="alarm"), "$.subscriptions[0].kind"),
    ("a bad topic filter", _pmu(topic="/a/#/b"), "$.subscriptions[0].topic"),
    ("an empty topic", _pmu(topic=""), "$.subscriptions[0].topic"),
    ("an empty codec", _pmu(codec=""), "$.subscriptions[0].codec"),
    ("no policy group", _pmu(policy_group=None), "$.subscriptions[0].policy_group"),
    ("a non-boolean decide", _pmu(decide="yes"), "$.subscriptions[0].decide"),
    ("a negative device level", _pmu(device_level=-1), "$.subscriptions[0].device_level"),
    ("a zero base power", _pmu(s_base_mw=0), "$.subscriptions[0].s_base_mw"),
    ("an empty power field", _pmu(power_field=""), "$.subscriptions[0].power_field"),
    (
        "a bad second subscription",
        {"subscriptions": (PMU, dataclasses.replace(REQUESTS, qos=-1))},
        "$.subscriptions[1].qos",
    ),
    ("jwt with two key sources", _jwt(jwks_file=Path("jwks.json")), "$.jwt"),
    ("jwt without a key source", _jwt(keys_dir=None), "$.jwt"),
    ("jwt with an empty issuer", _jwt(issuer=""), "$.jwt.issuer"),
    ("jwt with a negative leeway", _jwt(leeway_s=-5), "$.jwt.leeway_s"),
    ("jwt with an infinite leeway", _jwt(leeway_s=math.inf), "$.jwt.leeway_s"),
    ("jwt without a leeway", _jwt(leeway_s=None), "$.jwt.leeway_s"),
]


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


def _construct(config: EventServiceConfig, bus: MemoryBus) -> EventService:
    service = EventService(config, bus=bus, store=memory_store())
    service.close()
    return service


@pytest.mark.parametrize(("what", "change", "path"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_configuration_made_in_code_is_refused_at_construction(
    what: str, change: dict[str, Any], path: str, bus: MemoryBus
) -> None:
    config = dataclasses.replace(GOOD, **change)
    with pytest.raises(ConfigurationError) as raised:
        EventService(config, bus=bus, store=memory_store())
    assert raised.value.message.startswith(f"`{path}`"), raised.value.message


@pytest.mark.parametrize(("what", "change", "path"), BAD, ids=[b[0] for b in BAD])
def test_checked_refuses_what_the_file_reader_refuses(
    what: str, change: dict[str, Any], path: str
) -> None:
    config = dataclasses.replace(GOOD, **change)
    with pytest.raises(ConfigurationError) as raised:
        config.checked()
    assert raised.value.message.startswith(f"`{path}`"), raised.value.message


def test_a_good_configuration_made_in_code_is_kept_as_it_is(bus: MemoryBus) -> None:
    assert GOOD.checked() is GOOD
    assert GOOD.policies == (Path("policies"),)  # not resolved against a directory
    assert _construct(GOOD, bus).config is GOOD


def _example_files() -> Iterator[Path]:
    """The example files that are event service configurations."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if "subscriptions:" in path.read_text(encoding="utf-8"):
            yield path


def test_the_examples_include_the_event_service_configurations() -> None:
    names = {p.name for p in _example_files()}
    assert {"events.yaml", "device-events.yaml"} <= names


def _read_configs() -> Iterator[Any]:
    for path in _example_files():
        yield pytest.param(lambda path=path: EventServiceConfig.load(path), id=path.name)
    minimal = {"subscriptions": [{"topic": "/a/#", "kind": "measurement"}]}
    readings: dict[str, dict[str, Any]] = {
        "minimal": minimal,
        "every kind with defaults": {
            "subscriptions": [
                {"topic": "/m/#", "kind": "measurement"},
                {"topic": "/r", "kind": "data_request"},
                {"topic": "/g", "kind": "grid_state", "qos": 0, "decide": False},
            ]
        },
        "store and a JWKS file": {
            **minimal,
            "store": "sqlite:///pbgm.db",
            "jwt": {"issuer": "i", "audience": "a", "jwks_file": "jwks.json", "leeway_s": 0},
        },
        "lowest values": {
            **minimal,
            "policies": ["p.json", "/abs/bundle"],
            "refresh_ms": 0,
            "audit_interval_s": 0,
            "max_samples_per_topic": 10,
            "max_topics": 1,
            "service_workers": 1,
            "rocof_window_ms": 1,
            "history_s": 0.001,
            "services": {"s": {"factory": "x:y", "nested": {"a": [1, 2]}}},
            "bus": {"kind": "mqtt", "tls": {"ca_file": "ca.pem"}},
            "require_policies": True,
        },
    }
    for name, data in readings.items():
        yield pytest.param(
            lambda data=data: EventServiceConfig.from_mapping(data, base_dir=Path("/srv")),
            id=name,
        )


@pytest.mark.parametrize("read", list(_read_configs()))
def test_every_configuration_the_file_reader_makes_passes_unchanged(
    read: Any, bus: MemoryBus
) -> None:
    config = read()
    assert config.checked() is config
    assert _construct(config, bus).config is config


def test_open_event_service_refuses_a_bad_configuration_before_opening_anything(tmp_path: Path):
    """`open_event_service` checks first: a bad setting is named before the policy files
    (here one that does not exist) or the store are opened."""
    from pbgm.events import open_event_service

    missing = tmp_path / "missing.yaml"
    config = dataclasses.replace(GOOD, store=None, policies=(missing,), max_topics=0)
    with pytest.raises(ConfigurationError) as raised:
        open_event_service(config, bus=MemoryBus())
    assert raised.value.message.startswith("`$.max_topics`"), raised.value.message
