"""MPC voltage control: plans in band and in limits, flexibility request/response cycle."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from controls import (
    DgLimits,
    EssLimits,
    FlexLimits,
    FlexSchedule,
    InvalidLimitsError,
    InvalidMeasurementError,
    InvalidMessageError,
    MpcForecast,
    MpcLimits,
    MpcState,
    MpcVoltageController,
    VoltageLimits,
    chain_feeder,
)
from controls.testing import power_flow
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


# --- plans in the band on the real (AC) feeder ------------------------------------------


def ac_of_plan(feeder, plan, forecast: MpcForecast, k: int, v_slack: float) -> dict[int, float]:
    """The independent AC power flow (`controls.testing`) of step k of a plan."""
    p = {n: -v for n, v in forecast.load_kw[k].items()}
    q = {n: -v for n, v in forecast.load_kvar[k].items()}
    for n, available in forecast.pv_kw[k].items():
        p[n] = p.get(n, 0.0) + (plan.p_pv_kw[n][k] if n in plan.p_pv_kw else available)
    for part in (plan.p_ess_kw, plan.flex_kw):
        for n, values in part.items():
            p[n] = p.get(n, 0.0) + values[k]
    for n, values in plan.q_kvar.items():
        q[n] = q.get(n, 0.0) + values[k]
    return power_flow(feeder, p, q, v_slack_pu=v_slack)


def random_case(rng: np.random.Generator):
    """A chain or tree feeder of 4-11 LV sections, PV, loads, one storage, 1-3 steps."""
    n = int(rng.integers(4, 12))
    r = rng.uniform(0.005, 0.02)
    feeder = chain_feeder(n, r_ohm=r, x_ohm=r * rng.uniform(0.2, 3.0),
                          branch_every=int(rng.integers(0, 4)))  # fmt: skip
    nodes = list(feeder.nodes)
    steps = int(rng.integers(1, 4))
    pv_nodes = [m for m in nodes if rng.random() < 0.5] or nodes[-1:]
    pv = [{m: rng.uniform(0, 80) for m in pv_nodes} for _ in range(steps)]
    load = [{m: rng.uniform(0, 40) for m in nodes if rng.random() < 0.4} for _ in range(steps)]
    load_q = [{m: rng.uniform(-10, 30) for m in nodes if rng.random() < 0.3} for _ in range(steps)]
    q_max = rng.uniform(10, 100)
    dg = {m: DgLimits(-q_max, q_max, curtailable=bool(rng.random() < 0.6)) for m in pv_nodes}
    storage = nodes[int(rng.integers(0, len(nodes)))]
    ess = {storage: EssLimits(-30, 30, energy_kwh=60, soc_min=0.1, soc_max=0.9)}
    state = MpcState(rng.uniform(0.97, 1.045), {storage: rng.uniform(0.2, 0.8)})
    return feeder, VoltageLimits(dg=dg, ess=ess), MpcForecast(load, pv, load_q), state


@pytest.mark.parametrize("seed", [1, 2, 7])
def test_plans_called_feasible_stay_in_the_band_in_the_ac_power_flow(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(60):
        feeder, band, forecast, state = random_case(rng)
        plan = MpcVoltageController(feeder, MpcLimits(band)).step(forecast, state)
        for k in range(forecast.horizon):
            actual = ac_of_plan(feeder, plan, forecast, k, state.v_slack_pu)
            if plan.feasible:
                checked += 1
                assert band.v_min - 1e-6 <= min(actual.values())
                assert max(actual.values()) <= band.v_max + 1e-6
            reported = [actual[n] for n in feeder.nodes]
            assert plan.voltages[k] == pytest.approx(reported, abs=1e-9)  # the AC, not linear
    assert checked > 100


def dense(model):
    """The sensitivities without their feeder: no AC model to check plans with."""
    return dataclasses.replace(model, feeder=None)


def test_without_an_ac_model_the_plan_keeps_a_margin_inside_the_band():
    mpc_limits = MpcLimits(limits())
    plan = MpcVoltageController(dense(MODEL), mpc_limits).step(day([1.0, 1.0]), STATE)
    assert plan.feasible and plan.voltages.max() <= mpc_limits.voltage.v_max - 0.002 + 1e-9
    wider = MpcVoltageController(dense(MODEL), mpc_limits, margin_pu=0.0)
    assert wider.step(day([1.0, 1.0]), STATE).voltages.max() > plan.voltages.max()


@pytest.mark.parametrize(
    ("what_is_wrong", "kwargs", "named"),
    [
        ("a NaN step length", {"step_hours": float("nan")}, "`step_hours`.*h"),
        ("a zero step length", {"step_hours": 0.0}, "`step_hours`"),
        ("an unknown fallback", {"fallback": "zero"}, "`fallback`"),
        ("a fractional timeout", {"response_timeout_cycles": 1.5}, "`response_timeout_cycles`"),
        ("a negative margin", {"margin_pu": -0.001}, "`margin_pu`.*pu"),
    ],
)
def test_unusable_mpc_settings_are_refused_with_their_name_and_unit(what_is_wrong, kwargs, named):
    with pytest.raises(InvalidLimitsError, match=named):
        MpcVoltageController(MODEL, MpcLimits(limits()), **kwargs)
