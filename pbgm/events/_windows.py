"""A signal's points over a sliding time window, kept up to date as samples arrive.

The event service derives RoCoF (the least-squares slope of frequency) and ΔP (the power
step) for every measurement. Recomputing them over the window costs a pass over its
samples per message; `RunningWindow` instead keeps the window's points and the sums of
the least-squares fit through them, adding the newest point and removing those that
left the window: O(1) per sample for the slope.

Extreme inputs: a codec lets through any finite number, and sums of numbers near
1e308 overflow. A sum that is not finite is recomputed from the points still in the
window (so the window heals once such points leave it), and a slope or step that is
not finite is no value (None): nothing non-finite comes out.

Precision: the sums are taken of `x = t - t0` and `v = y - y0` about a reference point
(the oldest point in the window), re-chosen with the sums recomputed from the points
whenever the newest `x` passes `REBASE_WINDOWS` window lengths. So `x` stays within a
few windows (no cancellation in `n·Σx² - (Σx)²` as time grows), and the rounding of
additions and removals never accumulates over more than that span.
"""

from __future__ import annotations

import math
from collections import deque

REBASE_WINDOWS = 4
EDGE_S = 1e-9  # a point exactly `window_s` before the newest is inside


class RunningWindow:
    """The `(t, y)` points at most `window_s` older than the newest, oldest first,
    with running least-squares sums (see the module docstring)."""

    __slots__ = (
        "_n", "_rebase_after", "_sx", "_sxx", "_sxy", "_sy", "_t0", "_y0", "points", "window_s",
    )  # fmt: skip

    def __init__(self, window_s: float) -> None:
        self.points: deque[tuple[float, float]] = deque()
        self._rebase_after = REBASE_WINDOWS * max(window_s, 1e-3)
        self.window_s = window_s
        self._t0 = self._y0 = 0.0
        self._n = 0
        self._sx = self._sy = self._sxx = self._sxy = 0.0

    def __len__(self) -> int:
        return len(self.points)

    def add(self, t: float, y: float, oldest_t: float | None = None) -> None:
        """Add the newest point (`t` after every point so far), then `advance` to `t`."""
        self.points.append((t, y))
        self._sum(t, y, 1.0)
        self.advance(t, oldest_t)
        if not math.isfinite(self._sy + self._sxy):
            self._rebase()

    def advance(self, t: float, oldest_t: float | None = None) -> None:
        """Drop the points older than `window_s` before `t` (the newest sample's time,
        whether or not it carried this signal), or than `oldest_t` (the oldest sample
        the caller still keeps)."""
        points = self.points
        horizon = t - self.window_s - EDGE_S
        if oldest_t is not None and oldest_t > horizon:
            horizon = oldest_t
        while points and points[0][0] < horizon:
            old_t, old_y = points.popleft()
            self._sum(old_t, old_y, -1.0)
        if not points:
            self._n = 0
            self._sx = self._sy = self._sxx = self._sxy = 0.0
        elif (
            self._n == 1
            or t - self._t0 > self._rebase_after
            or not math.isfinite(self._sy + self._sxy)
        ):
            self._rebase()

    def slope(self) -> float | None:
        """The least-squares slope of y on t; None for fewer than two points or when t
        does not vary (as `pbgm.events.slope`)."""
        n, sx, sxx = self._n, self._sx, self._sxx
        denominator = n * sxx - sx * sx
        if n < 2 or denominator <= 1e-12 * max(n * sxx, 1e-300):
            return None
        value = (n * self._sxy - sx * self._sy) / denominator
        return value if math.isfinite(value) else None

    def step(self) -> float | None:
        """Mean of the newest tenth of the points minus mean of the oldest tenth (at least
        one point each); None for fewer than two points."""
        points, n = self.points, len(self.points)
        if n < 2:
            return None
        if n < 20:  # one point each end: the common case, at once
            value = points[-1][1] - points[0][1]
        else:
            k = n // 10  # each end's points summed newest first, as the windowed one did
            newest = sum([points[-i][1] for i in range(1, k + 1)])
            oldest = sum([points[i][1] for i in range(k - 1, -1, -1)])
            value = newest / k - oldest / k
        return value if math.isfinite(value) else None

    def _sum(self, t: float, y: float, sign: float) -> None:
        x, v = t - self._t0, y - self._y0
        self._n += int(sign)
        self._sx += sign * x
        self._sy += sign * v
        self._sxx += sign * x * x
        self._sxy += sign * x * v

    def _rebase(self) -> None:
        self._t0, self._y0 = self.points[0]
        self._n = 0
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        for t, y in self.points:
            self._sum(t, y, 1.0)
