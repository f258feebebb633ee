"""Inertia estimation from frequency and active-power imbalance records (swing equation).

Pipeline (docs/domain.md §3): RoCoF by sliding linear regression, event detection
on a |RoCoF| threshold with the onset located by a flat-then-ramp fit (the first
window over the threshold usually starts before the event) and refined to the
step in the power record, then one of two
estimates of the inertia constant H on the system base `s_base_mw`:

* `swing`: H = ΔP·f0 / (2·S_base·RoCoF0), with RoCoF0 the regression slope over
  `fit_window_s` after the onset and ΔP the mean imbalance over the same window
  measured against the pre-event trend (so a slow governor ramp is not taken for a
  step); its standard error combines the slope's and ΔP's (first-order
  propagation of relative errors);
* `least_squares`: the integral form of the swing equation over `ls_window_s`,
  f(t) - f(t0) = (1/H)·(f0/2)·∫ΔP/S_base dτ - (D/H)·(1/2)·∫(f - f_pre) dτ, fitted by
  ordinary least squares (damping term optional); H = 1/θ, se(H) = se(θ)/θ².

Powers in MW (generation minus load: negative for a lost generator), frequency in
Hz, H in s. An event that cannot give an estimate is returned as `EventRejected`
with a reason code (the `REJECT_*` constants), never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from controls._common import LimitsSlot
from controls._regression import (
    LinearFit,
    fit,
    hinge_onset,
    series,
    sliding_slopes,
    window_samples,
)
from controls.errors import InvalidLimitsError

REJECT_TOO_FEW_SAMPLES = "too_few_samples"
REJECT_IMBALANCE_TOO_SMALL = "imbalance_too_small"
REJECT_ROCOF_BELOW_THRESHOLD = "rocof_below_threshold"
REJECT_SIGN_MISMATCH = "sign_mismatch"
REJECT_POOR_FIT = "poor_fit"
REJECT_OUT_OF_RANGE = "out_of_range"

Method = Literal["swing", "least_squares"]


@dataclass(frozen=True)
class InertiaLimits:
    """Windows, thresholds and plausibility bounds of the estimator."""

    rocof_threshold_hz_s: float = 0.1
    detection_window_s: float = 0.2
    fit_window_s: float = 0.2
    ls_window_s: float = 1.0
    pre_window_s: float = 0.5
    holdoff_s: float = 2.0
    min_imbalance_pu: float = 0.005
    min_samples: int = 5
    min_r2: float = 0.9
    h_min_s: float = 0.5
    h_max_s: float = 15.0
    with_damping: bool = True

    def __post_init__(self) -> None:
        windows = (self.detection_window_s, self.fit_window_s, self.ls_window_s, self.pre_window_s)
        if not all(w > 0 for w in windows) or self.rocof_threshold_hz_s <= 0:
            raise InvalidLimitsError("inertia windows and rocof threshold must be positive")
        if not 0 < self.h_min_s < self.h_max_s or self.min_samples < 3:
            raise InvalidLimitsError("inertia needs 0 < h_min < h_max and at least 3 samples")


@dataclass(frozen=True)
class RocofEvent:
    """A detected frequency event: onset time and index, and the detecting RoCoF."""

    t0: float
    index: int
    rocof_hz_s: float


@dataclass(frozen=True)
class InertiaEstimate:
    t0: float
    method: Method
    h_s: float
    stderr_s: float
    rocof_hz_s: float
    delta_p_mw: float
    r2: float
    samples: int


@dataclass(frozen=True)
class EventRejected:
    t0: float
    method: Method
    reason: str
    message: str


def rocof(t: np.ndarray, f: np.ndarray, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """RoCoF (Hz/s) over sliding windows of `window_s`, stamped at each window's end."""
    t, f = series(t, f, "frequency")
    slopes = sliding_slopes(t, f, window_samples(t, window_s))
    return slopes.t_end, slopes.slope


def detect_events(
    t: np.ndarray,
    f: np.ndarray,
    *,
    threshold_hz_s: float,
    window_s: float,
    holdoff_s: float,
    quiet_s: float = 0.5,
) -> list[RocofEvent]:
    """Events where the windowed |RoCoF| reaches the threshold.

    An event starts from a quasi-steady state: the RoCoF fitted over the `quiet_s`
    before the onset is below a quarter of the threshold. This keeps most later
    swings of an event (governor recovery after the nadir) from counting as new
    events; `holdoff_s` additionally spaces events. A swing that starts from a
    quiet turning point still passes; the estimator then rejects it for lack of a
    power step (`imbalance_too_small`).
    """
    t, f = series(t, f, "frequency")
    n = window_samples(t, window_s)
    slopes = sliding_slopes(t, f, n)
    events: list[RocofEvent] = []
    blocked_until = -math.inf
    above = np.abs(slopes.slope) >= threshold_hz_s
    starts = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    for k in map(int, starts):  # the first window of each excursion over the threshold
        if t[k] < blocked_until:
            continue
        lo, hi = max(0, k - n), min(t.size, k + 2 * n)
        onset = lo + hinge_onset(t[lo:hi], f[lo:hi], np.arange(k - lo, min(k + n, hi) - lo))
        if not _quiet_before(t, f, onset, quiet_s, threshold_hz_s / 4):
            continue
        events.append(RocofEvent(float(t[onset]), int(onset), float(slopes.slope[k])))
        blocked_until = t[onset] + holdoff_s
    return events


def _quiet_before(t: np.ndarray, f: np.ndarray, onset: int, span_s: float, limit: float) -> bool:
    before = np.flatnonzero((t >= t[onset] - span_s) & (t <= t[onset]))
    if before.size < 3:
        return True
    slope = fit(np.column_stack([np.ones(before.size), t[before] - t[onset]]), f[before])
    return abs(float(slope.coef[1])) < limit


def _power_onset(t: np.ndarray, p: np.ndarray, event: RocofEvent, n: int) -> RocofEvent:
    """Move the onset to the power step near it (the RoCoF starts at the step).

    The frequency onset can be a sample off; the imbalance step is sharp, and a
    baseline window that leaks one post-step sample spoils ΔP. The step is the
    split within ±n samples that maximises the difference of the means of the
    m samples before and after it.
    """
    m = max(3, n // 2)
    lo, hi = max(m, event.index - n), min(p.size - m, event.index + n)
    if not lo <= event.index <= hi:
        return event  # too close to the record's edge to compare both sides
    c = np.concatenate([[0.0], np.cumsum(p)])
    k = np.arange(lo, hi + 1)
    jump = np.abs((c[k + m] - c[k]) - (c[k] - c[k - m])) / m
    best = int(k[np.argmax(jump)])
    return RocofEvent(float(t[best]), best, event.rocof_hz_s)


@dataclass(frozen=True)
class _Windows:
    """The samples around one event that both estimates use."""

    pre: np.ndarray
    fit: np.ndarray
    ls: np.ndarray
    delta_p: float
    delta_p_se: float
    rocof: float
    rocof_se: float


def _windows(
    t: npt.NDArray[np.float64], f: npt.NDArray[np.float64], p: npt.NDArray[np.float64],
    event: RocofEvent, lim: InertiaLimits,
) -> _Windows | str:  # fmt: skip
    t0 = event.t0
    pre = np.flatnonzero((t >= t0 - lim.pre_window_s) & (t < t0))
    fit_f = np.flatnonzero((t >= t0) & (t <= t0 + lim.fit_window_s + 1e-9))
    ls = np.flatnonzero((t >= t0) & (t <= t0 + lim.ls_window_s + 1e-9))
    if min(pre.size, fit_f.size - 1, ls.size) < lim.min_samples:
        return REJECT_TOO_FEW_SAMPLES
    post = fit_f[1:]
    slope = fit(np.column_stack([np.ones(fit_f.size), t[fit_f] - t0]), f[fit_f])
    after = fit(np.column_stack([np.ones(post.size), t[post] - t0]), p[post])
    before = fit(np.column_stack([np.ones(pre.size), t[pre] - t0]), p[pre])
    centre = float(np.mean(t[post] - t0))
    delta = float(p[post].mean() - before.coef[0] - before.coef[1] * centre)
    se = math.hypot(_sd(after) / math.sqrt(post.size), math.hypot(*before.stderr * [1, centre]))
    return _Windows(pre, fit_f, ls, delta, se, float(slope.coef[1]), float(slope.stderr[1]))


def _sd(result: LinearFit) -> float:
    """Residual standard deviation of a fit, from its intercept's standard error."""
    return float(result.stderr[0]) * math.sqrt(result.n)


class InertiaEstimator(LimitsSlot[InertiaLimits]):
    """Detects RoCoF events in a record and estimates H for each (or says why not)."""

    def __init__(
        self, s_base_mw: float, f0_hz: float = 50.0, limits: InertiaLimits = InertiaLimits()
    ) -> None:
        if not (s_base_mw > 0 and f0_hz > 0):
            raise InvalidLimitsError("system base power and nominal frequency must be positive")
        self.s_base_mw = s_base_mw
        self.f0_hz = f0_hz
        super().__init__(limits)

    def run(
        self,
        t: np.ndarray,
        f: np.ndarray,
        p_mw: np.ndarray,
        *,
        method: Method = "least_squares",
        limits: InertiaLimits | None = None,
    ) -> list[InertiaEstimate | EventRejected]:
        """One result per detected event, in time order."""
        lim = self._current(limits)
        t, f = series(t, f, "frequency")
        _, p = series(t, p_mw, "active power")
        events = detect_events(
            t, f, threshold_hz_s=lim.rocof_threshold_hz_s,
            window_s=lim.detection_window_s, holdoff_s=lim.holdoff_s, quiet_s=lim.pre_window_s,
        )  # fmt: skip
        return [self.estimate(t, f, p, e, method=method, limits=lim) for e in events]

    def estimate(
        self, t: np.ndarray, f: np.ndarray, p_mw: np.ndarray, event: RocofEvent, *,
        method: Method = "least_squares", limits: InertiaLimits | None = None,
    ) -> InertiaEstimate | EventRejected:  # fmt: skip
        """H for one event, by the swing formula or the least-squares fit."""
        lim = self._current(limits)
        t, f = series(t, f, "frequency")
        _, p = series(t, p_mw, "active power")
        event = _power_onset(t, p, event, window_samples(t, lim.fit_window_s))
        w = _windows(t, f, p, event, lim)
        if isinstance(w, str):
            return EventRejected(event.t0, method, w, "too few samples around the event")
        problem = self._screen(w, lim)
        if problem is not None:
            return EventRejected(event.t0, method, *problem)
        if method == "swing":
            h, se, r2, n = self._swing(w)
        else:
            h, se, r2, n = self._least_squares(t, f, p, event.t0, w, lim)
        if r2 < lim.min_r2:
            return EventRejected(event.t0, method, REJECT_POOR_FIT, f"fit r2 `{r2:.3f}` too low")
        if not lim.h_min_s <= h <= lim.h_max_s:
            return EventRejected(
                event.t0, method, REJECT_OUT_OF_RANGE, f"h `{h:.3g}` s implausible"
            )
        return InertiaEstimate(event.t0, method, h, se, w.rocof, w.delta_p, r2, n)

    def _screen(self, w: _Windows, lim: InertiaLimits) -> tuple[str, str] | None:
        if abs(w.delta_p) / self.s_base_mw < lim.min_imbalance_pu:
            return REJECT_IMBALANCE_TOO_SMALL, f"imbalance `{w.delta_p:.4g}` MW too small"
        if abs(w.rocof) < lim.rocof_threshold_hz_s:
            return REJECT_ROCOF_BELOW_THRESHOLD, f"rocof `{w.rocof:.4g}` Hz/s below threshold"
        if w.rocof * w.delta_p <= 0:
            return REJECT_SIGN_MISMATCH, "rocof and imbalance have opposite signs"
        return None

    def _swing(self, w: _Windows) -> tuple[float, float, float, int]:
        h = w.delta_p * self.f0_hz / (2 * self.s_base_mw * w.rocof)
        rel = math.hypot(w.delta_p_se / w.delta_p, w.rocof_se / w.rocof)
        return h, abs(h) * rel, 1.0 - (w.rocof_se / w.rocof) ** 2, w.fit.size

    def _least_squares(
        self, t: npt.NDArray[np.float64], f: npt.NDArray[np.float64],
        p: npt.NDArray[np.float64], t0: float, w: _Windows, lim: InertiaLimits,
    ) -> tuple[float, float, float, int]:  # fmt: skip
        idx = w.ls
        tt, ff = t[idx], f[idx]
        dp = (p[idx] - p[w.pre].mean()) / self.s_base_mw
        energy = self.f0_hz / 2 * _cumtrapz(tt, dp)
        columns = [np.ones(idx.size), energy]
        if lim.with_damping:
            columns.append(-0.5 * _cumtrapz(tt, ff - f[w.pre].mean()))
        result = fit(np.column_stack(columns), ff - ff[0])
        theta, theta_se = float(result.coef[1]), float(result.stderr[1])
        if theta <= 0:
            return math.inf, math.inf, result.r2, idx.size
        return 1 / theta, theta_se / theta**2, result.r2, idx.size


def _cumtrapz(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cumulative trapezoidal integral of y over t, starting at 0."""
    steps = np.diff(t) * (y[1:] + y[:-1]) / 2
    return np.concatenate([[0.0], np.cumsum(steps)])
