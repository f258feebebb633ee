"""Properties: whatever the measurements, set-points never leave the limits in force."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controls import (
    AutomaticGenerationControl,
    FastFrequencyResponse,
    MpcVoltageController,
    VoltageController,
)
from tests.controls.cases import MODEL, within
from tests.controls.strategies import frequency_case, mpc_case, voltage_limits, voltage_measurements
from tests.controls.test_mpc import assert_plan_within_limits

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    first=voltage_limits(),
    second=voltage_limits(),
    measurements=st.lists(voltage_measurements(), min_size=2, max_size=2),
)
def test_voltage_setpoints_stay_within_the_limits_in_force(first, second, measurements):
    controller = VoltageController(MODEL, first)
    one = controller.step(measurements[0])
    assert within(one, first, measurements[0].pv_kw)
    controller.set_limits(second)
    two = controller.step(measurements[1])
    assert within(two, second, measurements[1].pv_kw)
    assert set(two.reactive_power) == set(second.dg)
    assert set(two.active_power_ess) == set(second.ess)


@SETTINGS
@given(case=frequency_case())
def test_frequency_setpoints_stay_within_the_unit_bounds(case):
    limits, measurements = case
    ffr, agc = FastFrequencyResponse(limits), AutomaticGenerationControl(limits)
    for m in measurements:
        for out in (ffr.step(m), agc.step(m)):
            assert set(out.p_kw) == set(limits.units)
            for unit, p in out.p_kw.items():
                bounds = limits.units[unit]
                assert bounds.p_min_kw - 1e-9 <= p <= bounds.p_max_kw + 1e-9


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mpc_case())
def test_mpc_never_plans_outside_the_asset_limits(case):
    limits, forecast, state = case
    plan = MpcVoltageController(MODEL, limits).step(forecast, state)
    assert_plan_within_limits(plan, limits, forecast)
    for node, ps in plan.p_ess_kw.items():
        ess = limits.voltage.ess[node]
        if ess.energy_kwh is None:
            continue
        soc0 = state.soc[node]
        soc = soc0
        for p in ps:
            soc -= p * 0.25 / ess.energy_kwh
            assert min(ess.soc_min, soc0) - 1e-6 <= soc <= max(ess.soc_max, soc0) + 1e-6
