"""Voltage control on the LV feeder case, against the non-linear power flow as the plant."""

from __future__ import annotations

import json
import threading

import pytest

from controls import (
    ControlCosts,
    EssLimits,
    InvalidLimitsError,
    InvalidMeasurementError,
    InvalidMessageError,
    MeteringThresholds,
    VoltageController,
    VoltageMeasurements,
    from_message,
    to_messages,
)
from controls.voltage import DEFAULT_TOPICS, DgLimits, VoltageLimits
from tests.controls.cases import (
    ESS_NODE,
    FEEDER,
    MODEL,
    PV_NODES,
    closed_loop,
    limits,
    plant_voltages,
    within,
)

NOON = {"pv": PV_NODES, "load": {n: 1.0 for n in MODEL.nodes}, "v_slack": 1.02}
EVENING = {"pv": {}, "load": {n: 16.0 for n in MODEL.nodes}, "v_slack": 0.99}


def test_noon_overvoltage_is_brought_back_inside_the_band_within_the_limits():
    lim = limits()
    open_loop = plant_voltages(None, PV_NODES, NOON["load"], NOON["v_slack"])
    assert max(open_loop.values()) > lim.v_max + 0.02
    voltages, setpoints = closed_loop(
        VoltageController(MODEL, lim), PV_NODES, NOON["load"], NOON["v_slack"], steps=3
    )
    assert lim.v_min <= min(voltages.values()) and max(voltages.values()) <= lim.v_max
    assert setpoints.feasible
    assert within(setpoints, lim, PV_NODES)


def test_evening_undervoltage_is_lifted_by_reactive_power_and_storage():
    lim = limits()
    open_loop = plant_voltages(None, {}, EVENING["load"], EVENING["v_slack"])
    assert min(open_loop.values()) < lim.v_min
    voltages, setpoints = closed_loop(
        VoltageController(MODEL, lim), {}, EVENING["load"], EVENING["v_slack"], steps=3
    )
    assert min(voltages.values()) >= lim.v_min
    assert setpoints.active_power_ess[ESS_NODE] > 0  # discharging
    assert within(setpoints, lim, {})


def test_reactive_power_is_used_before_storage_and_curtailment():
    lim = limits(q_kvar=40.0)
    mild = {n: 0.6 * p for n, p in PV_NODES.items()}
    voltages, setpoints = closed_loop(
        VoltageController(MODEL, lim), mild, NOON["load"], NOON["v_slack"], steps=3
    )
    assert max(voltages.values()) <= lim.v_max
    assert setpoints.tier == 0
    assert any(q < 0 for q in setpoints.reactive_power.values())
    assert setpoints.active_power_ess == {ESS_NODE: 0.0}
    assert setpoints.active_power == pytest.approx(mild)


def test_when_local_means_are_not_enough_the_violation_is_minimised_and_reported():
    lim = limits(q_kvar=2.0, ess_kw=2.0, curtailable=False)
    measurements = VoltageMeasurements(
        plant_voltages(None, PV_NODES, NOON["load"], NOON["v_slack"]), PV_NODES
    )
    setpoints = VoltageController(MODEL, lim).step(measurements)
    assert not setpoints.feasible and setpoints.max_violation_pu > 0.01
    assert all(q == pytest.approx(-2.0) for q in setpoints.reactive_power.values())
    assert setpoints.active_power_ess[ESS_NODE] == pytest.approx(-2.0)
    assert within(setpoints, lim, PV_NODES)


def test_replaced_limits_take_effect_at_the_next_step():
    controller = VoltageController(MODEL, limits(q_kvar=15.0, curtailable=False))
    m = VoltageMeasurements(plant_voltages(None, PV_NODES, NOON["load"], 1.02), PV_NODES)
    first = controller.step(m)
    assert min(first.reactive_power.values()) == pytest.approx(-15.0)
    tighter = limits(q_kvar=5.0, curtailable=False)
    controller.set_limits(tighter)
    second = controller.step(m)
    assert controller.limits is tighter
    assert min(second.reactive_power.values()) == pytest.approx(-5.0)
    assert within(second, tighter, PV_NODES)


def test_limits_swapped_from_another_thread_are_seen_whole_by_the_next_step():
    controller = VoltageController(MODEL, limits(q_kvar=15.0, curtailable=False))
    tighter = limits(q_kvar=3.0, curtailable=False)
    worker = threading.Thread(target=controller.set_limits, args=(tighter,))
    worker.start()
    worker.join()
    m = VoltageMeasurements(plant_voltages(None, PV_NODES, NOON["load"], 1.02), PV_NODES)
    assert within(controller.step(m), tighter, PV_NODES)


def test_a_per_step_override_does_not_replace_the_held_limits():
    held = limits(q_kvar=15.0)
    controller = VoltageController(MODEL, held)
    m = VoltageMeasurements(plant_voltages(None, PV_NODES, NOON["load"], 1.02), PV_NODES)
    override = limits(q_kvar=1.0)
    assert within(controller.step(m, limits=override), override, PV_NODES)
    assert controller.limits is held


@pytest.mark.parametrize(
    ("what_is_rejected", "bad"),
    [
        ("a band in another voltage base", VoltageLimits(dg={4: DgLimits()}, v_nominal_v=230.0)),
        ("an asset on a node the feeder lacks", VoltageLimits(dg={99: DgLimits()})),
    ],
)
def test_limits_that_do_not_fit_the_model_are_refused_and_the_old_ones_kept(what_is_rejected, bad):
    held = limits()
    controller = VoltageController(MODEL, held)
    with pytest.raises(InvalidLimitsError):
        controller.set_limits(bad)
    assert controller.limits is held


@pytest.mark.parametrize(
    ("what_is_inconsistent", "build"),
    [
        ("band upside down", lambda: VoltageLimits(1.05, 0.95)),
        ("reactive range upside down", lambda: DgLimits(5.0, -5.0)),
        ("non-finite bound", lambda: DgLimits(-float("inf"), 5.0)),
        ("negative active limit", lambda: DgLimits(p_max_kw=-1.0)),
    ],
)
def test_inconsistent_limits_are_refused(what_is_inconsistent, build):
    with pytest.raises(InvalidLimitsError) as info:
        build()
    assert info.value.code == "invalid_limits"


def test_measurement_messages_are_read_from_the_published_payloads():
    voltage = json.dumps({"voltage_measurements": {"node_4": 1.06, "node_6": 1.071}})
    pv = {"pv_input_measurements": {"node_4": 12.5}}
    m = from_message(voltage.encode(), pv)
    assert m.voltages == {4: 1.06, 6: 1.071}
    assert m.pv_kw == {4: 12.5}
    assert from_message(voltage, {"pv_measurements": {"node_4": 3}}).pv_kw == {4: 3.0}


@pytest.mark.parametrize(
    ("what_is_wrong", "message"),
    [
        ("not json", "{voltage"),
        ("not an object", "[1.0]"),
        ("missing key", {"voltages": {"node_1": 1.0}}),
        ("bad node key", {"voltage_measurements": {"n1": 1.0}}),
        ("non-numeric value", {"voltage_measurements": {"node_1": "high"}}),
        ("not a number", '{"voltage_measurements": {"node_1": NaN}}'),
        ("boolean value", {"voltage_measurements": {"node_1": True}}),
    ],
)
def test_malformed_measurement_messages_are_rejected(what_is_wrong, message):
    with pytest.raises(InvalidMessageError) as info:
        from_message(message)
    assert info.value.code == "invalid_message"


def test_measurements_of_unknown_nodes_or_non_positive_voltages_are_rejected():
    controller = VoltageController(MODEL, limits())
    with pytest.raises(InvalidMeasurementError, match="`42`"):
        controller.step(VoltageMeasurements({42: 1.0}))
    with pytest.raises(InvalidMeasurementError):
        VoltageMeasurements({4: 0.0})


def test_setpoints_become_the_published_payloads():
    controller = VoltageController(MODEL, limits())
    m = VoltageMeasurements(plant_voltages(None, PV_NODES, NOON["load"], 1.02), PV_NODES)
    messages = to_messages(controller.step(m))
    assert set(messages) == {"reactive_power", "active_power", "active_power_ESS"}
    assert set(messages["reactive_power"]["reactive_power"]) == {
        "node_4",
        "node_5",
        "node_6",
        "node_8",
    }
    assert set(messages["active_power_ESS"]["active_power_ESS"]) == {"node_6"}
    assert DEFAULT_TOPICS["active_power_ESS"] == "/voltage_control/control/active_power_ESS"
    assert json.loads(json.dumps(messages)) == messages


def test_variables_without_assets_are_not_published():
    lim = VoltageLimits(dg={4: DgLimits(-5.0, 5.0)})
    setpoints = VoltageController(MODEL, lim).step(VoltageMeasurements({4: 1.0}))
    assert set(to_messages(setpoints)) == {"reactive_power"}


def test_a_pv_without_an_availability_measurement_gets_no_active_power_setpoint():
    voltages = plant_voltages(None, PV_NODES, NOON["load"], NOON["v_slack"])
    setpoints = VoltageController(MODEL, limits()).step(VoltageMeasurements(voltages, {4: 30.0}))
    assert set(setpoints.active_power) == {4}
    assert set(setpoints.reactive_power) == set(PV_NODES)


NAN = float("nan")


@pytest.mark.parametrize(
    ("what_is_wrong", "build", "named"),
    [
        ("a NaN band", lambda: VoltageLimits(v_min=NAN), "pu"),
        ("a NaN nominal voltage", lambda: VoltageLimits(v_nominal_v=NAN), "`v_nominal_v`.*V"),
        ("a NaN pv limit", lambda: DgLimits(p_max_kw=NAN), "`p_max_kw`.*kW"),
        ("a NaN storage energy", lambda: EssLimits(-1.0, 1.0, energy_kwh=NAN), "`energy_kwh`"),
        ("a state of charge above 1", lambda: EssLimits(-1.0, 1.0, soc_max=1.5), "0, 1"),
        ("a NaN price", lambda: ControlCosts(q_per_kvar=NAN), "`q_per_kvar`"),
        ("a negative margin", lambda: VoltageController(FEEDER, VoltageLimits(), margin_pu=-0.1),
         "`margin_pu`.*pu"),
        ("a NaN metering window", lambda: MeteringThresholds(window_s=NAN), "`window_s`.*s"),
        ("a NaN metering rocof", lambda: MeteringThresholds(min_rocof_hz_s=NAN),
         "`min_rocof_hz_s`.*Hz/s"),
    ],
)  # fmt: skip
def test_unusable_voltage_and_metering_settings_are_refused_with_name_and_unit(
    what_is_wrong, build, named
):
    with pytest.raises(InvalidLimitsError, match=named):
        build()
