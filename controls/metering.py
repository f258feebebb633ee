"""Frequency regulation metering: which devices really regulate, judged by their RoCoP.

A device that provides frequency regulation changes its power against the frequency:
when the frequency falls it raises its output, so its rate of change of power
(RoCoP, dP/dt) has the opposite sign of the rate of change of frequency (RoCoF)
and a size proportional to it (for a droop response P = -K·Δf, dP/dt = -K·df/dt).
Working on rates removes the unknown baseline of each device.

Criterion, over the windows where the frequency is actually moving
(|RoCoF| >= `min_rocof_hz_s`; elsewhere both rates are mostly measurement noise):

* RoCoP and RoCoF are estimated by the same sliding linear regression
  (`window_s`), as for inertia estimation (docs/domain.md §3.2, §4.4);
* the correlation corr(RoCoP, RoCoF) must be <= -`min_correlation` (right sign,
  consistently), and
* the regulating gain K = -Σ RoCoP·RoCoF / Σ RoCoF² (kW per Hz) must be at least
  `min_gain_kw_per_hz` (enough magnitude to matter).

A device failing either test is reported as not regulating, with the reason; too
few excited windows give no verdict (`insufficient_excitation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from controls._common import setting
from controls._regression import series, sliding_slopes, window_samples
from controls.errors import InvalidLimitsError

REGULATING = "regulating"
WRONG_SIGN = "wrong_sign"
UNCORRELATED = "uncorrelated"
GAIN_TOO_SMALL = "gain_too_small"
INSUFFICIENT_EXCITATION = "insufficient_excitation"


@dataclass(frozen=True)
class MeteringThresholds:
    """The stated thresholds of the metering criterion (see the module docstring)."""

    window_s: float = 0.2
    min_rocof_hz_s: float = 0.02
    min_correlation: float = 0.6
    min_gain_kw_per_hz: float = 1.0
    min_windows: int = 10

    def __post_init__(self) -> None:
        setting(self.window_s, "window_s", "s", above=0.0)
        setting(self.min_rocof_hz_s, "min_rocof_hz_s", "Hz/s", above=0.0)
        setting(self.min_correlation, "min_correlation", "", above=0.0, maximum=1.0)
        setting(self.min_gain_kw_per_hz, "min_gain_kw_per_hz", "kW/Hz", minimum=0.0)
        windows = self.min_windows
        if isinstance(windows, bool) or not isinstance(windows, int) or windows < 3:
            raise InvalidLimitsError(
                f"`min_windows` must be a whole number >= 3, got `{windows!r}`"
            )


@dataclass(frozen=True)
class MeteringResult:
    """The verdict for one device, with the figures it rests on."""

    device_id: str
    regulating: bool
    reason: str
    correlation: float
    gain_kw_per_hz: float
    windows: int


def meter_regulation(
    t: np.ndarray,
    frequency_hz: np.ndarray,
    p_kw: Mapping[str, np.ndarray],
    thresholds: MeteringThresholds = MeteringThresholds(),
) -> dict[str, MeteringResult]:
    """Classify each device of `p_kw` (power samples on the time base `t`)."""
    if not isinstance(thresholds, MeteringThresholds):
        raise InvalidLimitsError("metering thresholds must be a `MeteringThresholds`")
    t, f = series(t, frequency_hz, "frequency")
    n = window_samples(t, thresholds.window_s)
    rocof = sliding_slopes(t, f, n)
    excited = np.abs(rocof.slope) >= thresholds.min_rocof_hz_s
    results = {}
    for device, p in p_kw.items():
        _, p = series(t, p, f"power of `{device}`")
        rocop = sliding_slopes(t, p, n).slope
        results[device] = _judge(device, rocop[excited], rocof.slope[excited], thresholds)
    return results


def _judge(
    device: str, rocop: np.ndarray, rocof: np.ndarray, th: MeteringThresholds
) -> MeteringResult:
    windows = int(rocof.size)
    if windows < th.min_windows or not np.any(rocof):
        return MeteringResult(device, False, INSUFFICIENT_EXCITATION, 0.0, 0.0, windows)
    gain = -float(rocop @ rocof) / float(rocof @ rocof)
    spread = float(np.std(rocop) * np.std(rocof))
    corr = (
        float(np.mean((rocop - rocop.mean()) * (rocof - rocof.mean()))) / spread if spread else 0.0
    )
    if corr <= -th.min_correlation and gain >= th.min_gain_kw_per_hz:
        reason = REGULATING
    elif corr >= th.min_correlation:
        reason = WRONG_SIGN
    elif corr > -th.min_correlation:
        reason = UNCORRELATED
    else:
        reason = GAIN_TOO_SMALL
    return MeteringResult(device, reason == REGULATING, reason, corr, gain, windows)
