"""The running windows of `TopicHistory` against the windowed computation they replace.

RoCoF and ΔP used to be recomputed over the window for every sample; they are now kept
up to date as samples arrive. The reference below is that former computation, applied
to the history's own samples: a least-squares slope of frequency over the samples at
most `window_s` older than the newest sample, and the newest tenth's mean power minus
the oldest tenth's.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.events import Sample, TopicHistory, slope
from pbgm.events._windows import RunningWindow

EPOCH = 1_772_438_400.0  # 2026-03-02: times of the magnitude the service sees


def reference_rocof(history: TopicHistory, window_s: float, min_samples: int) -> float | None:
    newest = history.newest
    assert newest is not None
    points = [
        (s.t - newest.t, s.frequency)
        for s in history.since(newest.t - window_s - 1e-9)
        if s.frequency is not None
    ]
    return slope(points) if len(points) >= max(min_samples, 3) else None


def reference_delta_p(history: TopicHistory, window_s: float, min_samples: int) -> float | None:
    newest = history.newest
    assert newest is not None
    powers = [s.power for s in history.since(newest.t - window_s - 1e-9) if s.power is not None]
    powers.reverse()  # newest first
    if len(powers) < max(min_samples, 2):
        return None
    k = max(1, len(powers) // 10)
    return sum(powers[:k]) / k - sum(powers[-k:]) / k


def close(ours: float | None, reference: float | None) -> bool:
    if ours is None or reference is None:
        return ours is reference
    return math.isclose(ours, reference, rel_tol=1e-7, abs_tol=1e-7)


def series(seed: int, count: int, mean_gap_s: float, missing: float) -> list[Sample]:
    """`count` samples from `EPOCH` on, gaps drawn around `mean_gap_s`, each signal
    missing from a share `missing` of them (a topic may carry either or both)."""
    rng = random.Random(seed)
    t, samples = EPOCH, []
    for _ in range(count):
        t += rng.choice([0.001, mean_gap_s, mean_gap_s, mean_gap_s * rng.uniform(0.1, 3)])
        frequency = None if rng.random() < missing else rng.uniform(49.0, 51.0)
        power = None if rng.random() < missing else rng.uniform(-5.0, 5.0)
        samples.append(Sample(t, {}, frequency, power))
    return samples


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(1, 300),
    mean_gap_s=st.sampled_from([0.005, 0.02, 0.1]),
    missing=st.sampled_from([0.0, 0.2, 0.6]),
    window_s=st.sampled_from([0.01, 0.05, 0.2, 0.5, 2.0]),
    min_samples=st.integers(1, 6),
    max_age_s=st.sampled_from([0.5, 5.0, 60.0]),
    max_samples=st.sampled_from([10, 40, 10_000]),
    asked_every=st.integers(1, 50),
)
def test_running_rocof_and_delta_p_equal_the_windowed_computation(
    seed: int,
    count: int,
    mean_gap_s: float,
    missing: float,
    window_s: float,
    min_samples: int,
    max_age_s: float,
    max_samples: int,
    asked_every: int,
) -> None:
    history = TopicHistory(max_age_s, max_samples)
    for k, sample in enumerate(series(seed, count, mean_gap_s, missing), start=1):
        assert history.add(sample)
        if k % asked_every == 0 or k == count:  # windows are made on first demand
            rocof = history.rocof(window_s, min_samples)
            delta_p = history.delta_p(window_s, min_samples)
            assert close(rocof, reference_rocof(history, window_s, min_samples))
            assert close(delta_p, reference_delta_p(history, window_s, min_samples))


@pytest.mark.parametrize(
    ("what_is_checked", "minutes", "window_s"),
    [
        ("no drift after ten minutes at 50 samples/s", 10, 0.2),
        ("no drift after an hour at 50 samples/s, a longer window", 60, 1.0),
    ],
)
def test_the_running_slope_does_not_drift_over_long_runs(
    what_is_checked: str, minutes: int, window_s: float
) -> None:
    rng = random.Random(minutes)
    window = RunningWindow(window_s)
    for k in range(minutes * 60 * 50):
        window.add(EPOCH + 0.02 * k, 50.0 + 0.05 * math.sin(k / 500) + rng.gauss(0, 0.002))
    newest = window.points[-1][0]
    fresh = slope((t - newest, y) for t, y in window.points)
    assert fresh is not None
    assert window.slope() == pytest.approx(fresh, rel=1e-9, abs=1e-9)


def test_a_late_sample_changes_no_window() -> None:
    history = TopicHistory(60.0, 100)
    for k in range(10):
        history.add(Sample(EPOCH + 0.02 * k, {}, 50.0 - 0.01 * k, 1.0 + k))
    before = (history.rocof(0.2), history.delta_p(0.2))
    assert not history.add(Sample(EPOCH + 0.05, {}, 40.0, 100.0))
    assert (history.rocof(0.2), history.delta_p(0.2)) == before
    assert before[0] == pytest.approx(-0.5)


def test_a_step_inside_the_window_shows_fully_in_delta_p() -> None:
    history = TopicHistory(60.0, 100)
    for k in range(25):
        history.add(Sample(EPOCH + 0.02 * k, {}, None, 1.0 if k < 12 else 1.6))
    assert history.delta_p(0.5) == pytest.approx(0.6)
    assert history.rocof(0.5) is None
