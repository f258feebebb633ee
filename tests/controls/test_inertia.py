"""Inertia estimation on synthetic swing-equation records (docs/domain.md §3.5, Model B).

"1 % measurement noise": Gaussian noise of 1 % of |ΔP| on the power record and of
1 % of the largest frequency excursion in the first second after the event on the
frequency record (1.5-4.7 mHz here, above the ≈1 mHz of a PMU), fixed seeds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from controls import (
    EventRejected,
    InertiaEstimate,
    InertiaEstimator,
    InertiaLimits,
    InvalidLimitsError,
    InvalidMeasurementError,
    RocofEvent,
    detect_events,
    rocof,
)
from controls.testing import simulate_swing

SEEDS = range(5)


def one_percent_noise(h_s: float, **kwargs) -> dict:  # kwargs: simulate_swing's
    clean = simulate_swing(h_s, **kwargs)
    after = (clean.t >= clean.t_event) & (clean.t <= clean.t_event + 1.0)
    return {"f_noise_hz": 0.01 * np.abs(clean.f_hz[after] - 50.0).max(), "p_noise_rel": 0.01}


def estimates(record, method="least_squares", limits=None):
    estimator = InertiaEstimator(record.s_base_mw, record.f0_hz)
    return estimator.run(record.t, record.f_hz, record.p_mw, method=method, limits=limits)


@pytest.mark.parametrize("h_s", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_least_squares_estimate_is_within_5_percent_of_the_true_h(h_s, seed):
    record = simulate_swing(h_s, seed=seed, **one_percent_noise(h_s))
    found = [r for r in estimates(record) if isinstance(r, InertiaEstimate)]
    assert len(found) == 1
    estimate = found[0]
    assert estimate.t0 == pytest.approx(record.t_event)
    assert estimate.h_s == pytest.approx(h_s, rel=0.05)
    assert estimate.stderr_s > 0 and abs(estimate.h_s - h_s) < 4 * estimate.stderr_s


@pytest.mark.parametrize("h_s", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_swing_formula_estimate_is_covered_by_its_standard_error(h_s, seed):
    record = simulate_swing(h_s, seed=seed, **one_percent_noise(h_s))
    estimate = next(r for r in estimates(record, "swing") if isinstance(r, InertiaEstimate))
    assert estimate.h_s == pytest.approx(h_s, rel=0.12)
    assert abs(estimate.h_s - h_s) < 4 * estimate.stderr_s
    assert estimate.rocof_hz_s * estimate.delta_p_mw > 0


def test_noise_free_estimates_recover_h_closely():
    record = simulate_swing(4.0)
    ls = next(r for r in estimates(record) if isinstance(r, InertiaEstimate))
    swing = next(r for r in estimates(record, "swing") if isinstance(r, InertiaEstimate))
    assert ls.h_s == pytest.approx(4.0, rel=0.005)
    assert swing.h_s == pytest.approx(4.0, rel=0.02)  # governor and damping act within 0.2 s


@pytest.mark.parametrize("h_s", [2.0, 4.0, 8.0])
def test_events_below_the_rocof_threshold_are_not_reported(h_s):
    threshold = InertiaLimits().rocof_threshold_hz_s
    delta_p = -0.8 * threshold * 2 * h_s / 50.0  # initial RoCoF = 80 % of the threshold
    record = simulate_swing(h_s, delta_p_pu=delta_p, seed=1, f_noise_hz=0.001, p_noise_rel=0.01)
    assert estimates(record) == []
    assert detect_events(record.t, record.f_hz, threshold_hz_s=threshold, window_s=0.2,
                         holdoff_s=2.0) == []  # fmt: skip


@pytest.mark.parametrize("h_s", [2.0, 4.0, 8.0])
def test_later_swings_of_an_event_give_no_second_estimate(h_s):
    record = simulate_swing(h_s, duration_s=14.0, seed=2, **one_percent_noise(h_s))
    first, *later = estimates(record)
    assert isinstance(first, InertiaEstimate) and first.t0 == pytest.approx(record.t_event)
    for swing in later:  # governor oscillations: RoCoF without a power step behind it
        assert isinstance(swing, EventRejected)
        assert swing.reason in ("imbalance_too_small", "not_steady")


def test_two_separate_disturbances_give_two_estimates():
    first = simulate_swing(4.0, duration_s=30.0, seed=6, f_noise_hz=0.001, p_noise_rel=0.01)
    second = simulate_swing(4.0, duration_s=15.0, t_event=2.0, seed=7, f_noise_hz=0.001,
                            p_noise_rel=0.01)  # fmt: skip
    settled_f = first.f_hz[-1] - 50.0
    t = np.concatenate([first.t, first.t[-1] + 0.02 + second.t])
    f = np.concatenate([first.f_hz, second.f_hz + settled_f])
    p = np.concatenate([first.p_mw, second.p_mw + first.p_mw[-1]])
    results = InertiaEstimator(first.s_base_mw).run(t, f, p)
    found = [r for r in results if isinstance(r, InertiaEstimate)]
    assert [r.t0 for r in found] == pytest.approx([2.0, t[0] + first.t[-1] + 0.02 + 2.0])
    assert [r.h_s for r in found] == pytest.approx([4.0, 4.0], rel=0.05)
    for swing in set(results) - set(found):  # the governors' later swings, each with a reason
        assert isinstance(swing, EventRejected) and swing.reason in (
            "imbalance_too_small",
            "not_steady",
        )


def test_rocof_is_the_windowed_regression_slope():
    t = np.arange(0.0, 2.0, 0.02)
    f = 50.0 - 0.25 * np.clip(t - 1.0, 0.0, None)
    t_end, slopes = rocof(t, f, window_s=0.2)
    assert slopes[t_end <= 1.0] == pytest.approx(0.0, abs=1e-12)
    assert slopes[t_end - 0.2 >= 1.0 - 1e-9] == pytest.approx(-0.25)


def _without_power(r):
    return dataclasses.replace(r, p_mw=np.random.default_rng(0).normal(0.0, 0.5, r.t.size))


def _flipped_power(r):
    return dataclasses.replace(r, p_mw=-r.p_mw)


def _late_start(r):
    keep = r.t >= r.t_event - 0.06
    return dataclasses.replace(r, t=r.t[keep], f_hz=r.f_hz[keep], p_mw=r.p_mw[keep])


@pytest.mark.parametrize(
    ("why_the_event_is_rejected", "reason", "change", "limits"),
    [
        ("no power step behind the rocof", "imbalance_too_small", _without_power, None),
        ("imbalance and rocof disagree in sign", "sign_mismatch", _flipped_power, None),
        ("record starts just before the event", "too_few_samples", _late_start, None),
        ("h outside the plausible range", "out_of_range", None, InertiaLimits(h_max_s=3.0)),
        ("fit below the required r2", "poor_fit", None, InertiaLimits(min_r2=0.999999)),
    ],
)
def test_events_that_cannot_give_an_estimate_are_rejected_with_a_reason(
    why_the_event_is_rejected, reason, change, limits
):
    record = simulate_swing(4.0, seed=4, f_noise_hz=0.001, p_noise_rel=0.01)
    if change is not None:
        record = change(record)
    first = estimates(record, limits=limits)[0]
    assert isinstance(first, EventRejected)
    assert first.reason == reason and first.message


def test_an_event_whose_rocof_is_below_the_threshold_is_rejected():
    record = simulate_swing(4.0, delta_p_pu=-0.01, seed=5, f_noise_hz=0.001)
    estimator = InertiaEstimator(record.s_base_mw)
    result = estimator.estimate(record.t, record.f_hz, record.p_mw, RocofEvent(2.0, 100, -0.06))
    assert isinstance(result, EventRejected) and result.reason == "rocof_below_threshold"


def test_replaced_limits_apply_to_the_next_run():
    record = simulate_swing(4.0, seed=0, f_noise_hz=0.001, p_noise_rel=0.01)
    estimator = InertiaEstimator(record.s_base_mw)
    assert isinstance(estimator.run(record.t, record.f_hz, record.p_mw)[0], InertiaEstimate)
    estimator.set_limits(InertiaLimits(rocof_threshold_hz_s=0.5))
    assert estimator.run(record.t, record.f_hz, record.p_mw) == []


@pytest.mark.parametrize(
    ("what_is_wrong", "t", "f"),
    [
        ("time not increasing", [0.0, 0.02, 0.02], [50.0, 50.0, 50.0]),
        ("lengths differ", [0.0, 0.02], [50.0]),
        ("a missing sample", [0.0, 0.02, 0.04], [50.0, float("nan"), 50.0]),
    ],
)
def test_malformed_records_are_rejected(what_is_wrong, t, f):
    with pytest.raises(InvalidMeasurementError):
        rocof(np.array(t), np.array(f), window_s=0.04)


def test_inconsistent_inertia_limits_are_refused():
    with pytest.raises(InvalidLimitsError):
        InertiaLimits(h_min_s=5.0, h_max_s=1.0)
    with pytest.raises(InvalidLimitsError):
        InertiaEstimator(s_base_mw=0.0)


# --- issue 12: events not missed, low frame rates, drift, honest uncertainty, settings ---


def two_percent_noise(h_s: float, fps: int, seed: int, **kwargs):
    clean = simulate_swing(h_s, fps=fps, **kwargs)
    after = (clean.t >= clean.t_event) & (clean.t <= clean.t_event + 1.0)
    noise = 0.02 * np.abs(clean.f_hz[after] - 50.0).max()
    return simulate_swing(h_s, fps=fps, f_noise_hz=noise, p_noise_rel=0.02, seed=seed, **kwargs)


def the_estimate(record, method="least_squares"):
    found = [r for r in estimates(record, method) if isinstance(r, InertiaEstimate)]
    near = [r for r in found if abs(r.t0 - record.t_event) < 0.1]
    assert near, f"the event at {record.t_event} s was missed: {estimates(record, method)}"
    return near[0]


@pytest.mark.parametrize("seed", range(6))
def test_a_rejected_noise_candidate_does_not_hide_the_event_after_it(seed):
    # H = 1.5 s, 5 % loss, 50 frames/s, 2 % noise: noise crosses the threshold before
    # the event, is rejected, and used to start a 2 s hold-off that swallowed the event
    record = two_percent_noise(1.5, 50, seed)
    assert the_estimate(record).h_s == pytest.approx(1.5, rel=0.05)


def test_every_candidate_gives_an_estimate_or_a_reason():
    record = two_percent_noise(1.5, 50, 2)
    limits = InertiaLimits()
    results = estimates(record)
    assert any(isinstance(r, EventRejected) for r in results)  # noise candidates, judged
    candidates = detect_events(record.t, record.f_hz, threshold_hz_s=limits.rocof_threshold_hz_s,
                               window_s=limits.detection_window_s)  # fmt: skip
    estimate = the_estimate(record)
    for candidate in candidates:
        if estimate.t0 - 1.0 < candidate.t0 < estimate.t0 + limits.ls_window_s:
            continue  # moved onto the event's power step, or that event's own swings
        assert any(abs(r.t0 - candidate.t0) < 0.5 for r in results), candidate


@pytest.mark.parametrize("h_s", [2.0, 4.0, 8.0])
def test_ten_frames_per_second_work_with_the_default_windows(h_s):
    record = simulate_swing(h_s, fps=10, seed=1, **one_percent_noise(h_s, fps=10))
    for method, tolerance in (("least_squares", 0.05), ("swing", 0.12)):
        assert the_estimate(record, method).h_s == pytest.approx(h_s, rel=tolerance)


@pytest.mark.parametrize("seed", range(4))
def test_ambient_drift_does_not_bias_the_least_squares_estimate(seed):
    # ±10 mHz random walk plus 1 mHz noise: errors reached 8-13 % at H = 9 s
    record = simulate_swing(9.0, fps=50, f_noise_hz=0.001, p_noise_rel=0.01, f_drift_hz=0.01,
                            seed=seed)  # fmt: skip
    estimate = the_estimate(record)
    assert estimate.h_s == pytest.approx(9.0, rel=0.05)
    # a 95 % interval may miss one run in twenty (coverage: the test below and the
    # benchmark); each run's error is within three of its stated standard errors
    assert abs(estimate.h_s - 9.0) < 3 * estimate.stderr_s


def test_ten_frames_per_second_with_two_percent_noise_use_the_whole_response():
    # a 5 s window left 1.0 % rms error at H = 9 s (one run in forty beyond 5 %); the
    # 8 s window takes every sample up to the record's end (Cramér-Rao bound: 0.9 %)
    errors = [the_estimate(two_percent_noise(9.0, 10, seed)).h_s / 9.0 - 1 for seed in range(20)]
    assert math.sqrt(np.mean(np.square(errors))) < 0.009


def test_a_pre_event_frequency_trend_is_removed():
    record = simulate_swing(7.0, f_noise_hz=0.001, p_noise_rel=0.01, seed=3)
    drifting = dataclasses.replace(record, f_hz=record.f_hz + 0.005 * record.t)  # 5 mHz/s
    assert the_estimate(drifting).h_s == pytest.approx(7.0, rel=0.02)


@pytest.mark.parametrize("h_s", [1.5, 4.0])
def test_the_swing_formula_is_not_biased_by_the_rocof_decay(h_s):
    assert the_estimate(simulate_swing(h_s), "swing").h_s == pytest.approx(h_s, rel=0.01)


@pytest.mark.parametrize("fps", [10, 25, 50, 100])
@pytest.mark.parametrize("h_s", [1.5, 3.0, 9.0])
def test_the_swing_formula_is_unbiased_at_every_frame_rate_without_noise(h_s, fps):
    # RoCoF0 (a quadratic) and ΔP0 (a line) extrapolated to the onset from a window in
    # which the governor acts were each 2-4 % off; their errors cancelled at 50 frames/s
    # but left +1.7 % at 10 frames/s and +0.6 % at 25 (H = 1.5 s)
    estimate = the_estimate(simulate_swing(h_s, fps=fps), "swing")
    assert estimate.h_s == pytest.approx(h_s, rel=0.003)


def test_the_stated_interval_holds_the_true_h_under_drifting_noise():
    # ordinary least-squares errors held it in about half of these runs (up to 9.6 sigma)
    held = 0
    for seed in range(20):
        record = simulate_swing(5.5, fps=50, f_noise_hz=0.001, p_noise_rel=0.01,
                                f_drift_hz=0.01, seed=seed)  # fmt: skip
        estimate = the_estimate(record)
        held += estimate.h_low_s <= 5.5 <= estimate.h_high_s
        assert estimate.h_low_s < estimate.h_s < estimate.h_high_s
        assert abs(estimate.h_s - 5.5) < 4 * estimate.stderr_s
    assert held >= 17


def test_the_interval_narrows_with_less_noise():
    noisy = the_estimate(simulate_swing(4.0, f_noise_hz=0.005, p_noise_rel=0.02, seed=1))
    quiet = the_estimate(simulate_swing(4.0, f_noise_hz=0.0005, p_noise_rel=0.002, seed=1))
    assert quiet.h_high_s - quiet.h_low_s < (noisy.h_high_s - noisy.h_low_s) / 3


NAN = float("nan")
RECORD = simulate_swing(4.0, f_noise_hz=0.001, seed=0)


@pytest.mark.parametrize(
    ("what_is_wrong", "call", "named"),
    [
        ("an unknown method", lambda e: e.run(RECORD.t, RECORD.f_hz, RECORD.p_mw, method="ml"),
         "`method`"),
        ("a NaN rocof threshold", lambda e: InertiaLimits(rocof_threshold_hz_s=NAN),
         "`rocof_threshold_hz_s`.*Hz/s"),
        ("a NaN minimum r2", lambda e: InertiaLimits(min_r2=NAN), "`min_r2`"),
        ("an r2 above one", lambda e: InertiaLimits(min_r2=1.5), "`min_r2`"),
        ("a fractional sample count", lambda e: InertiaLimits(min_samples=4.5), "`min_samples`"),
        ("a NaN window", lambda e: InertiaLimits(ls_window_s=NAN), "`ls_window_s`.*s"),
        ("frequency in pu", lambda e: e.run(RECORD.t, RECORD.f_hz / 50.0, RECORD.p_mw), "Hz"),
        ("time in ms", lambda e: e.run(RECORD.t * 1000.0, RECORD.f_hz, RECORD.p_mw), "seconds"),
        ("an empty record", lambda e: e.run(np.array([]), np.array([]), np.array([])),
         "too short"),
        ("a one-sample record", lambda e: e.run(np.array([0.0]), np.array([50.0]),
                                                np.array([0.0])), "too short"),
        ("a NaN base power", lambda e: InertiaEstimator(NAN), "`s_base_mw`.*MW"),
        ("a NaN rocof window", lambda e: rocof(RECORD.t, RECORD.f_hz, window_s=NAN),
         "`window_s`"),
    ],
)  # fmt: skip
def test_unusable_settings_and_records_are_refused_with_what_to_fix(what_is_wrong, call, named):
    with pytest.raises((InvalidLimitsError, InvalidMeasurementError), match=named):
        call(InertiaEstimator(RECORD.s_base_mw))


def test_an_estimate_counts_the_samples_after_the_onset_it_used():
    record = simulate_swing(4.0, fps=50)  # 8 s, the event at 2 s
    assert the_estimate(record).samples == 301  # 2 to 8 s: the record ends the 8 s window
    assert the_estimate(record, "swing").samples == 26  # the 0.5 s fit window
