"""Inertia estimation as a grid service: runs built from simulated swings (controls.testing)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.services.inertia import InertiaService, create_service
from controls.testing import simulate_swing
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.events import Sample, ServiceRegistry, ServiceRun

EPOCH = 1_772_438_400.0  # 2026-03-02T08:00:00Z: fits must not suffer from epoch seconds
TOPIC = "/pbgm/services/inertia-estimation"
POLICY_PARAMETERS = {"f0_hz": 50, "s_base_mva": 10, "fit_window_ms": 200, "h_min_s": 0.5}


def run_for(
    h_s: float = 4.0, *, t_event: float = 2.0, duration_s: float = 4.0, **parameters: Any
) -> ServiceRun:
    record = simulate_swing(
        h_s, s_base_mw=10.0, t_event=t_event, duration_s=duration_s, f_noise_hz=0.0005
    )
    window = tuple(
        Sample(EPOCH + t, {"frequency": f, "active_power": p}, f, p)
        for t, f, p in zip(record.t, record.f_hz, record.p_mw, strict=True)
    )
    return ServiceRun(
        "inertia-estimation",
        {**POLICY_PARAMETERS, **parameters},
        "/edgeflex/edgepmu3/ch0",
        EPOCH + duration_s,
        window,
        "inertia-on-rocof",
    )


def published(bus: MemoryBus) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bus.subscribe(TOPIC, lambda m: out.append(json.loads(m.payload)))
    return out


@pytest.mark.parametrize(
    ("what", "h_s", "method"),
    [
        ("a light system, integral least squares", 2.0, "least_squares"),
        ("a typical system, integral least squares", 4.0, "least_squares"),
        ("a heavy system, integral least squares", 8.0, "least_squares"),
        ("a typical system, swing formula", 4.0, "swing"),
    ],
)
def test_the_estimate_of_a_simulated_swing_is_published(what: str, h_s: float, method: str) -> None:
    bus = MemoryBus()
    out = published(bus)
    outcome = InertiaService(bus, topic=TOPIC)(run_for(h_s, method=method))
    assert out == [outcome]
    assert outcome["status"] == "estimate"
    assert outcome["h_s"] == pytest.approx(h_s, rel=0.1)
    assert outcome["method"] == method
    assert outcome["t0"] == pytest.approx(EPOCH + 2.0, abs=0.05)
    assert outcome["delta_p_mw"] == pytest.approx(-0.5, rel=0.1)
    assert outcome["h_low_s"] < outcome["h_s"] < outcome["h_high_s"]
    assert (outcome["trigger"], outcome["topic"]) == ("inertia-on-rocof", "/edgeflex/edgepmu3/ch0")


@pytest.mark.parametrize(
    ("what", "run", "reason"),
    [
        ("a window without an event", run_for(t_event=100.0), "no_event"),
        ("a window of a few samples", run_for(duration_s=0.1), "too_few_samples"),
        ("an estimate outside the plausible range", run_for(4.0, h_max_s=3.0), "out_of_range"),
        ("no system base power", run_for(s_base_mva=None), "invalid_parameters"),
        (
            "a window that is not a positive duration",
            run_for(fit_window_ms=-5),
            "invalid_parameters",
        ),
    ],
)
def test_a_run_that_gives_no_estimate_publishes_the_reason(
    what: str, run: ServiceRun, reason: str
) -> None:
    bus = MemoryBus()
    out = published(bus)
    InertiaService(bus, topic=TOPIC)(run)
    [outcome] = out
    assert outcome["status"] == "rejected"
    assert outcome["reason"] == reason
    assert outcome["message"]


def test_the_service_is_built_by_the_event_services_registry_from_its_options() -> None:
    bus = MemoryBus()
    out = published(bus)
    options = {
        "inertia-estimation": {
            "factory": "adapters.services.inertia:create_service",
            "topic": TOPIC,
            "method": "swing",
            "limits": {"min_r2": 0.5},
        }
    }
    service = ServiceRegistry(bus, options=options).get("inertia-estimation")
    assert isinstance(service, InertiaService)
    service(run_for(4.0))
    assert out[0]["method"] == "swing"
    service(run_for(4.0, method="least_squares"))
    assert out[1]["method"] == "least_squares"  # the run's parameters win over the options
    assert service.limits.min_r2 == 0.5


@pytest.mark.parametrize(
    ("what", "options"),
    [
        ("an unknown option", {"topics": ["/x"]}),
        ("an unknown limit", {"limits": {"h_maximum": 3}}),
        ("an impossible limit", {"limits": {"h_min_s": 5, "h_max_s": 1}}),
        ("an unknown method", {"method": "guess"}),
    ],
)
def test_bad_options_are_configuration_errors(what: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        create_service(MemoryBus(), options)


@pytest.mark.parametrize(
    ("what", "settings", "says"),
    [
        ("a wildcard topic", {"topic": "/pbgm/services/#"}, "`inertia-estimation.topic`"),
        ("an empty topic", {"topic": ""}, "`inertia-estimation.topic`"),
        ("a topic that is no text", {"topic": 7}, "`inertia-estimation.topic`"),
        ("a QoS of 3", {"qos": 3}, "`inertia-estimation.qos`"),
        ("a QoS as a boolean", {"qos": True}, "`inertia-estimation.qos`"),
        ("a nominal frequency of 0", {"f0_hz": 0}, "`f0_hz`"),
        ("a NaN nominal frequency", {"f0_hz": float("nan")}, "`f0_hz`"),
        ("a negative base power", {"s_base_mw": -10.0}, "`s_base_mw`"),
        ("an infinite base power", {"s_base_mw": float("inf")}, "`s_base_mw`"),
        ("a base power as text", {"s_base_mw": "10"}, "`s_base_mw`"),
        ("limits as a mapping", {"limits": {"min_r2": 0.5}}, "`limits`"),
    ],
)
def test_bad_settings_made_in_code_are_refused_at_construction(
    what: str, settings: dict[str, Any], says: str
) -> None:
    """Accepted before, each failed every publish or rejected every run."""
    with pytest.raises(ConfigurationError) as raised:
        InertiaService(MemoryBus(), **settings)
    assert says in raised.value.message, what


@pytest.mark.parametrize(
    ("what", "options", "says"),
    [
        ("a wildcard topic", {"topic": "/pbgm/+/inertia"}, "`inertia-estimation.topic`"),
        ("a null topic (it was the topic `None`)", {"topic": None}, "`inertia-estimation.topic`"),
        ("a QoS of 5", {"qos": 5}, "`inertia-estimation.qos`"),
        ("a QoS that is no number", {"qos": "high"}, "`inertia-estimation.qos`"),
        ("a nominal frequency as a word", {"f0_hz": "fifty"}, "`f0_hz`"),
        ("a nominal frequency below 0", {"f0_hz": -50}, "`f0_hz`"),
        ("a base power of 0", {"s_base_mw": 0}, "`s_base_mw`"),
        ("limits that are no mapping", {"limits": 5}, "`limits`"),
    ],
)
def test_bad_options_name_the_setting(what: str, options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        create_service(MemoryBus(), options)
    assert says in raised.value.message, what


def test_good_settings_are_taken_in_code_and_from_options() -> None:
    bus = MemoryBus()
    out = published(bus)
    made = InertiaService(bus, topic=TOPIC, qos=0, f0_hz=60, s_base_mw=10)
    assert (made.topic, made.qos, made.f0_hz, made.s_base_mw) == (TOPIC, 0, 60.0, 10.0)
    options = {"topic": TOPIC, "qos": 2, "f0_hz": 50.0, "s_base_mw": 10, "limits": {}}
    service = create_service(bus, options)
    assert (service.qos, service.f0_hz, service.s_base_mw) == (2, 50.0, 10.0)
    assert service(run_for(4.0))["status"] == "estimate"
    assert out[0]["status"] == "estimate"
