"""VPP frequency control: FFR gain and sharing, AGC restoring the schedule by droop."""

from __future__ import annotations

import pytest

from controls import (
    AutomaticGenerationControl,
    FastFrequencyResponse,
    FrequencyLimits,
    InvalidLimitsError,
    InvalidMeasurementError,
    UnitLimits,
    VppMeasurement,
)

K_FFR = 0.4  # per Hz: the VPP behaves like a 5 % droop on its own generation


def ffr_limits(**changes) -> FrequencyLimits:
    units = {"pv": UnitLimits(0.0, 2000.0), "bess": UnitLimits(-1000.0, 1000.0)}
    return FrequencyLimits(units, **{"ffr_gain_per_hz": K_FFR, **changes})


@pytest.mark.parametrize("vpp_kw", [100.0, 200.0, 400.0, 800.0])
def test_ffr_response_scales_with_the_power_the_vpp_generates(vpp_kw):
    p = {"pv": vpp_kw, "bess": 0.0}
    out = FastFrequencyResponse(ffr_limits()).step(VppMeasurement(49.8, p))
    expected = K_FFR * vpp_kw * (0.2 - 0.01)  # deviation measured from the deadband edge
    assert out.delta_p_kw == pytest.approx(expected)
    assert sum(out.p_kw.values()) - vpp_kw == pytest.approx(expected)
    assert not out.saturated


def test_ffr_gain_doubles_when_vpp_generation_doubles():
    ffr = FastFrequencyResponse(ffr_limits())
    small = ffr.step(VppMeasurement(49.9, {"pv": 300.0, "bess": 0.0})).delta_p_kw
    large = ffr.step(VppMeasurement(49.9, {"pv": 600.0, "bess": 0.0})).delta_p_kw
    assert large == pytest.approx(2 * small) and small > 0


@pytest.mark.parametrize(
    ("what_is_checked", "frequency", "pv_share"),
    [
        ("under-frequency is shared by headroom (1700 vs 1000 kW)", 49.9, 1700 / 2700),
        ("over-frequency is shared by footroom (300 vs 1000 kW)", 50.1, 300 / 1300),
    ],
)
def test_ffr_shares_the_response_by_available_room(what_is_checked, frequency, pv_share):
    out = FastFrequencyResponse(ffr_limits()).step(
        VppMeasurement(frequency, {"pv": 300.0, "bess": 0.0})
    )
    pv_delta = out.p_kw["pv"] - 300.0
    assert pv_delta / out.delta_p_kw == pytest.approx(pv_share)


def test_ffr_does_nothing_inside_the_deadband():
    out = FastFrequencyResponse(ffr_limits()).step(
        VppMeasurement(50.009, {"pv": 500.0, "bess": 0.0})
    )
    assert out.p_kw == {"pv": 500.0, "bess": 0.0} and out.delta_p_kw == 0.0


def test_ffr_saturates_at_the_unit_bounds():
    out = FastFrequencyResponse(ffr_limits(ffr_gain_per_hz=50.0)).step(
        VppMeasurement(48.0, {"pv": 1500.0, "bess": 0.0})
    )
    assert out.p_kw == {"pv": 2000.0, "bess": 1000.0}
    assert out.saturated


def test_ffr_gain_replaced_between_steps_applies_to_the_next_step():
    ffr = FastFrequencyResponse(ffr_limits())
    m = VppMeasurement(49.9, {"pv": 500.0, "bess": 0.0})
    before = ffr.step(m).delta_p_kw
    ffr.set_limits(ffr_limits(ffr_gain_per_hz=2 * K_FFR))
    assert ffr.step(m).delta_p_kw == pytest.approx(2 * before)


AGC_UNITS = {
    "chp": UnitLimits(0.0, 400.0, droop=0.04),  # P_n / R = 10000
    "bess": UnitLimits(-200.0, 200.0, droop=0.05),  # 4000
    "pv": UnitLimits(0.0, 100.0, droop=0.08),  # 1250
}
SCHEDULE = {"chp": 200.0, "bess": 0.0, "pv": 50.0}
GRID_KW_PER_HZ = 2000.0


def run_agc(agc: AutomaticGenerationControl, loss_kw: float, steps: int) -> tuple[float, dict]:
    """Quasi-static loop: the chp delivers `loss_kw` less than asked; the grid's
    frequency follows the VPP's deviation from its schedule (stiffness 2000 kW/Hz)."""
    setpoints = dict(SCHEDULE)
    frequency = 50.0
    for k in range(steps):
        actual = {u: p - (loss_kw if u == "chp" else 0.0) for u, p in setpoints.items()}
        deviation = sum(actual.values()) - sum(SCHEDULE.values())
        frequency = 50.0 + deviation / GRID_KW_PER_HZ
        setpoints = dict(agc.step(VppMeasurement(frequency, actual, SCHEDULE, float(k))).p_kw)
    return frequency, setpoints


def test_agc_restores_frequency_and_the_vpp_schedule():
    agc = AutomaticGenerationControl(FrequencyLimits(AGC_UNITS, agc_kp=0.2, agc_ki_per_s=0.3))
    frequency, setpoints = run_agc(agc, loss_kw=60.0, steps=60)
    delivered = sum(setpoints.values()) - 60.0
    assert frequency == pytest.approx(50.0, abs=1e-4)
    assert delivered == pytest.approx(sum(SCHEDULE.values()), abs=0.1)


def test_agc_participation_is_in_proportion_to_rating_over_droop():
    agc = AutomaticGenerationControl(FrequencyLimits(AGC_UNITS, agc_kp=0.2, agc_ki_per_s=0.3))
    _, setpoints = run_agc(agc, loss_kw=60.0, steps=60)
    moves = {u: setpoints[u] - SCHEDULE[u] for u in SCHEDULE}
    assert moves["chp"] / moves["bess"] == pytest.approx(10000 / 4000, rel=1e-3)
    assert moves["bess"] / moves["pv"] == pytest.approx(4000 / 1250, rel=1e-3)
    assert sum(moves.values()) == pytest.approx(60.0, abs=0.1)


def test_agc_hands_a_saturated_units_share_to_the_others():
    units = {**AGC_UNITS, "chp": UnitLimits(0.0, 205.0, droop=0.04)}
    agc = AutomaticGenerationControl(FrequencyLimits(units, agc_kp=0.2, agc_ki_per_s=0.3))
    frequency, setpoints = run_agc(agc, loss_kw=60.0, steps=80)
    assert setpoints["chp"] == pytest.approx(205.0)
    assert frequency == pytest.approx(50.0, abs=1e-4)
    others = {u: setpoints[u] - SCHEDULE[u] for u in ("bess", "pv")}
    assert others["bess"] / others["pv"] == pytest.approx(4000 / 1250, rel=1e-3)


def test_agc_droops_replaced_between_steps_change_the_next_split():
    agc = AutomaticGenerationControl(FrequencyLimits(AGC_UNITS, agc_kp=1.0, agc_ki_per_s=0.0))
    m = VppMeasurement(49.98, {"chp": 200.0, "bess": 0.0, "pv": 50.0}, SCHEDULE)
    first = agc.step(m).p_kw
    equal = {u: UnitLimits(v.p_min_kw, v.p_max_kw, droop=0.05, p_nominal_kw=100.0)
             for u, v in AGC_UNITS.items()}  # fmt: skip
    agc.set_limits(FrequencyLimits(equal, agc_kp=1.0, agc_ki_per_s=0.0, agc_bias_kw_per_hz=1e4))
    second = agc.step(m).p_kw
    assert first["chp"] - 200.0 > 2 * (first["bess"] - 0.0)
    assert second["chp"] - 200.0 == pytest.approx(second["bess"] - 0.0)


def test_a_unit_without_a_measurement_is_an_error():
    with pytest.raises(InvalidMeasurementError, match="`bess`"):
        FastFrequencyResponse(ffr_limits()).step(VppMeasurement(50.0, {"pv": 1.0}))


@pytest.mark.parametrize(
    ("what_is_inconsistent", "build"),
    [
        ("zero droop", lambda: UnitLimits(0.0, 1.0, droop=0.0)),
        ("bounds upside down", lambda: UnitLimits(1.0, 0.0)),
        ("no units", lambda: FrequencyLimits({})),
        ("negative gain", lambda: FrequencyLimits({"a": UnitLimits(0, 1)}, ffr_gain_per_hz=-1)),
        ("zero rating", lambda: UnitLimits(-1.0, 0.0)),
    ],
)
def test_inconsistent_frequency_limits_are_refused(what_is_inconsistent, build):
    with pytest.raises(InvalidLimitsError):
        build()
