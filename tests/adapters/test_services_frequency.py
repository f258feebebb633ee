"""The frequency-control service on an in-process bus: bounds from policies, live changes."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.services.frequency import FrequencyService, Signal, frequency_limits
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.policy.documents import load_file

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies" / "policies"
BESS_DOC = load_file(POLICIES / "limits-bess-01.json")
PV_DOC = load_file(POLICIES / "limits-pv-inv-01.json")
BESS, PV = BESS_DOC["content"], PV_DOC["content"]
FREQUENCY_TOPIC = "/edgeflex/edgepmu3/ch1"
OUTPUT = "/vpp/control/active_power"
INPUTS = {
    "frequency": {"topic": FREQUENCY_TOPIC, "signal": "edgePMU3 frequency"},
    "units": {
        "bess-01": {"topic": "/location_4/4/operationPower", "signal": "value"},
        "pv-inv-01": {"topic": "/location_7/7/operationPower", "signal": "value", "scale": 1000},
    },
}


@pytest.fixture
def bus():
    bus = MemoryBus()
    yield bus
    bus.close()


def make_service(bus, controller: str = "ffr", **config) -> FrequencyService:
    service = FrequencyService(
        bus, {"controller": controller, "inputs": INPUTS, "vpp": "bess-01", **config}
    )
    service.apply_limits(BESS_DOC)
    service.apply_limits(PV_DOC)
    service.start()
    return service


_last = [0.0]


def now_s() -> float:
    """This clock, strictly increasing between calls (each sample is newer)."""
    _last[0] = max(_last[0] + 0.001, time.time())
    return _last[0]


def feed(bus, frequency: float, bess_kw: float = 50.0, pv_mw: float = 0.06) -> None:
    """One set of inputs: the PMU in `json.edgeflex`, the meters in `{"time", "value"}`."""
    pmu = {"edgePMU3 frequency": frequency, "created": round(now_s() * 1000)}
    bus.publish(FREQUENCY_TOPIC, json.dumps(pmu).encode())
    meters = {"/location_4/4/operationPower": bess_kw, "/location_7/7/operationPower": pv_mw}
    for topic, value in meters.items():
        at = datetime.fromtimestamp(now_s(), UTC).isoformat()
        bus.publish(topic, json.dumps({"time": at, "value": value}).encode())


class Setpoints(list):
    def __init__(self, bus) -> None:
        super().__init__()
        bus.subscribe(OUTPUT, lambda m: self.append(json.loads(m.payload)))


# --- policies -> bounds ----------------------------------------------------------------


def test_bounds_come_from_each_units_policy_and_the_vpp_policy():
    limits = frequency_limits({"b": BESS, "p": PV}, ("bess-01", "pv-inv-01"), "bess-01")
    assert (limits.units["bess-01"].p_min_kw, limits.units["bess-01"].p_max_kw) == (-250, 250)
    assert (limits.units["pv-inv-01"].p_min_kw, limits.units["pv-inv-01"].p_max_kw) == (0, 100)
    assert limits.units["pv-inv-01"].droop == pytest.approx(0.05)
    assert limits.deadband_hz == pytest.approx(0.01)
    assert (limits.agc_kp, limits.agc_ki_per_s) == (0.4, 0.05)


def _with(content: dict, **sections) -> dict:
    changed = copy.deepcopy(content)
    for name, values in sections.items():
        changed[name] = {**changed.get(name, {}), **values}
    return changed


@pytest.mark.parametrize(
    ("what", "policies", "code"),
    [
        ("a unit without a policy yet", {"b": BESS}, "limits_incomplete"),
        (
            "a deadband that excludes the nominal frequency",
            {"b": _with(BESS, frequency={"deadband_low_hz": 50.01, "deadband_high_hz": 50.2}),
             "p": PV},
            "invalid_limits",
        ),
        ("a unit without a power range", {"b": {"asset_id": "bess-01"}, "p": PV}, "invalid_limits"),
        (
            "a unit whose range is upside down",
            {"b": _with(BESS, power={"p_min_kw": 10, "p_max_kw": -10}), "p": PV},
            "invalid_limits",
        ),
    ],
)  # fmt: skip
def test_unusable_bounds_are_refused(what, policies, code):
    with pytest.raises(InvalidInputError) as caught:
        frequency_limits(policies, ("bess-01", "pv-inv-01"), "bess-01")
    assert caught.value.code == code, what


# --- the service on the bus ------------------------------------------------------------


def test_under_frequency_raises_the_vpp_output_within_bounds(bus):
    service = make_service(bus)
    out = Setpoints(bus)
    feed(bus, 50.0)
    assert service.step()
    assert out[-1]["delta_p_kw"] == 0.0  # inside the deadband
    feed(bus, 49.8)
    assert service.step()
    p = out[-1]["active_power"]
    assert out[-1]["delta_p_kw"] > 0
    assert p["bess-01"] > 50.0 and p["pv-inv-01"] > 60.0
    assert -250 <= p["bess-01"] <= 250 and 0 <= p["pv-inv-01"] <= 100


def test_a_bounds_change_takes_effect_at_the_next_step(bus):
    service = make_service(bus)
    out = Setpoints(bus)
    feed(bus, 49.0)
    assert service.step()
    before = out[-1]["active_power"]
    assert before["pv-inv-01"] > 65.0
    service.apply_limits({**PV_DOC, "content": _with(PV, power={"p_max_kw": 62})})
    assert service.step()
    after = out[-1]["active_power"]
    assert after["pv-inv-01"] <= 62.0
    assert after["bess-01"] > before["bess-01"]  # the battery takes over the share
    assert service.counters["limits_applied"] == 2


def test_refused_bounds_keep_the_last_good_ones(bus):
    service = make_service(bus)
    good = service.controller.limits
    bad = {**PV_DOC, "content": _with(PV, power={"p_min_kw": 10, "p_max_kw": -10})}
    with pytest.raises(InvalidInputError):
        service.apply_limits(bad)
    assert service.controller.limits is good
    assert service.counters["limits_refused"] == 1


def test_agc_integrates_the_area_control_error(bus):
    service = make_service(bus, controller="agc")
    out = Setpoints(bus)
    for _ in range(3):
        feed(bus, 49.9)
        assert service.step()
        time.sleep(0.02)
    asked = [s["delta_p_kw"] for s in out]
    assert asked[0] > 0 and asked[2] > asked[0]  # the integral grows while the error stays


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b'{"edgePMU3 frequency": "fifty"}',
        b'{"other": 50}',
        b'{"edgePMU3 frequency": true}',
        b"3",
    ],
)
def test_malformed_payloads_are_counted_and_the_service_keeps_running(bus, payload):
    service = make_service(bus)
    out = Setpoints(bus)
    bus.publish(FREQUENCY_TOPIC, payload)
    assert service.counters["malformed"] == 1
    assert not service.step()
    feed(bus, 49.9)
    assert service.step() and len(out) == 1


def test_no_step_on_stale_inputs(bus):
    service = make_service(bus, input_timeout_s=0.05)
    feed(bus, 49.9)
    assert service.step()
    time.sleep(0.1)
    assert not service.step()


def test_bad_local_configuration_is_reported(bus):
    with pytest.raises(ConfigurationError):
        FrequencyService(bus, {"controller": "pid", "inputs": INPUTS})
    with pytest.raises(ConfigurationError):
        FrequencyService(bus, {"inputs": {"frequency": INPUTS["frequency"], "units": {}}})


# --- hostile, stale and implausible inputs ----------------------------------------------


@pytest.mark.parametrize(
    ("what", "topic", "body", "reason"),
    [
        ("the largest float", FREQUENCY_TOPIC, {"edgePMU3 frequency": 1e308}, "implausible"),
        ("a frequency of 0 Hz", FREQUENCY_TOPIC, {"edgePMU3 frequency": 0.0}, "implausible"),
        ("a battery at 1e308 kW", "/location_4/4/operationPower", {"value": 1e308}, "implausible"),
        (
            "a PV meter that overflows when scaled",
            "/location_7/7/operationPower",
            {"value": 1e306},
            "implausible",
        ),
        ("a year-old sample", FREQUENCY_TOPIC, {"edgePMU3 frequency": 49.8, "age": 3e7}, "too_old"),
        ("a text time", FREQUENCY_TOPIC, {"edgePMU3 frequency": 49.8, "time": "now"}, "malformed"),
    ],
)
def test_any_input_leaves_the_last_good_inputs_in_force(bus, what, topic, body, reason):
    service = make_service(bus)
    out = Setpoints(bus)
    feed(bus, 49.9)
    assert service.safe_step()
    age = body.pop("age", 0.0)
    stamped = {"created": round((now_s() - age) * 1000), **body}
    if "time" in body:
        stamped.pop("created")
    bus.publish(topic, json.dumps(stamped).encode())
    assert service.counters[reason] == 1, what
    assert service.safe_step(), what
    assert out[-1] == out[-2] or out[-1]["delta_p_kw"] == out[-2]["delta_p_kw"], what
    assert service.counters["step_errors"] == 0, what
    assert all("Infinity" not in json.dumps(o) and "NaN" not in json.dumps(o) for o in out)


def test_an_older_sample_after_a_newer_one_does_not_win(bus):
    service = make_service(bus)
    feed(bus, 49.9)
    newer = now_s()
    for frequency, at in ((49.8, newer), (50.2, newer - 0.5)):
        pmu = {"edgePMU3 frequency": frequency, "created": round(at * 1000)}
        bus.publish(FREQUENCY_TOPIC, json.dumps(pmu).encode())
    assert service.counters["out_of_order"] == 1
    out = Setpoints(bus)
    assert service.step()
    assert out[-1]["delta_p_kw"] > 0  # under-frequency: the newer sample counts


def test_the_frequency_loop_survives_hostile_input(bus):
    service = make_service(bus, loop_period_s=0.01)
    out = Setpoints(bus)
    runner = threading.Thread(target=service.run)
    runner.start()
    try:
        for value in (1e308, -1e308, 1e-308, 5e3):
            pmu = {"edgePMU3 frequency": value, "created": round(now_s() * 1000)}
            bus.publish(FREQUENCY_TOPIC, json.dumps(pmu).encode())
        feed(bus, 49.9)
        deadline = time.monotonic() + 5
        while not out and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out and runner.is_alive()
    finally:
        service.stop()
        runner.join(5)
    assert service.counters["implausible"] == 4


# --- triggered FFR (issue 12): the mode and the product from the local config ----------


TRIGGERED = {
    "mode": "triggered",
    "capacity_kw": 100,
    "activation_level_hz": 49.7,
    "full_activation_time_s": 0,
    "support_duration_s": 600,  # held for the whole test: no step waits on the clock
    "deactivation_time_s": 0,
}


def test_triggered_ffr_delivers_its_full_capacity_at_the_activation_level(bus):
    service = make_service(bus, ffr=TRIGGERED)
    out = Setpoints(bus)
    feed(bus, 49.75)  # beyond the deadband, above the activation level: nothing
    assert service.step()
    assert out[-1]["delta_p_kw"] == 0.0
    assert service.state()["ffr_state"] == "armed"
    feed(bus, 49.69)  # just past it: the full 100 kW, not a response grown from 0
    assert service.step()
    assert out[-1]["delta_p_kw"] == 100.0
    p = out[-1]["active_power"]
    assert p["bess-01"] + p["pv-inv-01"] == pytest.approx(50.0 + 60.0 + 100.0)
    feed(bus, 50.0)  # recovered, inside the support duration: still delivered
    assert service.step()
    assert out[-1]["delta_p_kw"] == 100.0
    state = service.state()
    assert (state["mode"], state["ffr_state"]) == ("triggered", "active")


def test_proportional_ffr_is_the_default_and_grows_from_the_deadband(bus):
    service = make_service(bus, ffr={"mode": "proportional"})
    out = Setpoints(bus)
    feed(bus, 49.69)
    assert service.step()
    assert 0.0 < out[-1]["delta_p_kw"] < 100.0  # 0.4/Hz * 110 kW * 0.3 Hz: 13.2 kW
    assert service.state()["mode"] == "proportional"
    assert make_service(bus).state()["mode"] == "proportional"


def test_an_over_frequency_product_reduces_the_output(bus):
    service = make_service(bus, ffr={**TRIGGERED, "activation_level_hz": 50.3})
    out = Setpoints(bus)
    feed(bus, 50.31)
    assert service.step()
    assert out[-1]["delta_p_kw"] == -100.0


@pytest.mark.parametrize(
    ("ffr", "named"),
    [
        ({"mode": "fast"}, "frequency.ffr.mode"),
        ({"mode": "triggered"}, "capacity_kw"),
        ({**TRIGGERED, "threshold_hz": 49.7}, "frequency.ffr.threshold_hz"),
        ({"mode": "proportional", "capacity_kw": 100}, "frequency.ffr.capacity_kw"),
        ({**TRIGGERED, "full_activation_time_s": -1}, "frequency.ffr.full_activation_time_s"),
        ({**TRIGGERED, "capacity_kw": "100"}, "frequency.ffr.capacity_kw"),
        ({**TRIGGERED, "support_duration_s": float("nan")}, "frequency.ffr.support_duration_s"),
        ("triggered", "frequency.ffr"),
    ],
)
def test_a_bad_ffr_product_is_refused_with_the_setting_to_fix(bus, ffr, named):
    with pytest.raises(ConfigurationError) as refused:
        FrequencyService(bus, {"controller": "ffr", "inputs": INPUTS, "ffr": ffr})
    assert named in refused.value.message


def test_an_ffr_product_is_refused_beside_agc(bus):
    with pytest.raises(ConfigurationError, match="controller: ffr"):
        FrequencyService(bus, {"controller": "agc", "inputs": INPUTS, "ffr": TRIGGERED})


def test_an_activation_level_at_the_nominal_frequency_is_refused_with_the_limits(bus):
    service = FrequencyService(
        bus,
        {"controller": "ffr", "inputs": INPUTS, "ffr": {**TRIGGERED, "activation_level_hz": 50}},
    )
    service.apply_limits(BESS_DOC)
    with pytest.raises(InvalidInputError, match="nominal frequency"):
        service.apply_limits(PV_DOC)
    assert service.controller is None
    assert service.counters["limits_refused"] == 1


@pytest.mark.parametrize(
    ("what", "change", "says"),
    [
        ("a frequency topic that is no filter", {"frequency": {"topic": "/edgeflex/#/ch1"}},
         ("`frequency.inputs.frequency`", "`topic`")),
        ("an empty unit topic", {"units": {"bess-01": {"topic": ""}}},
         ("`frequency.inputs.units.bess-01`", "`topic`")),
        ("a topic that is no text", {"frequency": {"topic": 7}},
         ("`frequency.inputs.frequency`", "`topic`")),
        ("a signal name that is no text (it was read as `None`)",
         {"frequency": {"topic": FREQUENCY_TOPIC, "signal": None}},
         ("`frequency.inputs.frequency`", "`signal`")),
        ("an empty signal name", {"units": {"bess-01": {"topic": "/b", "signal": ""}}},
         ("`frequency.inputs.units.bess-01`", "`signal`")),
        ("a NaN scale", {"units": {"bess-01": {"topic": "/b", "scale": float("nan")}}},
         ("`frequency.inputs.units.bess-01`", "`scale`")),
    ],
)  # fmt: skip
def test_a_bad_input_signal_is_refused_naming_it(bus, what, change, says):
    inputs = {**INPUTS, **change}
    if "units" in change:
        inputs["units"] = {**INPUTS["units"], **change["units"]}
    with pytest.raises(ConfigurationError) as refused:
        FrequencyService(bus, {"inputs": inputs})
    for named in says:
        assert named in refused.value.message, what


@pytest.mark.parametrize("topic", ["/vpp/+/active_power", "", None, 42])
def test_a_bad_output_topic_is_refused_at_start(bus, topic):
    """It was taken as `str(...)`: every step failed to publish (`step_errors`)."""
    with pytest.raises(ConfigurationError) as refused:
        FrequencyService(bus, {"inputs": INPUTS, "output_topic": topic})
    assert "`frequency.output_topic`" in refused.value.message


@pytest.mark.parametrize(
    ("made", "says"),
    [
        ({"topic": "/a/#/b", "signal": "value"}, "`topic`"),
        ({"topic": "/a", "signal": 3}, "`signal`"),
        ({"topic": "/a", "signal": "value", "scale": float("inf")}, "`scale`"),
        ({"topic": "/a", "signal": "value", "scale": "2"}, "`scale`"),
    ],
)
def test_a_signal_made_in_code_is_checked_as_the_file_s(made, says):
    with pytest.raises(ConfigurationError) as refused:
        Signal(**made)
    assert says in refused.value.message


def test_a_topic_filter_and_good_signals_are_taken(bus):
    inputs = {**INPUTS, "frequency": {"topic": "/edgeflex/+/ch1", "signal": "edgePMU3 frequency"}}
    service = FrequencyService(bus, {"inputs": inputs, "output_topic": "/vpp/out"})
    assert service.frequency == Signal("/edgeflex/+/ch1", "edgePMU3 frequency", 1.0)
    assert service.units["pv-inv-01"].scale == 1000.0
    assert service.output_topic == "/vpp/out"


def test_bounds_wait_for_the_named_vpp_policy():
    """The old code started on the controller's default gains, the named policy ignored."""
    with pytest.raises(InvalidInputError) as caught:
        frequency_limits({"b": BESS, "p": PV}, ("bess-01", "pv-inv-01"), "vpp-wunsiedel")
    assert caught.value.code == "limits_incomplete"
    assert "vpp-wunsiedel" in caught.value.message


@pytest.mark.parametrize("vpp", ["", 7, ["vpp-wunsiedel"]])
def test_a_vpp_that_names_no_policy_is_refused_at_start(bus, vpp):
    with pytest.raises(ConfigurationError) as raised:
        FrequencyService(bus, {"inputs": INPUTS, "vpp": vpp})
    assert "`frequency.vpp`" in raised.value.message


def test_the_controller_waits_for_the_named_vpp_policy_and_says_so(bus):
    service = FrequencyService(bus, {"inputs": INPUTS, "vpp": "vpp-wunsiedel"})
    service.apply_limits(BESS_DOC)
    service.apply_limits(PV_DOC)
    assert service.controller is None
    assert service.missing_policies() == ["vpp-wunsiedel"]
    vpp = {**BESS_DOC, "id": "vpp-wunsiedel", "asset_id": None,
           "content": {**BESS_DOC["content"], "asset_id": "vpp-wunsiedel"}}  # fmt: skip
    service.apply_limits(vpp)
    assert service.controller is not None and service.missing_policies() == []
