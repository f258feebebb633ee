"""MPC voltage control: plans in band and in limits, flexibility request/response cycle."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from controls import (
    FlexLimits,
    FlexSchedule,
    InvalidMeasurementError,
    InvalidMessageError,
    MpcForecast,
    MpcLimits,
    MpcState,
    MpcVoltageController,
)
from tests.controls.cases import ESS_NODE, MODEL, PV_NODES, limits, plant_voltages

LOAD = {n: 1.0 for n in MODEL.nodes}
STATE = MpcState(v_slack_pu=1.02, soc={ESS_NODE: 0.5})
FLEX = {5: FlexLimits(-60.0, 0.0), 6: FlexLimits(-60.0, 0.0), 8: FlexLimits(-60.0, 0.0)}


def day(scales: list[float]) -> MpcForecast:
    return MpcForecast(
        [LOAD] * len(scales), [{n: p * s for n, p in PV_NODES.items()} for s in scales]
    )


def weak_limits() -> MpcLimits:
    """Local means too small for a sunny noon: needs flexibility from the market."""
    return MpcLimits(limits(q_kvar=5.0, ess_kw=5.0, curtailable=False), FLEX)


def assert_plan_within_limits(plan, mpc_limits: MpcLimits, forecast: MpcForecast) -> None:
    v = mpc_limits.voltage
    for node, qs in plan.q_kvar.items():
        assert all(v.dg[node].q_min_kvar - 1e-9 <= q <= v.dg[node].q_max_kvar + 1e-9 for q in qs)
    for node, ps in plan.p_ess_kw.items():
        assert all(v.ess[node].p_min_kw - 1e-9 <= p <= v.ess[node].p_max_kw + 1e-9 for p in ps)
    for node, ps in plan.p_pv_kw.items():
        tops = [min(forecast.pv_kw[k].get(node, 0.0), v.dg[node].p_max_kw) for k in range(len(ps))]
        assert all(-1e-9 <= p <= top + 1e-9 for p, top in zip(ps, tops, strict=True))
    for node, fs in plan.flex_kw.items():
        lim = mpc_limits.flex[node]
        assert all(lim.p_min_kw - 1e-9 <= f <= lim.p_max_kw + 1e-9 for f in fs)


def test_plan_keeps_every_step_inside_the_band_within_the_limits():
    mpc_limits = MpcLimits(limits())
    forecast = day([0.6, 1.0, 1.0, 0.8])
    plan = MpcVoltageController(MODEL, mpc_limits).step(forecast, STATE)
    assert plan.status == "ok" and plan.feasible
    v = mpc_limits.voltage
    assert v.v_min - 1e-9 <= plan.voltages.min() and plan.voltages.max() <= v.v_max + 1e-9
    assert_plan_within_limits(plan, mpc_limits, forecast)
    applied = plant_voltages(plan.setpoints, forecast.pv_kw[0], LOAD, STATE.v_slack_pu)
    assert max(applied.values()) <= v.v_max  # the real feeder agrees with the plan


def test_storage_energy_stays_in_its_window_over_the_horizon():
    mpc_limits = MpcLimits(limits())
    plan = MpcVoltageController(MODEL, mpc_limits, step_hours=1.0).step(day([1.0] * 4), STATE)
    ess = mpc_limits.voltage.ess[ESS_NODE]
    soc = STATE.soc[ESS_NODE] - np.cumsum(plan.p_ess_kw[ESS_NODE]) / ess.energy_kwh
    assert np.all(soc >= ess.soc_min - 1e-9) and np.all(soc <= ess.soc_max + 1e-9)
    assert min(plan.p_ess_kw[ESS_NODE]) < 0  # it does charge from the surplus


def test_infeasible_plan_requests_flexibility_in_the_documented_shape():
    mpc = MpcVoltageController(MODEL, weak_limits())
    plan = mpc.step(day([1.0, 1.0, 1.0]), STATE)
    assert plan.status == "flex_requested" and not plan.feasible
    message = json.loads(json.dumps(plan.flex_request.to_message()))
    assert set(message) == {"variable", "nodes", "flex_request"}
    assert message["variable"] == "active_power"
    assert set(message["nodes"]) <= set(FLEX)
    assert list(message["flex_request"]) == ["prediction 1", "prediction 2", "prediction 3"]
    assert all(len(v) == len(message["nodes"]) for v in message["flex_request"].values())
    assert FlexSchedule.from_message(message, "flex_request") == plan.flex_request
    assert mpc.pending_request == plan.flex_request


def test_a_traded_response_is_tracked_and_restores_the_band():
    mpc = MpcVoltageController(MODEL, weak_limits())
    forecast = day([1.0] * 3)
    request = mpc.step(forecast, STATE).flex_request
    response = request.to_message("flex_response")
    mpc.receive_flex_response(json.dumps(response))
    plan = mpc.step(forecast, STATE)  # one cycle later: prediction k+1 is now step k
    for k in range(request.horizon - 1):
        for node in request.nodes:
            assert plan.flex_kw[node][k] == pytest.approx(request.value(k + 1, node))
    v = weak_limits().voltage
    traded_steps = plan.voltages[: request.horizon - 1]
    assert traded_steps.max() <= v.v_max + 1e-6
    if plan.flex_request is not None:  # only the new last step may need more
        assert all(abs(x) < 1e-6 for row in plan.flex_request.values[:-1] for x in row)


def test_without_a_response_the_mpc_falls_back_logs_and_asks_again(caplog):
    mpc = MpcVoltageController(MODEL, weak_limits())
    forecast = day([1.0] * 3)
    first = mpc.step(forecast, STATE)
    with caplog.at_level(logging.WARNING, logger="controls.mpc"):
        second = mpc.step(forecast, STATE)
    assert "no flexibility response" in caplog.messages
    assert second.status == "fallback"
    assert set(second.setpoints.reactive_power.values()) == {0.0}
    assert second.setpoints.active_power_ess == {ESS_NODE: 0.0}
    assert second.flex_request == first.flex_request  # retried
    assert mpc.pending_request == first.flex_request


def test_the_local_fallback_keeps_the_best_local_plan():
    mpc = MpcVoltageController(MODEL, weak_limits(), fallback="local")
    forecast = day([1.0] * 3)
    mpc.step(forecast, STATE)
    second = mpc.step(forecast, STATE)
    assert second.status == "flex_requested"
    assert min(second.setpoints.reactive_power.values()) == pytest.approx(-5.0)


def test_the_covee_shape_maps_the_same_values():
    plan = MpcVoltageController(MODEL, weak_limits()).step(day([1.0] * 2), STATE)
    request = plan.flex_request
    covee = request.to_covee()
    assert covee["variables"] == ["active_power"] and covee["active_nodes"] == list(request.nodes)
    node = request.nodes[0]
    assert covee["flex_dict"]["active_power"]["pred_2"][f"node_{node}"] == request.value(1, node)


def _response(request: FlexSchedule, **changes) -> dict:
    message = request.to_message("flex_response")
    message.update(changes)
    return message


@pytest.mark.parametrize(
    ("what_is_refused", "edit"),
    [
        ("another variable", lambda r: _response(r, variable="reactive_power")),
        ("a node that was not requested", lambda r: _response(r, nodes=[1, *r.nodes[1:]])),
        ("a value beyond the flexibility limits", lambda r: _response(
            r, flex_response={f"prediction {k + 1}": [-500.0] * len(r.nodes)
                              for k in range(r.horizon)})),
        ("a gap in the predictions", lambda r: _response(
            r, flex_response={"prediction 2": list(r.values[0])})),
        ("a prediction that is not a list", lambda r: _response(
            r, flex_response={"prediction 1": 3.0})),
        ("one value too many", lambda r: _response(
            r, flex_response={"prediction 1": [*r.values[0], 0.0]})),
    ],
)  # fmt: skip
def test_malformed_or_foreign_responses_are_refused(what_is_refused, edit):
    mpc = MpcVoltageController(MODEL, weak_limits())
    request = mpc.step(day([1.0] * 2), STATE).flex_request
    with pytest.raises(InvalidMessageError):
        mpc.receive_flex_response(edit(request))
    assert mpc.pending_request == request


def test_a_response_without_a_pending_request_is_refused():
    mpc = MpcVoltageController(MODEL, MpcLimits(limits()))
    response = FlexSchedule("active_power", (5,), ((0.0,),)).to_message("flex_response")
    with pytest.raises(InvalidMessageError, match="no flexibility request"):
        mpc.receive_flex_response(response)


def test_replaced_limits_bound_the_next_plan():
    mpc = MpcVoltageController(MODEL, MpcLimits(limits(q_kvar=15.0)))
    forecast = day([1.0, 1.0])
    assert min(min(q) for q in mpc.step(forecast, STATE).q_kvar.values()) == pytest.approx(-15.0)
    tighter = MpcLimits(limits(q_kvar=4.0))
    mpc.set_limits(tighter)
    plan = mpc.step(forecast, STATE)
    assert min(min(q) for q in plan.q_kvar.values()) >= -4.0 - 1e-9
    assert_plan_within_limits(plan, tighter, forecast)


def test_a_storage_without_a_state_of_charge_is_not_planned_blindly():
    with pytest.raises(InvalidMeasurementError, match=f"`{ESS_NODE}`"):
        MpcVoltageController(MODEL, MpcLimits(limits())).step(day([1.0]), MpcState(1.02))
