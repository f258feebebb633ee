"""The sparse branch-flow (LinDistFlow) form against the dense sensitivities it replaces.

Differential tests: on random radial feeders the radial operator equals the dense
matrix in every use the LP makes of it; on the test feeder and on random feeders
the controllers reach the same verdicts, violations and least costs with either
model, and the same set-points wherever the optimum is unique.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import splu

from controls import (
    InvalidTopologyError,
    MpcLimits,
    MpcVoltageController,
    Sensitivities,
    VoltageController,
    VoltageMeasurements,
)
from controls._lindistflow import RadialModel, linear_model
from controls._linear import DenseModel
from tests.controls.cases import FEEDER, MODEL, PV_NODES, limits, plant_voltages
from tests.controls.strategies import (
    feeder_measurements,
    mpc_case,
    radial_feeders,
    voltage_limits,
    voltage_measurements,
)
from tests.controls.test_mpc import STATE, day, weak_limits

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOON = (PV_NODES, {n: 1.0 for n in MODEL.nodes}, 1.02)
EVENING = ({}, {n: 16.0 for n in MODEL.nodes}, 0.99)


def dense(model: Sensitivities) -> Sensitivities:
    """The same sensitivities without their feeder: controllers then use the matrices."""
    return dataclasses.replace(model, feeder=None)


def test_sensitivities_remember_their_feeder_and_pick_the_sparse_form():
    assert MODEL.feeder is FEEDER
    assert isinstance(linear_model(MODEL), RadialModel)
    assert isinstance(linear_model(FEEDER), RadialModel)
    assert isinstance(linear_model(dense(MODEL)), DenseModel)
    with pytest.raises(InvalidTopologyError):
        linear_model({1: 0.1})


@SETTINGS
@given(feeder=radial_feeders(), seed=st.integers(0, 2**32 - 1))
def test_sweeps_equal_the_dense_sensitivities(feeder, seed):
    model, radial = feeder.sensitivities(), RadialModel(feeder)
    rng = np.random.default_rng(seed)
    p, q = rng.uniform(-50, 50, (2, len(model.nodes)))
    assert radial.nodes == model.nodes
    assert np.allclose(radial.voltages(p, q, 1.01), model.voltages(p, q, 1.01), rtol=0, atol=1e-12)
    assert np.allclose(radial.r_path, np.diag(model.dv_dp), rtol=1e-12, atol=0)
    assert np.allclose(radial.x_path, np.diag(model.dv_dq), rtol=1e-12, atol=0)


@st.composite
def operator_case(draw):
    """A feeder, voltage rows with positive scales, and variables (some at one node)."""
    feeder = draw(radial_feeders())
    n = len(feeder.nodes)
    rows = draw(st.lists(st.integers(0, n - 1), min_size=1, unique=True))
    cols = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8))
    is_p = draw(st.lists(st.booleans(), min_size=len(cols), max_size=len(cols)))
    scale = draw(st.lists(st.floats(0.8, 1.25), min_size=len(rows), max_size=len(rows)))
    lp_rows = sorted(draw(st.sets(st.integers(0, len(rows) - 1))))
    lp_cols = sorted(draw(st.sets(st.integers(0, len(cols) - 1))))
    arrays = (np.array(v, dtype=t) for v, t in ((rows, int), (cols, int), (is_p, bool)))
    return feeder, (*arrays, np.array(scale)), np.array(lp_rows, int), np.array(lp_cols, int)


@SETTINGS
@given(case=operator_case(), seed=st.integers(0, 2**32 - 1))
def test_the_radial_operator_equals_the_dense_matrix_in_every_use(case, seed):
    feeder, args, lp_rows, lp_cols = case
    radial = RadialModel(feeder).operator(*args)
    matrix = DenseModel(feeder.sensitivities()).operator(*args)
    rng = np.random.default_rng(seed)
    x, low = rng.uniform(-30, 30, (2, args[1].size))
    high = low + rng.uniform(0, 20, low.size)
    close = {"rtol": 1e-9, "atol": 1e-14}
    assert np.allclose(radial.apply(x), matrix.apply(x), **close)
    for mine, theirs in zip(radial.range(low, high), matrix.range(low, high), strict=True):
        assert np.allclose(mine, theirs, **close)
    assert np.allclose(radial.strength(lp_rows), matrix.strength(lp_rows), **close)
    mine, theirs = radial.lp_block(lp_rows, lp_cols, 1e3), matrix.lp_block(lp_rows, lp_cols, 1e3)
    assert theirs.aux == 0
    d = x[lp_cols]
    w = splu(mine.h_w.tocsc()).solve(-(mine.h_x @ d)) if mine.aux else np.zeros(0)
    assert np.allclose(mine.g_x @ d + mine.g_w @ w, theirs.g_x @ d, **close)


def assert_same_setpoints(sparse, reference, tol=1e-6):
    assert sparse.feasible == reference.feasible and sparse.tier == reference.tier
    assert sparse.max_violation_pu == pytest.approx(reference.max_violation_pu, abs=1e-9)
    for name in ("reactive_power", "active_power", "active_power_ess", "predicted_voltages"):
        mine, theirs = getattr(sparse, name), getattr(reference, name)
        assert set(mine) == set(theirs)
        assert all(mine[n] == pytest.approx(theirs[n], abs=tol) for n in mine), name


@pytest.mark.parametrize(
    ("what_is_compared", "lim", "conditions"),
    [
        ("noon overvoltage: reactive power then curtailment", limits(), NOON),
        ("evening undervoltage: storage discharges", limits(), EVENING),
        ("reactive power alone is enough", limits(q_kvar=40.0), NOON),
        ("weak means: the violation is minimised", limits(2.0, 2.0, curtailable=False), NOON),
        ("storage only", limits(q_kvar=0.0, curtailable=False), NOON),
    ],
)
def test_voltage_control_on_the_test_feeder_is_the_same_in_both_forms(
    what_is_compared, lim, conditions
):
    pv, load, v_slack = conditions
    sparse, reference = VoltageController(FEEDER, lim), VoltageController(dense(MODEL), lim)
    setpoints = None
    for _ in range(3):
        measured = VoltageMeasurements(plant_voltages(setpoints, pv, load, v_slack), pv)
        setpoints = sparse.step(measured)
        assert_same_setpoints(setpoints, reference.step(measured))


def assert_same_plan(sparse, reference, tol=1e-6):
    assert (sparse.status, sparse.feasible) == (reference.status, reference.feasible)
    assert sparse.max_violation_pu == pytest.approx(reference.max_violation_pu, abs=1e-9)
    assert np.allclose(sparse.voltages, reference.voltages, rtol=0, atol=tol)
    for name in ("q_kvar", "p_ess_kw", "p_pv_kw", "flex_kw"):
        mine, theirs = getattr(sparse, name), getattr(reference, name)
        assert set(mine) == set(theirs)
        assert all(np.allclose(mine[n], theirs[n], rtol=0, atol=tol) for n in mine), name
    requests = (sparse.flex_request, reference.flex_request)
    assert (requests[0] is None) == (requests[1] is None)
    if requests[0] is not None:
        assert requests[0].nodes == requests[1].nodes
        assert np.allclose(requests[0].values, requests[1].values, rtol=0, atol=tol)


@pytest.mark.parametrize(
    ("what_is_compared", "mpc_limits", "scales", "respond"),
    [
        ("a plan in band over four steps", MpcLimits(limits()), [0.6, 1.0, 1.0, 0.8], False),
        ("a flexibility request, then the fallback", weak_limits(), [1.0] * 3, False),
        ("a flexibility request, then the traded response", weak_limits(), [1.0] * 3, True),
    ],
)
def test_mpc_on_the_test_feeder_is_the_same_in_both_forms(
    what_is_compared, mpc_limits, scales, respond
):
    # the same linear programme in both forms (the AC check needs the feeder: off here)
    sparse = MpcVoltageController(MODEL, mpc_limits, ac_check=False)
    reference = MpcVoltageController(dense(MODEL), mpc_limits)
    for _ in range(2):
        plan = sparse.step(day(scales), STATE)
        assert_same_plan(plan, reference.step(day(scales), STATE))
        if respond and plan.flex_request is not None:
            for mpc in (sparse, reference):
                mpc.receive_flex_response(plan.flex_request.to_message("flex_response"))


def cost(setpoints, lim, pv_kw) -> float:
    """What the controller minimises once the band is met: the priced use of its means."""
    q = sum(abs(v) for v in setpoints.reactive_power.values())
    ess = sum(abs(v) for v in setpoints.active_power_ess.values())
    top = {n: min(pv_kw.get(n, 0.0), lim.dg[n].p_max_kw) for n in setpoints.active_power}
    curtailed = sum(top[n] - v for n, v in setpoints.active_power.items())
    return q + 10.0 * ess + 100.0 * curtailed


@st.composite
def voltage_case(draw):
    feeder = draw(radial_feeders())
    nodes = feeder.nodes
    lim = draw(st.lists(voltage_limits(nodes), min_size=2, max_size=2))
    measure = st.one_of(feeder_measurements(feeder), voltage_measurements(nodes))
    return feeder, lim, draw(st.lists(measure, min_size=2, max_size=2))


@SETTINGS
@given(case=voltage_case())
def test_voltage_control_on_random_feeders_is_the_same_in_both_forms(case):
    feeder, lim, measurements = case
    sparse = VoltageController(feeder, lim[0])
    reference = VoltageController(dense(feeder.sensitivities()), lim[0])
    for k, m in enumerate(measurements):
        for controller in (sparse, reference):
            controller.set_limits(lim[k])
        mine, theirs = sparse.step(m), reference.step(m)
        assert (mine.feasible, mine.tier) == (theirs.feasible, theirs.tier)
        assert mine.max_violation_pu == pytest.approx(theirs.max_violation_pu, abs=1e-8)
        assert cost(mine, lim[k], m.pv_kw) == pytest.approx(
            cost(theirs, lim[k], m.pv_kw), rel=1e-6, abs=1e-6
        )
        assert_same_setpoints(mine, theirs)


@st.composite
def random_mpc_case(draw):
    feeder = draw(radial_feeders(max_nodes=12))
    return feeder, draw(mpc_case(feeder.nodes))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_mpc_case())
def test_mpc_on_random_feeders_is_the_same_in_both_forms(case):
    feeder, (mpc_limits, forecast, state) = case
    sparse = MpcVoltageController(feeder, mpc_limits, ac_check=False).step(forecast, state)
    reference = MpcVoltageController(dense(feeder.sensitivities()), mpc_limits)
    assert_same_plan(sparse, reference.step(forecast, state))
