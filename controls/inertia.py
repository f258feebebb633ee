"""Inertia estimation from frequency and active-power imbalance records (swing equation).

Pipeline (docs/domain.md §3, docs/controls.md "Inertia estimation"):

1. **Record check.** Time in s, strictly increasing, at least 1 frame/s; frequency in
   Hz near `f0_hz`; enough samples for the windows. Anything else is refused with an
   error that says what to fix (a record in pu or in ms would otherwise find nothing).
2. **Windows from the sample rate.** Every window spans at least `min_samples`
   samples: at 10 frames/s the 0.2 s detection window becomes 0.4 s.
3. **Candidates.** The windowed |RoCoF| reaches `rocof_threshold_hz_s`; the onset is
   located by a flat-then-ramp fit and moved to the step in the power record.
4. **Every candidate is judged.** A candidate yields an `InertiaEstimate` or an
   `EventRejected` with a reason. Only an accepted estimate opens a hold-off
   (`holdoff_s`) in which further candidates are part of its event; a rejected
   candidate (noise, a swing without a power step) hides nothing. A candidate in an
   ongoing excursion is rejected as `not_steady`.
5. **Estimate** of H on the system base, from the swing equation
   (2H/f0)·df/dt = ΔP/S_base - D·Δf/f0:

   * `least_squares` (default): the integral form over `ls_window_s` (8 s, ended
     early by the record's end or the next event) after the onset,
     f(t) - f(t0) = θ·(f0/2)·∫ΔP/S_base dτ - (θ·D)·(1/2)·∫(f - f_pre) dτ, θ = 1/H,
     fitted in first differences together with `baseline_window_s` of pre-event
     data, a linear frequency trend (the pre-event trend is removed by the fit, not
     extrapolated blindly) and the ambient noise modelled as white measurement noise
     plus a random-walk drift (local-level model), whose variance ratio is found by
     maximum likelihood (generalised least squares, `controls._regression.drift_fit`).
     The window is as long as the model holds: GLS under the fitted noise model uses
     every sample efficiently (its spread is within a few per cent of the Cramér-Rao
     bound, docs/controls.md), and each second after the onset still carries
     information on θ through the frequency's settled deviation;
   * `swing`: the swing equation at the onset, H = ΔP0·f0 / (2·S_base·RoCoF0), over
     `fit_window_s` (0.5 s) only. RoCoF0 is measured against the imbalance-weighted
     time ∫ΔP dτ/ΔP0 (so ΔP0 cancels): the same integral form as above over the short
     window. Extrapolating RoCoF0 (a quadratic of f) and ΔP0 (a line of p) to the
     onset separately from a window in which the governor and damping already act
     biased each by 2-4 % (at H = 1.5 s), errors that cancelled only by chance (+0.3 %
     at 50 frames/s, +1.7 % at 10); the governor's response is in the measured power
     and the damping has its own term, so nothing is extrapolated. It is kept for
     comparison: half a second of data gives errors of several per cent under noise.

6. **Uncertainty.** `stderr_s` and the `confidence` interval [`h_low_s`, `h_high_s`]
   from a parametric bootstrap under the fitted noise model (`bootstrap_samples`
   replicates): the fitted frequency path plus simulated white noise and random walk
   with the estimated variances, the measured power plus white noise with the
   pre-event power variance; each replicate is refitted (pre-event baselines
   included), and θ's spread gives the standard error. The interval is θ ± z·se
   mapped through H = 1/θ (so it is asymmetric). This accounts for autocorrelated
   (drifting) noise, for noise in the power regressor and for the uncertainty of the
   pre-event baselines, which ordinary least-squares errors miss (they covered the
   true H in about half of the drifting cases). `rocof_hz_s` and `delta_p_mw` are the
   onset's RoCoF (quadratic fit) and power step (against the pre-event trend) that
   screen the event.

7. **Plausibility**: `imbalance_too_small`, `rocof_below_threshold`, `sign_mismatch`,
   `poor_fit`, `out_of_range`, `too_few_samples`, `not_steady` (the `REJECT_*` codes).

Powers in MW (generation minus load: negative for a lost generator), frequency in
Hz, H in s, times in s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from controls._common import LimitsSlot, choice, setting
from controls._regression import (
    DriftFit,
    drift_fit,
    fit,
    hinge_onset,
    newey_west,
    series,
    sliding_slopes,
    whitened_coef,
    window_samples,
)
from controls.errors import InvalidLimitsError, InvalidMeasurementError

REJECT_TOO_FEW_SAMPLES = "too_few_samples"
REJECT_IMBALANCE_TOO_SMALL = "imbalance_too_small"
REJECT_ROCOF_BELOW_THRESHOLD = "rocof_below_threshold"
REJECT_SIGN_MISMATCH = "sign_mismatch"
REJECT_POOR_FIT = "poor_fit"
REJECT_OUT_OF_RANGE = "out_of_range"
REJECT_NOT_STEADY = "not_steady"

Method = Literal["swing", "least_squares"]
METHODS: tuple[str, ...] = ("least_squares", "swing")

MAX_FRAME_INTERVAL_S = 1.0
"""Records sampled more sparsely than 1 frame/s are refused (a time axis in ms, most likely)."""

_SEED = 20240611  # the bootstrap's generator: the same record always gets the same interval


Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class InertiaLimits:
    """Windows, thresholds and plausibility bounds of the estimator (see the module docstring).

    Windows shorter than `min_samples` samples at the record's rate are widened to it.
    """

    rocof_threshold_hz_s: float = 0.1
    detection_window_s: float = 0.2
    fit_window_s: float = 0.5
    ls_window_s: float = 8.0
    pre_window_s: float = 0.5
    baseline_window_s: float = 1.5
    holdoff_s: float = 2.0
    min_imbalance_pu: float = 0.005
    min_samples: int = 5
    min_r2: float = 0.9
    h_min_s: float = 0.5
    h_max_s: float = 15.0
    with_damping: bool = True
    confidence: float = 0.95
    bootstrap_samples: int = 100

    def __post_init__(self) -> None:
        setting(self.rocof_threshold_hz_s, "rocof_threshold_hz_s", "Hz/s", above=0.0)
        for name in ("detection_window_s", "fit_window_s", "ls_window_s", "pre_window_s",
                     "baseline_window_s"):  # fmt: skip
            setting(getattr(self, name), name, "s", above=0.0)
        setting(self.holdoff_s, "holdoff_s", "s", minimum=0.0)
        setting(self.min_imbalance_pu, "min_imbalance_pu", "pu", minimum=0.0)
        setting(self.min_r2, "min_r2", "", minimum=0.0, maximum=1.0)
        setting(self.h_min_s, "h_min_s", "s", above=0.0)
        setting(self.h_max_s, "h_max_s", "s", above=self.h_min_s)
        setting(self.confidence, "confidence", "", above=0.0, below=1.0)
        _whole(self.min_samples, "min_samples", 3)
        _whole(self.bootstrap_samples, "bootstrap_samples", 20)
        if not isinstance(self.with_damping, bool):
            raise InvalidLimitsError(
                f"`with_damping` must be true or false, got `{self.with_damping!r}`"
            )


def _whole(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidLimitsError(f"`{name}` must be a whole number >= {least}, got `{value!r}`")


@dataclass(frozen=True)
class RocofEvent:
    """A candidate event: onset time and index, the detecting RoCoF, and whether the
    frequency was steady before it (a candidate in an ongoing excursion is not)."""

    t0: float
    index: int
    rocof_hz_s: float
    steady: bool = True


@dataclass(frozen=True)
class InertiaEstimate:
    """H (s) with its standard error and `confidence` interval [h_low_s, h_high_s]."""

    t0: float
    method: Method
    h_s: float
    stderr_s: float
    rocof_hz_s: float
    delta_p_mw: float
    r2: float
    samples: int
    h_low_s: float = math.nan
    h_high_s: float = math.nan


@dataclass(frozen=True)
class EventRejected:
    t0: float
    method: Method
    reason: str
    message: str


def rocof(t: np.ndarray, f: np.ndarray, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """RoCoF (Hz/s) over sliding windows of `window_s`, stamped at each window's end."""
    setting(window_s, "window_s", "s", above=0.0)
    t, f = series(t, f, "frequency")
    slopes = sliding_slopes(t, f, window_samples(t, window_s))
    return slopes.t_end, slopes.slope


def detect_events(
    t: np.ndarray,
    f: np.ndarray,
    *,
    threshold_hz_s: float,
    window_s: float,
    holdoff_s: float = 0.0,
    quiet_s: float = 0.5,
    min_samples: int = 5,
) -> list[RocofEvent]:
    """Candidate events: where the windowed |RoCoF| reaches the threshold.

    One candidate per excursion over the threshold (its first window); the window
    spans at least `min_samples` samples. A candidate whose frequency was not
    quasi-steady over the `quiet_s` before its onset (RoCoF above a quarter of the
    threshold) is returned with `steady=False`. `holdoff_s` drops candidates closer
    than that to the previous one; `InertiaEstimator.run` uses 0 and holds off only
    after accepted estimates, so that a rejected candidate never hides the next.
    """
    setting(threshold_hz_s, "threshold_hz_s", "Hz/s", above=0.0)
    setting(window_s, "window_s", "s", above=0.0)
    setting(holdoff_s, "holdoff_s", "s", minimum=0.0)
    setting(quiet_s, "quiet_s", "s", above=0.0)
    t, f = series(t, f, "frequency")
    n = max(window_samples(t, window_s), min_samples)
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
        steady = _quiet_before(t, f, onset, quiet_s, threshold_hz_s / 4)
        events.append(RocofEvent(float(t[onset]), int(onset), float(slopes.slope[k]), steady))
        blocked_until = t[onset] + holdoff_s
    return events


def _quiet_before(
    t: np.ndarray, f: np.ndarray, onset: int, span_s: float, limit: float, least: int = 3
) -> bool:
    """The RoCoF over `span_s` before the onset is not significantly above `limit`
    (True when fewer than `least` samples precede it: the estimate then says so)."""
    before = np.flatnonzero((t >= t[onset] - span_s) & (t < t[onset]))
    if before.size < max(least, 3):
        return True
    slope = fit(np.column_stack([np.ones(before.size), t[before] - t[onset]]), f[before])
    return abs(float(slope.coef[1])) - 2 * float(slope.stderr[1]) < limit


def _rocof_after(t: Array, f: Array, onset: int, grid: _Grid) -> float:
    """The RoCoF over the detection window from the onset (0 when too few samples)."""
    after = np.flatnonzero((t >= t[onset]) & (t <= t[onset] + grid.detect_s + grid.dt / 100))
    if after.size < 3:
        return 0.0
    return float(fit(np.column_stack([np.ones(after.size), t[after] - t[onset]]), f[after]).coef[1])


def _power_onset(
    t: np.ndarray, p: np.ndarray, event: RocofEvent, n: int, least_mw: float
) -> tuple[RocofEvent, bool]:
    """Move the onset to the power step near it (the RoCoF starts at the step).

    The frequency onset can be off by a sample, and a noise candidate can come shortly
    before the real event. The step is the split, from n samples before to 2n after
    the candidate, with the largest jump between the m samples on either side beyond
    what their common slope explains (so a governor's ramp is no step); a largest
    jump below `least_mw` is no step, and the onset stays. Returns the event and
    whether a step was found.
    """
    m = max(3, min(n // 2, event.index // 2))  # shorter sides near the record's start
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (t, p, t * t, t * p)]

    def strongest(lo: int, hi: int) -> tuple[int, float]:
        k = np.arange(max(m, lo), min(p.size - m, hi) + 1)
        if k.size == 0:
            return -1, 0.0
        jump = np.abs(_ramp_free_jump(sums, k, m))
        return int(k[np.argmax(jump)]), float(jump.max())

    best, size = strongest(event.index - n, event.index + 2 * n)
    for _ in range(3):  # a split at the range's edge only half sees a step beyond it
        moved, moved_size = strongest(best - m, best + m)
        if moved == best or moved < 0:
            break
        best, size = moved, moved_size
    if best < 0 or size < least_mw:
        return event, False
    return RocofEvent(float(t[best]), best, event.rocof_hz_s, event.steady), True


def _ramp_free_jump(sums: list[np.ndarray], k: np.ndarray, m: int) -> np.ndarray:
    """Mean of p over [k, k+m) minus over [k-m, k), less the pooled slope times their
    time separation: zero for a straight ramp, the step height for a step."""
    st, sp, stt, stp = sums

    def side(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        n_ = b - a
        t_sum, p_sum = st[b] - st[a], sp[b] - sp[a]
        sxx = (stt[b] - stt[a]) - t_sum**2 / n_
        sxy = (stp[b] - stp[a]) - t_sum * p_sum / n_
        return t_sum / n_, p_sum / n_, sxx, sxy

    t_left, p_left, sxx_left, sxy_left = side(k - m, k)
    t_right, p_right, sxx_right, sxy_right = side(k, k + m)
    slope = (sxy_left + sxy_right) / np.maximum(sxx_left + sxx_right, 1e-300)
    jump: np.ndarray = (p_right - p_left) - slope * (t_right - t_left)
    return jump


@dataclass(frozen=True)
class _Grid:
    """The record's sampling step and the windows in samples, widened to `min_samples`."""

    dt: float
    detect_s: float
    fit_s: float

    @classmethod
    def of(cls, t: Array, lim: InertiaLimits) -> _Grid:
        dt = float(np.median(np.diff(t)))
        least = (lim.min_samples - 1) * dt
        return cls(dt, max(lim.detection_window_s, least), max(lim.fit_window_s, least))


@dataclass(frozen=True)
class _Event:
    """The samples around one event that both estimates use."""

    t0: float
    pre: np.ndarray  # baseline window before the onset
    post: np.ndarray  # least-squares window from the onset
    fit: np.ndarray  # swing window from the onset
    delta_p: float  # the power step against the pre-event trend, at the onset
    rocof: float  # the RoCoF at the onset, slope of a quadratic over `fit`
    rocof_se: float


def base_power(s_base_mw: Any) -> float:
    """The system base power `s_base_mw`, a finite number of MW above 0 (H is per unit of
    it); the estimator's rule, public for the settings that hold one before an estimator."""
    return setting(s_base_mw, "s_base_mw", "MW", above=0.0)


def nominal_frequency(f0_hz: Any) -> float:
    """The nominal frequency `f0_hz`, a finite number of Hz above 0; the estimator's rule,
    public for the settings that hold one before an estimator."""
    return setting(f0_hz, "f0_hz", "Hz", above=0.0)


class InertiaEstimator(LimitsSlot[InertiaLimits]):
    """Finds RoCoF events in a record and estimates H for each (or says why not)."""

    def __init__(
        self, s_base_mw: float, f0_hz: float = 50.0, limits: InertiaLimits = InertiaLimits()
    ) -> None:
        self.s_base_mw = base_power(s_base_mw)
        self.f0_hz = nominal_frequency(f0_hz)
        super().__init__(limits)

    def _check(self, limits: InertiaLimits) -> None:
        if not isinstance(limits, InertiaLimits):
            raise InvalidLimitsError("inertia limits must be an `InertiaLimits`")

    def run(
        self,
        t: np.ndarray,
        f: np.ndarray,
        p_mw: np.ndarray,
        *,
        method: Method = "least_squares",
        limits: InertiaLimits | None = None,
    ) -> list[InertiaEstimate | EventRejected]:
        """One result per candidate event, in time order (see the module docstring)."""
        lim = self._current(limits)
        method = self._method(method)
        t, f, p = self._record(t, f, p_mw, lim)
        grid = _Grid.of(t, lim)
        candidates = detect_events(
            t, f, threshold_hz_s=lim.rocof_threshold_hz_s, window_s=grid.detect_s,
            quiet_s=lim.pre_window_s, min_samples=lim.min_samples,
        )  # fmt: skip
        results: list[InertiaEstimate | EventRejected] = []
        accepted: list[InertiaEstimate] = []
        until = aftermath = -math.inf
        for found in candidates:
            candidate, stepped = self._at_power_step(t, f, p, found, lim, grid)
            if candidate.t0 < until:
                continue  # part of the event accepted just before
            if candidate.t0 < aftermath and not stepped:
                continue  # that event's own swings: a new event needs a new power step
            if not candidate.steady:
                results.append(EventRejected(candidate.t0, method, REJECT_NOT_STEADY,
                               "the frequency was not steady before this rocof rise"))  # fmt: skip
                continue
            result = self._estimate(t, f, p, candidate, method, lim, grid)
            if any(abs(result.t0 - a.t0) < grid.dt / 2 for a in accepted):
                continue  # another candidate of the same event, already estimated
            if isinstance(result, InertiaEstimate):
                accepted.append(result)
                until = result.t0 + lim.holdoff_s
                aftermath = result.t0 + max(lim.holdoff_s, lim.ls_window_s)
                results = [r for r in results if abs(r.t0 - result.t0) >= grid.dt / 2]
            results.append(result)
        return self._separate(t, f, p, results, method, lim, grid)

    def _at_power_step(
        self, t: Array, f: Array, p: Array, event: RocofEvent, lim: InertiaLimits, grid: _Grid
    ) -> tuple[RocofEvent, bool]:
        """The candidate moved to its power step (and whether it has one), its
        steadiness judged there."""
        least = lim.min_imbalance_pu * self.s_base_mw / 2
        moved, stepped = _power_onset(t, p, event, round(grid.fit_s / grid.dt), least)
        span = max(lim.pre_window_s, (lim.min_samples - 1) * grid.dt)
        limit = max(lim.rocof_threshold_hz_s, abs(_rocof_after(t, f, moved.index, grid))) / 4
        steady = _quiet_before(t, f, moved.index, span, limit, lim.min_samples)
        return RocofEvent(moved.t0, moved.index, moved.rocof_hz_s, steady), stepped

    def _separate(
        self, t: Array, f: Array, p: Array, results: list[InertiaEstimate | EventRejected],
        method: Method, lim: InertiaLimits, grid: _Grid,
    ) -> list[InertiaEstimate | EventRejected]:  # fmt: skip
        """Refit an estimate whose least-squares window reaches into the next event."""
        onsets = sorted(r.t0 for r in results if isinstance(r, InertiaEstimate))
        out: list[InertiaEstimate | EventRejected] = []
        for result in results:
            later = [o for o in onsets if result.t0 < o < result.t0 + lim.ls_window_s]
            if isinstance(result, InertiaEstimate) and later and method == "least_squares":
                index = int(np.searchsorted(t, result.t0 - 1e-9))
                event = RocofEvent(result.t0, index, result.rocof_hz_s)
                result = self._estimate(t, f, p, event, method, lim, grid, end=later[0])
            out.append(result)
        return out

    def estimate(
        self, t: np.ndarray, f: np.ndarray, p_mw: np.ndarray, event: RocofEvent, *,
        method: Method = "least_squares", limits: InertiaLimits | None = None,
    ) -> InertiaEstimate | EventRejected:  # fmt: skip
        """H for one event, by the swing formula or the least-squares fit."""
        lim = self._current(limits)
        method = self._method(method)
        t, f, p = self._record(t, f, p_mw, lim)
        grid = _Grid.of(t, lim)
        moved, _ = self._at_power_step(t, f, p, event, lim, grid)
        return self._estimate(t, f, p, moved, method, lim, grid)

    # --- checks ---------------------------------------------------------------------

    @staticmethod
    def _method(method: Any) -> Method:
        chosen = choice(method, "method", METHODS)
        return "swing" if chosen == "swing" else "least_squares"

    def _record(
        self, t: np.ndarray, f: np.ndarray, p_mw: np.ndarray, lim: InertiaLimits
    ) -> tuple[Array, Array, Array]:
        t, f = series(t, f, "frequency")
        _, p = series(t, p_mw, "active power")
        least = 2 * lim.min_samples
        if t.size < least:
            raise InvalidMeasurementError(
                f"a record of `{t.size}` samples is too short: inertia estimation needs at "
                f"least `{least}` (twice `min_samples`)"
            )
        step = float(np.median(np.diff(t)))
        if step > MAX_FRAME_INTERVAL_S:
            raise InvalidMeasurementError(
                f"samples are `{step:g}` apart: time must be in seconds and the record at "
                f"least 1 frame/s (a time in milliseconds reads as 1000 times too slow)"
            )
        centre = float(np.median(f))
        if not 0.5 * self.f0_hz <= centre <= 1.5 * self.f0_hz:
            raise InvalidMeasurementError(
                f"frequency around `{centre:g}` is not in Hz near the nominal `{self.f0_hz:g}` "
                "Hz (a frequency in pu or a deviation must be converted to Hz first)"
            )
        return t, f, p

    # --- one event --------------------------------------------------------------------

    def _estimate(
        self, t: Array, f: Array, p: Array, event: RocofEvent, method: Method,
        lim: InertiaLimits, grid: _Grid, end: float | None = None,
    ) -> InertiaEstimate | EventRejected:  # fmt: skip
        prepared = self._prepare(t, f, p, event, lim, grid, end)
        if isinstance(prepared, str):
            return EventRejected(event.t0, method, REJECT_TOO_FEW_SAMPLES, prepared)
        problem = self._screen(prepared, lim)
        if problem is not None:
            return EventRejected(event.t0, method, *problem)
        window = prepared.fit if method == "swing" else prepared.post
        h, se, low, high, r2, n = self._least_squares(t, f, p, prepared, window, lim)
        if r2 < lim.min_r2:
            return EventRejected(event.t0, method, REJECT_POOR_FIT, f"fit r2 `{r2:.3f}` too low")
        if not lim.h_min_s <= h <= lim.h_max_s:
            return EventRejected(
                event.t0, method, REJECT_OUT_OF_RANGE,
                f"h `{h:.3g}` s is outside [{lim.h_min_s:g}, {lim.h_max_s:g}] s",
            )  # fmt: skip
        return InertiaEstimate(
            event.t0, method, h, se, prepared.rocof, prepared.delta_p, r2, n, low, high
        )

    def _prepare(
        self, t: Array, f: Array, p: Array, event: RocofEvent, lim: InertiaLimits,
        grid: _Grid, end: float | None,
    ) -> _Event | str:  # fmt: skip
        t0, eps = event.t0, grid.dt / 100
        stop = t0 + lim.ls_window_s if end is None else min(end - eps, t0 + lim.ls_window_s)
        pre = np.flatnonzero((t >= t0 - lim.baseline_window_s - eps) & (t < t0 - eps))
        post = np.flatnonzero((t >= t0 - eps) & (t <= stop + eps))
        first = np.flatnonzero((t >= t0 - eps) & (t <= t0 + grid.fit_s + eps))
        need = lim.min_samples
        if pre.size < need or post.size < need or first.size < max(need, 4):
            return (
                f"too few samples around the event: `{pre.size}` before and `{post.size}` "
                f"after it, `{need}` needed on each side"
            )
        tau = t[first] - t0
        curve = newey_west(np.column_stack([np.ones(first.size), tau, tau**2]), f[first])
        step = fit(np.column_stack([np.ones(first.size - 1), tau[1:]]), p[first[1:]])
        # the step against the pre-event trend at the onset: a ramp already under way
        # (a governor after an earlier event) is no imbalance of this event
        quiet = pre[t[pre] >= t0 - lim.pre_window_s - eps]
        quiet = quiet if quiet.size >= 3 else pre
        trend = fit(np.column_stack([np.ones(quiet.size), t[quiet] - t0]), p[quiet])
        delta_p = float(step.coef[0] - trend.coef[0])
        return _Event(t0, pre, post, first, delta_p, float(curve.coef[1]), float(curve.stderr[1]))

    def _screen(self, e: _Event, lim: InertiaLimits) -> tuple[str, str] | None:
        if abs(e.delta_p) / self.s_base_mw < lim.min_imbalance_pu:
            return REJECT_IMBALANCE_TOO_SMALL, f"imbalance `{e.delta_p:.4g}` MW too small"
        if abs(e.rocof) + 1.96 * e.rocof_se < lim.rocof_threshold_hz_s:  # clearly below it
            return REJECT_ROCOF_BELOW_THRESHOLD, f"rocof `{e.rocof:.4g}` Hz/s below threshold"
        if e.rocof * e.delta_p <= 0:
            return REJECT_SIGN_MISMATCH, "rocof and imbalance have opposite signs"
        return None

    def _least_squares(
        self, t: Array, f: Array, p: Array, e: _Event, post: np.ndarray, lim: InertiaLimits
    ) -> tuple[float, float, float, float, float, int]:
        """H over the pre-event baseline and the `post` samples (indices into the record)."""
        window = np.concatenate([e.pre, post])
        tt, ff, pp = t[window], f[window], p[window]
        is_pre = np.arange(window.size) < e.pre.size
        design = _IntegralDesign(self.f0_hz, self.s_base_mw, tt, is_pre, lim.with_damping)
        x, d = design.columns(ff, pp), np.diff(ff)
        model = drift_fit(x, d)
        theta = float(model.coef[0])
        if theta <= 0:
            return math.inf, math.inf, math.inf, math.inf, 0.0, int(post.size)
        se = float(_bootstrap(design, model, x, ff, pp, lim.bootstrap_samples).std(ddof=1))
        z = float(norm.ppf(0.5 + lim.confidence / 2))
        high = 1 / (theta - z * se) if theta > z * se else math.inf
        fitted = ff[0] + np.concatenate([[0.0], np.cumsum(x @ model.coef)])
        after = ~is_pre
        total = float(((ff[after] - ff[after].mean()) ** 2).sum())
        r2 = 1.0 - float(((ff[after] - fitted[after]) ** 2).sum()) / total if total > 0 else 0.0
        return 1 / theta, se / theta**2, 1 / (theta + z * se), high, r2, int(post.size)


class _IntegralDesign:
    """The regressors of the integral swing equation in first differences.

    Columns: (f0/2)·Δ∫(p - p_pre)/S_base, then -(1/2)·Δ∫(f - f_pre) (damping, if used),
    then 1 (a linear frequency trend); zero before the onset except the trend. The
    pre-event means are taken from the data given, so a bootstrap replicate has its
    own baselines.
    """

    def __init__(self, f0: float, s_base: float, t: Array, is_pre: np.ndarray, damping: bool):
        self.f0, self.s_base, self.t, self.is_pre, self.damping = f0, s_base, t, is_pre, damping

    def columns(self, f: Array, p: Array) -> Array:
        post = ~self.is_pre
        energy = np.zeros(self.t.size)
        energy[post] = self.f0 / 2 * _cumtrapz(self.t[post], (p[post] - p[self.is_pre].mean()))
        columns = [np.diff(energy) / self.s_base]
        if self.damping:
            damped = np.zeros(self.t.size)
            damped[post] = -0.5 * _cumtrapz(self.t[post], f[post] - f[self.is_pre].mean())
            columns.append(np.diff(damped))
        columns.append(np.ones(self.t.size - 1))
        return np.column_stack(columns)


def _bootstrap(
    design: _IntegralDesign, model: DriftFit, x: Array, f: Array, p: Array, replicates: int
) -> Array:
    """θ of each replicate of a parametric bootstrap under the fitted noise model."""
    rng = np.random.default_rng(_SEED)
    n = f.size
    path = f[0] + np.concatenate([[0.0], np.cumsum(x @ model.coef)])
    white, walk = math.sqrt(model.cautious_r), math.sqrt(model.cautious_r * model.cautious_ratio)
    p_noise = float(p[design.is_pre].std(ddof=1)) if design.is_pre.sum() > 1 else 0.0
    thetas = np.empty(replicates)
    for k in range(replicates):
        f_star = path + rng.normal(0.0, white, n) + np.cumsum(rng.normal(0.0, walk, n))
        p_star = p + rng.normal(0.0, p_noise, n)
        coef, _ = whitened_coef(model.factor, design.columns(f_star, p_star), np.diff(f_star))
        thetas[k] = coef[0]
    return thetas


def _cumtrapz(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cumulative trapezoidal integral of y over t, starting at 0."""
    steps = np.diff(t) * (y[1:] + y[:-1]) / 2
    return np.concatenate([[0.0], np.cumsum(steps)])
