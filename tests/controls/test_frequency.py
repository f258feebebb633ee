"""VPP frequency control: FFR gain and sharing, AGC restoring the schedule by droop."""

from __future__ import annotations

import pytest

from controls import (
    AutomaticGenerationControl,
    FastFrequencyResponse,
    FrequencyLimits,
    InvalidLimitsError,
    InvalidMeasurementError,
    TriggeredFastFrequencyResponse,
    TriggeredFfr,
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
    small = FastFrequencyResponse(ffr_limits()).step(
        VppMeasurement(49.9, {"pv": 300.0, "bess": 0.0})
    )
    large = FastFrequencyResponse(ffr_limits()).step(
        VppMeasurement(49.9, {"pv": 600.0, "bess": 0.0})
    )
    assert large.delta_p_kw == pytest.approx(2 * small.delta_p_kw) and small.delta_p_kw > 0


def follow(controller, frequencies, start: dict[str, float], schedule=None) -> list[dict]:
    """Closed loop: each unit delivers exactly its last set-point, as a real plant would;
    one step per second."""
    actual, out = dict(start), []
    for k, frequency in enumerate(frequencies):
        setpoints = controller.step(VppMeasurement(frequency, actual, schedule or {}, float(k)))
        actual = dict(setpoints.p_kw)
        out.append(actual)
    return out


def test_ffr_without_a_schedule_holds_the_pre_event_baseline_instead_of_ratcheting():
    ffr = FastFrequencyResponse(ffr_limits())
    outputs = follow(ffr, [50.0, 49.9, 49.9, 49.9, 49.9, 49.9, 50.0, 50.0],
                     {"pv": 600.0, "bess": 0.0})  # fmt: skip
    one_step = K_FFR * 600.0 * (0.1 - 0.01)  # 21.6 kW
    for during in outputs[1:6]:
        assert sum(during.values()) == pytest.approx(600.0 + one_step)
    assert sum(outputs[6].values()) == pytest.approx(600.0)  # back to the baseline
    assert sum(outputs[7].values()) == pytest.approx(600.0)


def test_ffr_follows_a_deeper_dip_from_the_same_baseline():
    outputs = follow(FastFrequencyResponse(ffr_limits()), [49.9, 49.8, 49.9],
                     {"pv": 600.0, "bess": 0.0})  # fmt: skip
    totals = [sum(o.values()) - 600.0 for o in outputs]
    assert totals == pytest.approx([K_FFR * 600.0 * d for d in (0.09, 0.19, 0.09)])


def test_agc_without_a_schedule_does_not_ratchet_on_its_own_correction():
    limits = FrequencyLimits(AGC_UNITS, agc_kp=0.2, agc_ki_per_s=0.0)
    start = {"chp": 200.0, "bess": 0.0, "pv": 50.0}
    outputs = follow(AutomaticGenerationControl(limits), [49.95] * 6, start)
    first = sum(outputs[0].values())
    assert first > 250.0
    assert [sum(o.values()) for o in outputs] == pytest.approx([first] * 6)


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


# --- threshold-triggered FFR (Nordic FFR) ------------------------------------------------


def triggered(**product) -> TriggeredFastFrequencyResponse:
    settings = {"capacity_kw": 400.0, "deactivation_time_s": 0.0, **product}
    return TriggeredFastFrequencyResponse(ffr_limits(), TriggeredFfr(**settings))


def deliveries(controller, samples, start=None) -> list[float]:
    """(time, frequency) samples; the response (kW above the baseline) at each."""
    actual = dict(start or {"pv": 600.0, "bess": 0.0})
    base = sum(actual.values())
    out = []
    for t, frequency in samples:
        actual = dict(controller.step(VppMeasurement(frequency, actual, time_s=t)).p_kw)
        out.append(sum(actual.values()) - base)
    return out


def test_triggered_ffr_delivers_its_full_capacity_when_the_threshold_is_crossed():
    got = deliveries(triggered(), [(0.0, 49.75), (0.1, 49.70), (0.2, 49.69), (0.3, 49.65)])
    assert got == pytest.approx([0.0, 400.0, 400.0, 400.0])  # no ramp from the threshold


def test_triggered_ffr_ramps_over_its_activation_time():
    got = deliveries(triggered(activation_time_s=1.0), [(0.0, 49.6), (0.5, 49.6), (1.0, 49.6)])
    assert got == pytest.approx([0.0, 200.0, 400.0])


def test_triggered_ffr_holds_its_support_duration_then_deactivates_at_its_rate():
    ffr = triggered(support_duration_s=5.0, deactivation_time_s=5.0)
    samples = [(0.0, 49.6), (1.0, 49.9), (4.9, 49.95), (5.0, 49.95), (6.0, 49.95),
               (7.5, 49.95), (10.0, 49.95), (11.0, 50.0)]  # fmt: skip
    got = deliveries(ffr, samples)
    assert got[:3] == pytest.approx([400.0, 400.0, 400.0])  # held although recovered
    assert got[3:] == pytest.approx([400.0, 320.0, 200.0, 0.0, 0.0])  # 20 % per second
    assert ffr.state == "armed"


def test_triggered_ffr_keeps_delivering_while_the_frequency_stays_low():
    got = deliveries(triggered(support_duration_s=5.0), [(0.0, 49.6), (30.0, 49.65)])
    assert got == pytest.approx([400.0, 400.0])


def test_triggered_ffr_re_triggers_during_deactivation_from_where_it_was():
    ffr = triggered(activation_time_s=1.0, support_duration_s=0.0, deactivation_time_s=4.0)
    samples = [(0.0, 49.6), (1.0, 49.6), (2.0, 49.9), (3.0, 49.9), (3.5, 49.6), (4.0, 49.6)]
    got = deliveries(ffr, samples)
    assert got == pytest.approx([0.0, 400.0, 400.0, 300.0, 300.0, 400.0])  # ramps up from 75 %


def test_an_over_frequency_product_reduces_the_injection():
    got = deliveries(triggered(threshold_hz=50.3), [(0.0, 50.2), (0.1, 50.31)])
    assert got == pytest.approx([0.0, -400.0])


def test_triggered_ffr_is_shared_by_headroom_and_reports_saturation():
    ffr = TriggeredFastFrequencyResponse(ffr_limits(), TriggeredFfr(5000.0))
    out = ffr.step(VppMeasurement(49.5, {"pv": 1500.0, "bess": 0.0}, time_s=0.0))
    assert out.p_kw == {"pv": 2000.0, "bess": 1000.0} and out.saturated
    assert out.delta_p_kw == 5000.0


def test_triggered_ffr_refuses_time_running_backwards():
    ffr = triggered()
    ffr.step(VppMeasurement(50.0, {"pv": 1.0, "bess": 0.0}, time_s=5.0))
    with pytest.raises(InvalidMeasurementError, match="time"):
        ffr.step(VppMeasurement(50.0, {"pv": 1.0, "bess": 0.0}, time_s=4.0))


def test_the_nordic_product_has_the_published_levels():
    product = TriggeredFfr.nordic(100.0, 49.6)
    assert (product.threshold_hz, product.support_duration_s) == (49.6, 5.0)
    assert product.capacity_kw / product.deactivation_time_s <= 0.2 * product.capacity_kw
    with pytest.raises(InvalidLimitsError, match=r"49\.8"):
        TriggeredFfr.nordic(100.0, 49.8)


NAN = float("nan")


@pytest.mark.parametrize(
    ("what_is_wrong", "build", "named"),
    [
        ("NaN deadband", lambda: ffr_limits(deadband_hz=NAN), "`deadband_hz`.*Hz"),
        ("NaN gain", lambda: ffr_limits(ffr_gain_per_hz=NAN), "`ffr_gain_per_hz`"),
        ("NaN bias", lambda: ffr_limits(agc_bias_kw_per_hz=NAN), "`agc_bias_kw_per_hz`.*kW/Hz"),
        ("negative bias", lambda: ffr_limits(agc_bias_kw_per_hz=-1.0), "`agc_bias_kw_per_hz`"),
        ("NaN nominal frequency", lambda: ffr_limits(f_nominal_hz=NAN), "`f_nominal_hz`"),
        ("NaN droop", lambda: UnitLimits(0.0, 1.0, droop=NAN), "`droop`"),
        ("NaN unit bound", lambda: UnitLimits(NAN, 1.0), "kW"),
        ("NaN ffr capacity", lambda: TriggeredFfr(NAN), "`capacity_kw`.*kW"),
        ("negative activation time", lambda: TriggeredFfr(1.0, activation_time_s=-1.0),
         "`activation_time_s`.* s"),
        ("NaN threshold", lambda: TriggeredFfr(1.0, threshold_hz=NAN), "`threshold_hz`.*Hz"),
        ("a threshold at nominal", lambda: TriggeredFastFrequencyResponse(
            ffr_limits(), TriggeredFfr(1.0, threshold_hz=50.0)), "nominal"),
        ("frequency in pu", lambda: VppMeasurement(0.0, {"pv": 1.0}), "Hz"),
        ("NaN frequency", lambda: VppMeasurement(NAN, {"pv": 1.0}), "Hz"),
    ],
)  # fmt: skip
def test_unusable_frequency_settings_are_refused_with_their_name_and_unit(
    what_is_wrong, build, named
):
    with pytest.raises((InvalidLimitsError, InvalidMeasurementError), match=named):
        build()


def test_limits_that_put_the_nominal_frequency_on_the_threshold_are_refused():
    # the threshold was checked against the first limits only; later ones were taken as is
    controller = TriggeredFastFrequencyResponse(ffr_limits(), TriggeredFfr(100.0, 49.7))
    with pytest.raises(InvalidLimitsError, match="nominal"):
        controller.set_limits(ffr_limits(f_nominal_hz=49.7))
    assert controller.limits.f_nominal_hz == 50.0
