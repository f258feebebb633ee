"""VPP frequency control: coordinated fast frequency response and automatic generation control.

Both controllers take one `VppMeasurement` per step (frequency, the active power of
each unit and its scheduled value) and return `FrequencySetpoints` within each
unit's power bounds. Deadband, droops, gains and bounds come from
`FrequencyLimits`, replaceable between two steps (`set_limits`).

* `FastFrequencyResponse`: the VPP's total gain is proportional to the power the VPP
  generates, K_VPP = k · P_VPP (kW/Hz), and the response -K_VPP·Δf is shared among
  the units in proportion to their headroom (footroom for over-frequency), so no
  unit is asked for more than it has while the VPP has any left.
* `AutomaticGenerationControl`: a PI controller on the area control error of the
  VPP, ACE = (P_VPP - P_schedule) + B·Δf, which drives both the frequency deviation
  and the deviation from the VPP schedule to zero. The correction is shared in
  proportion to the units' droop participation, a_i = (P_n,i / R_i) / Σ_j P_n,j / R_j,
  and a unit at a bound hands its share to the others.

The third algorithm, frequency regulation metering, lives in `controls.metering`
and is re-exported here (`meter_regulation`). Powers in kW, positive =
injection; frequency in Hz. Formulas: docs/domain.md §4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from controls._common import LimitsSlot, check_range, finite, frozen_mapping
from controls.errors import InvalidLimitsError, InvalidMeasurementError
from controls.metering import MeteringResult, MeteringThresholds, meter_regulation

__all__ = [
    "AutomaticGenerationControl",
    "FastFrequencyResponse",
    "FrequencyLimits",
    "FrequencySetpoints",
    "MeteringResult",
    "MeteringThresholds",
    "UnitLimits",
    "VppMeasurement",
    "deadband",
    "meter_regulation",
    "share",
]


@dataclass(frozen=True)
class UnitLimits:
    """Bounds and droop of one VPP unit; `p_nominal_kw` defaults to `p_max_kw`."""

    p_min_kw: float
    p_max_kw: float
    droop: float = 0.05
    p_nominal_kw: float | None = None

    def __post_init__(self) -> None:
        check_range(self.p_min_kw, self.p_max_kw, "unit active power")
        if not (math.isfinite(self.droop) and self.droop > 0):
            raise InvalidLimitsError(f"droop must be positive, got `{self.droop}`")
        if self.rating_kw <= 0:
            raise InvalidLimitsError(f"unit rating must be positive, got `{self.rating_kw}`")

    @property
    def rating_kw(self) -> float:
        return self.p_max_kw if self.p_nominal_kw is None else self.p_nominal_kw


@dataclass(frozen=True)
class FrequencyLimits:
    """Operational bounds of the frequency controllers (an `operational_limits` policy).

    `ffr_gain_per_hz` is k in K_VPP = k · P_VPP: the fraction of the VPP's generation
    delivered per Hz of deviation (k = 1 / (R_VPP · f0) behaves like droop R_VPP).
    `agc_bias_kw_per_hz` defaults to the droop stiffness Σ P_n,i / (R_i · f0).
    """

    units: Mapping[str, UnitLimits]
    f_nominal_hz: float = 50.0
    deadband_hz: float = 0.01
    ffr_gain_per_hz: float = 0.4
    agc_kp: float = 0.1
    agc_ki_per_s: float = 0.05
    agc_bias_kw_per_hz: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", frozen_mapping(self.units))
        if not self.units:
            raise InvalidLimitsError("frequency limits need at least one unit")
        values = (self.f_nominal_hz, self.deadband_hz, self.ffr_gain_per_hz, self.agc_kp,
                  self.agc_ki_per_s)  # fmt: skip
        if not all(math.isfinite(v) and v >= 0 for v in values) or self.f_nominal_hz <= 0:
            raise InvalidLimitsError("frequency, deadband and gains must be finite and >= 0")

    @property
    def bias_kw_per_hz(self) -> float:
        if self.agc_bias_kw_per_hz is not None:
            return self.agc_bias_kw_per_hz
        return sum(u.rating_kw / (u.droop * self.f_nominal_hz) for u in self.units.values())


@dataclass(frozen=True)
class VppMeasurement:
    """Frequency and per-unit active power; the schedule defaults to the measured power.

    For FFR the schedule is the pre-event baseline the response is added to.
    `time_s` is used by AGC to integrate.
    """

    frequency_hz: float
    p_kw: Mapping[str, float]
    p_schedule_kw: Mapping[str, float] = field(default_factory=dict)
    time_s: float = 0.0

    def __post_init__(self) -> None:
        finite(self.frequency_hz, "frequency")
        finite(self.time_s, "time")
        p = {u: finite(v, f"power of unit `{u}`") for u, v in self.p_kw.items()}
        sched = {u: finite(v, f"schedule of unit `{u}`") for u, v in self.p_schedule_kw.items()}
        object.__setattr__(self, "p_kw", frozen_mapping(p))
        object.__setattr__(self, "p_schedule_kw", frozen_mapping({**p, **sched}))


@dataclass(frozen=True)
class FrequencySetpoints:
    """Active-power set-points by unit and the total change asked of the VPP."""

    p_kw: Mapping[str, float]
    delta_p_kw: float
    saturated: bool


def deadband(delta_f_hz: float, band_hz: float) -> float:
    """Deviation outside the deadband, measured from its edge (no step at the edge)."""
    if abs(delta_f_hz) <= band_hz:
        return 0.0
    return math.copysign(abs(delta_f_hz) - band_hz, delta_f_hz)


class _Units:
    """The units of one limits object as arrays, aligned with a measurement."""

    def __init__(self, limits: FrequencyLimits, m: VppMeasurement) -> None:
        self.ids = tuple(sorted(limits.units))
        missing = [u for u in self.ids if u not in m.p_kw]
        if missing:
            raise InvalidMeasurementError(f"no power measurement for unit `{missing[0]}`")
        units = [limits.units[u] for u in self.ids]
        self.low = np.array([u.p_min_kw for u in units])
        self.high = np.array([u.p_max_kw for u in units])
        self.participation = np.array([u.rating_kw / u.droop for u in units])
        self.p = np.array([m.p_kw[u] for u in self.ids])
        self.base = np.clip([m.p_schedule_kw[u] for u in self.ids], self.low, self.high)

    def setpoints(self, delta: np.ndarray, asked: float) -> FrequencySetpoints:
        p = np.clip(self.base + delta, self.low, self.high)
        saturated = not math.isclose(float((p - self.base).sum()), asked, abs_tol=1e-6)
        return FrequencySetpoints(dict(zip(self.ids, p.tolist(), strict=True)), asked, saturated)


def share(total: float, weights: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Split `total` in proportion to `weights`, never past `room`; spill to the others.

    `room` is the (non-negative) amount each unit can still move in the direction
    of `total`. Water-filling: saturated units keep their room, the rest is shared
    again among the others by weight.
    """
    out = np.zeros_like(room)
    left, active = abs(total), (weights > 0) & (room > 0)
    while left > 1e-12 and active.any():
        part = left * weights * active / weights[active].sum()
        part = np.minimum(part, room - out)
        out += part
        left -= part.sum()
        active &= out < room - 1e-12
    return math.copysign(1.0, total) * out


class FastFrequencyResponse(LimitsSlot[FrequencyLimits]):
    """Coordinated FFR: gain proportional to VPP generation, shared by headroom."""

    def step(
        self, m: VppMeasurement, *, limits: FrequencyLimits | None = None
    ) -> FrequencySetpoints:
        limits = self._current(limits)
        units = _Units(limits, m)
        error = deadband(m.frequency_hz - limits.f_nominal_hz, limits.deadband_hz)
        gain = limits.ffr_gain_per_hz * max(float(units.p.sum()), 0.0)
        asked = -gain * error
        room = units.high - units.base if asked > 0 else units.base - units.low
        delta = share(asked, np.maximum(room, 0.0), np.maximum(room, 0.0))
        return units.setpoints(delta, asked)


class AutomaticGenerationControl(LimitsSlot[FrequencyLimits]):
    """PI control of the VPP's area control error with droop-proportional participation.

    Holds the integral of the ACE between steps (with anti-windup: the integral
    stops growing while the VPP is saturated in that direction); `reset` clears it.
    """

    def __init__(self, limits: FrequencyLimits) -> None:
        super().__init__(limits)
        self.reset()

    def reset(self) -> None:
        self._integral = 0.0
        self._last_time: float | None = None

    def step(
        self, m: VppMeasurement, *, limits: FrequencyLimits | None = None
    ) -> FrequencySetpoints:
        limits = self._current(limits)
        units = _Units(limits, m)
        ace = self.area_control_error(limits, m, units)
        dt = 0.0 if self._last_time is None else max(m.time_s - self._last_time, 0.0)
        self._last_time = m.time_s
        integral = self._integral + ace * dt
        asked = -(limits.agc_kp * ace + limits.agc_ki_per_s * integral)
        room = units.high - units.base if asked > 0 else units.base - units.low
        delta = share(asked, units.participation, np.maximum(room, 0.0))
        result = units.setpoints(delta, asked)
        if not result.saturated:
            self._integral = integral
        return result

    @staticmethod
    def area_control_error(limits: FrequencyLimits, m: VppMeasurement, units: _Units) -> float:
        """ACE = (P_VPP - P_schedule) + B·Δf, Δf taken outside the deadband."""
        error = deadband(m.frequency_hz - limits.f_nominal_hz, limits.deadband_hz)
        return float(units.p.sum() - units.base.sum()) + limits.bias_kw_per_hz * error
