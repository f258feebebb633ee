"""Least-squares building blocks: sliding-window slopes, linear fits with standard errors,
and regression under ambient drift (white noise plus a random walk, `drift_fit`).

Used for RoCoF (slope of frequency), RoCoP (slope of power) and the inertia fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.linalg import cholesky_banded, solve_banded

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


# --- regression under ambient drift: white noise plus a random walk ---------------------


@dataclass(frozen=True)
class DriftFit:
    """A regression of first differences d = X·β + u under the local-level noise model.

    The series in levels is its regression part plus white measurement noise
    (variance r) plus a random walk (increments of variance q = ratio·r); in first
    differences the noise has the tridiagonal covariance r·(ratio·I + T), T = tridiag
    (-1, 2, -1). `ratio` is chosen by maximum likelihood (profiled over r), `factor`
    is the banded Cholesky factor that whitens data under it.
    """

    coef: np.ndarray
    ratio: float
    r: float
    factor: np.ndarray
    residual: np.ndarray
    cautious_ratio: float
    cautious_r: float


RATIOS = np.concatenate([[0.0], np.logspace(-4, 4, 33)])
"""Drift-to-noise variance ratios tried by `drift_fit` (0: white noise only)."""


def drift_factor(ratio: float, m: int) -> np.ndarray:
    """Banded lower Cholesky factor of ratio·I + tridiag(-1, 2, -1), size m."""
    band = np.zeros((2, m))
    band[0] = ratio + 2.0
    band[1, :-1] = -1.0
    factor: np.ndarray = cholesky_banded(band, lower=True)
    return factor


def whitened_coef(
    factor: np.ndarray, x: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """GLS coefficients of d on x under the factor's covariance, and whitened residuals."""
    w = solve_banded((1, 0), factor, np.column_stack([x, d]))
    xw, dw = w[:, :-1], w[:, -1]
    coef = np.linalg.lstsq(xw, dw, rcond=None)[0]
    return coef, dw - xw @ coef


def drift_fit(x: np.ndarray, d: np.ndarray) -> DriftFit:
    """Maximum-likelihood `DriftFit` of the differences `d` on the columns of `x`.

    `cautious_ratio` (with its `cautious_r`) is the largest drift ratio the data do not
    reject: the upper end of the profile-likelihood 95 % interval of the ratio
    (log-likelihood within 1.92 of the maximum). Few samples pin the ratio down
    poorly, and more drift means a wider spread of the coefficients.
    """
    m = d.size
    profile: list[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]] = []
    for ratio in RATIOS:
        factor = drift_factor(float(ratio), m)
        coef, residual = whitened_coef(factor, x, d)
        rss = max(float(residual @ residual), 1e-300)
        loglik = -0.5 * m * math.log(rss / m) - float(np.log(factor[0]).sum())
        profile.append((loglik, float(ratio), factor, coef, residual))
    best = max(profile, key=lambda entry: entry[0])
    plausible = [entry for entry in profile if entry[0] >= best[0] - 1.92]
    cautious = max(plausible, key=lambda entry: entry[1])
    _, ratio, factor, coef, residual = best
    return DriftFit(
        coef, ratio, float(residual @ residual) / m, factor, residual,
        cautious[1], float(cautious[4] @ cautious[4]) / m,
    )  # fmt: skip


def newey_west(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """`fit` with heteroscedasticity- and autocorrelation-consistent standard errors.

    Newey-West (1987) sandwich with a Bartlett kernel and the usual bandwidth
    L = ceil(4·(n/100)^(2/9)); never below the ordinary standard errors.
    """
    plain = fit(x, y)
    n = x.shape[0]
    resid = y - x @ plain.coef
    bread = np.linalg.pinv(x.T @ x)
    lags = min(n - 1, math.ceil(4 * (n / 100) ** (2 / 9)))
    u = x * resid[:, None]
    meat = u.T @ u
    for lag in range(1, lags + 1):
        weight = 1.0 - lag / (lags + 1)
        gamma = u[lag:].T @ u[:-lag]
        meat += weight * (gamma + gamma.T)
    cov = bread @ meat @ bread * n / max(n - x.shape[1], 1)
    robust = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return LinearFit(plain.coef, np.maximum(robust, plain.stderr), plain.r2, n)
