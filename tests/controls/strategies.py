"""Hypothesis strategies for the control modules' property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from controls.feeder import Line, RadialFeeder
from controls.frequency import FrequencyLimits, UnitLimits, VppMeasurement
from controls.mpc import FlexLimits, MpcForecast, MpcLimits, MpcState
from controls.testing import power_flow
from controls.voltage import DgLimits, EssLimits, VoltageLimits, VoltageMeasurements
from tests.controls.cases import MODEL

NODES = MODEL.nodes


@st.composite
def ranges(draw, low=-50.0, high=50.0):
    a, b = draw(st.floats(low, high)), draw(st.floats(low, high))
    return min(a, b), max(a, b)


@st.composite
def dg_limits(draw):
    q_min, q_max = draw(ranges(-25.0, 25.0))
    p_max = draw(st.floats(0.0, 60.0))
    return DgLimits(q_min, q_max, p_max_kw=p_max, curtailable=draw(st.booleans()))


@st.composite
def ess_limits(draw):
    p_min, p_max = -draw(st.floats(0.0, 30.0)), draw(st.floats(0.0, 30.0))
    soc_min, soc_max = draw(ranges(0.0, 1.0))
    energy = draw(st.sampled_from([None, 5.0, 20.0, 100.0]))
    return EssLimits(p_min, p_max, energy_kwh=energy, soc_min=soc_min, soc_max=soc_max)


@st.composite
def radial_feeders(draw, max_nodes: int = 20):
    """A random tree: node ids shuffled, lines listed in any order, r/x ratio per line."""
    n = draw(st.integers(1, max_nodes))
    ids = draw(st.permutations(range(1, n + 1)))
    lines = []
    for k in range(1, n + 1):
        above = draw(st.integers(-1, k - 2))  # -1: the slack
        parent = 0 if above < 0 else ids[above]
        r = draw(st.sampled_from([0.0, 0.002, 0.01, 0.03]))
        x = draw(st.sampled_from([0.001, 0.005, 0.02]))
        lines.append(Line(parent, ids[k - 1], r, x))
    order = draw(st.permutations(range(n)))
    return RadialFeeder(tuple(lines[i] for i in order), v_nominal_v=400.0)


@st.composite
def voltage_limits(draw, nodes=NODES):
    dg_nodes = draw(st.sets(st.sampled_from(nodes), max_size=5))
    ess_nodes = draw(st.sets(st.sampled_from(nodes), max_size=3))
    v_min = draw(st.floats(0.85, 0.99))
    v_max = draw(st.floats(1.01, 1.15))
    return VoltageLimits(
        v_min, v_max, 400.0,
        dg={n: draw(dg_limits()) for n in dg_nodes},
        ess={n: draw(ess_limits()) for n in ess_nodes},
    )  # fmt: skip


@st.composite
def voltage_measurements(draw, nodes=NODES):
    measured = draw(st.sets(st.sampled_from(nodes), min_size=1))
    voltages = {n: draw(st.floats(0.8, 1.2)) for n in measured}
    pv = {n: draw(st.floats(-5.0, 80.0)) for n in draw(st.sets(st.sampled_from(nodes)))}
    return VoltageMeasurements(voltages, pv)


@st.composite
def feeder_measurements(draw, feeder: RadialFeeder):
    """Voltages of the feeder under random PV and load (full power flow), with the PV power."""
    nodes = feeder.nodes
    pv = {n: draw(st.floats(0.0, 80.0)) for n in draw(st.sets(st.sampled_from(nodes)))}
    load = {n: draw(st.floats(0.0, 40.0)) for n in draw(st.sets(st.sampled_from(nodes)))}
    p = {n: pv.get(n, 0.0) - load.get(n, 0.0) for n in nodes}
    voltages = power_flow(feeder, p, v_slack_pu=draw(st.floats(0.97, 1.04)))
    measured = draw(st.sets(st.sampled_from(nodes), min_size=1))
    return VoltageMeasurements({n: voltages[n] for n in measured}, pv)


@st.composite
def frequency_case(draw):
    ids = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5, unique=True))
    units = {}
    for unit in ids:
        low, high = draw(ranges(-200.0, 500.0))
        droop = draw(st.floats(0.01, 0.12))
        units[unit] = UnitLimits(low, high, droop=droop, p_nominal_kw=draw(st.floats(1.0, 500.0)))
    limits = FrequencyLimits(
        units,
        deadband_hz=draw(st.floats(0.0, 0.05)),
        ffr_gain_per_hz=draw(st.floats(0.0, 5.0)),
        agc_kp=draw(st.floats(0.0, 2.0)),
        agc_ki_per_s=draw(st.floats(0.0, 2.0)),
    )
    measurements = [
        VppMeasurement(
            draw(st.floats(47.0, 53.0)),
            {u: draw(st.floats(-600.0, 600.0)) for u in ids},
            {u: draw(st.floats(-600.0, 600.0)) for u in ids if draw(st.booleans())},
            time_s=float(k),
        )
        for k in range(draw(st.integers(1, 4)))
    ]
    return limits, measurements


@st.composite
def mpc_case(draw, nodes=NODES):
    v_limits = draw(voltage_limits(nodes))
    flex_nodes = draw(st.sets(st.sampled_from(nodes), max_size=3))
    flex = {
        n: FlexLimits(-draw(st.floats(0.0, 60.0)), draw(st.floats(0.0, 20.0))) for n in flex_nodes
    }
    horizon = draw(st.integers(1, 3))
    pv = [{n: draw(st.floats(0.0, 60.0)) for n in nodes if n % 2 == 0} for _ in range(horizon)]
    load = [{n: draw(st.floats(0.0, 30.0)) for n in nodes if n % 3 == 0} for _ in range(horizon)]
    soc = {n: draw(st.floats(0.0, 1.0)) for n in v_limits.ess}
    state = MpcState(draw(st.floats(0.95, 1.05)), soc)
    return MpcLimits(v_limits, flex), MpcForecast(load, pv), state
