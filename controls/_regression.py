"""Least-squares building blocks: sliding-window slopes and linear fits with standard errors.

Used for RoCoF (slope of frequency), RoCoP (slope of power) and the inertia fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from controls.errors import InvalidMeasurementError


@dataclass(frozen=True)
class Slopes:
    """Slopes of `y` over sliding windows; arrays indexed by window start sample."""

    t_start: np.ndarray
    t_end: np.ndarray
    slope: np.ndarray
    stderr: np.ndarray


@dataclass(frozen=True)
class LinearFit:
    coef: np.ndarray
    stderr: np.ndarray
    r2: float
    n: int


def series(t: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a sampled series: same length, finite, strictly increasing time."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.ndim != 1 or t.shape != y.shape:
        raise InvalidMeasurementError(f"{what}: time and values must be 1-d of equal length")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise InvalidMeasurementError(f"{what}: samples must be finite")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise InvalidMeasurementError(f"{what}: time must be strictly increasing")
    return t, y


def window_samples(t: np.ndarray, window_s: float) -> int:
    """Number of samples spanning `window_s` at the series' median sampling step."""
    if t.size < 2:
        return t.size
    dt = float(np.median(np.diff(t)))
    return max(2, round(window_s / dt) + 1)


def sliding_slopes(t: np.ndarray, y: np.ndarray, n: int) -> Slopes:
    """Ordinary least-squares slope of `y` on `t` over every window of `n` samples."""
    if n < 3 or t.size < n:
        empty = np.empty(0)
        return Slopes(empty, empty, empty, empty)
    tw = sliding_window_view(t, n)
    yw = sliding_window_view(y, n)
    tc = tw - tw.mean(axis=1, keepdims=True)
    yc = yw - yw.mean(axis=1, keepdims=True)
    sxx = np.einsum("ij,ij->i", tc, tc)
    slope = np.einsum("ij,ij->i", tc, yc) / sxx
    resid = yc - slope[:, None] * tc
    s2 = np.einsum("ij,ij->i", resid, resid) / (n - 2)
    return Slopes(tw[:, 0], tw[:, -1], slope, np.sqrt(s2 / sxx))


def fit(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """Ordinary least squares `y ~ x @ coef` with coefficient standard errors and R²."""
    n, k = x.shape
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    dof = max(n - k, 1)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(x.T @ x)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else 0.0
    return LinearFit(coef, np.sqrt(np.clip(np.diag(cov), 0.0, None)), r2, n)


def hinge_onset(t: np.ndarray, y: np.ndarray, candidates: np.ndarray) -> int:
    """Index (into `t`) of the best break point of a flat-then-linear fit of `y`.

    Used to place an event's start: the first window whose slope crosses the
    threshold usually begins before the event, so the fit locates it.
    """
    best, best_sse = int(candidates[0]), np.inf
    ones = np.ones_like(t)
    for k in candidates:
        ramp = np.clip(t - t[k], 0.0, None)
        x = np.column_stack([ones, ramp])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        sse = float(resid @ resid)
        if sse < best_sse:
            best, best_sse = int(k), sse
    return best
