"""VPP frequency control: fast frequency response (proportional or triggered) and AGC.

Every controller takes one `VppMeasurement` per step (frequency, the active power of
each unit and, optionally, its scheduled value) and returns `FrequencySetpoints`
within each unit's power bounds. Deadband, droops, gains and bounds come from
`FrequencyLimits`, replaceable between two steps (`set_limits`).

* `FastFrequencyResponse`: proportional FFR. The VPP's total gain is proportional to
  the power the VPP generates, K_VPP = k · P_VPP (kW/Hz), and the response -K_VPP·Δf
  grows with the deviation beyond the deadband, like the linear delivery of National
  Grid ESO's Dynamic Containment. It is shared among the units in proportion to their
  headroom (footroom for over-frequency), so no unit is asked for more than it has
  while the VPP has any left.
* `TriggeredFastFrequencyResponse`: threshold-triggered FFR, as the Nordic TSOs'
  Fast Frequency Reserve (FFR) product: when the frequency crosses `threshold_hz`
  the VPP delivers its full contracted `capacity_kw` (ramped over `activation_time_s`,
  0 = at once), holds it for at least `support_duration_s`, then ramps back over
  `deactivation_time_s` once the frequency has recovered (`TriggeredFfr`).
* `AutomaticGenerationControl`: a PI controller on the area control error of the
  VPP, ACE = (P_VPP - P_schedule) + B·Δf, which drives both the frequency deviation
  and the deviation from the VPP schedule to zero. The correction is shared in
  proportion to the units' droop participation, a_i = (P_n,i / R_i) / Σ_j P_n,j / R_j,
  and a unit at a bound hands its share to the others.

Baseline. Each response is added to a unit's baseline: its `p_schedule_kw` where
given; otherwise the pre-event baseline, i.e. the measured power of the last step in
which the controller asked nothing, held for as long as it asks anything. The
measured power during an event already contains the response, so adding the response
to it again (or deriving the FFR gain from it) would ratchet the output up step after
step. The FFR gain is taken from the baseline too.

The third algorithm, frequency regulation metering, lives in `controls.metering`
and is re-exported here (`meter_regulation`). Powers in kW, positive =
injection; frequency in Hz; times in s. Formulas: docs/domain.md §4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from controls._common import LimitsSlot, check_range, finite, frozen_mapping, setting
from controls.errors import InvalidLimitsError, InvalidMeasurementError
from controls.metering import MeteringResult, MeteringThresholds, meter_regulation

__all__ = [
    "AutomaticGenerationControl",
    "FastFrequencyResponse",
    "FrequencyLimits",
    "FrequencySetpoints",
    "MeteringResult",
    "MeteringThresholds",
    "TriggeredFastFrequencyResponse",
    "TriggeredFfr",
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
        check_range(self.p_min_kw, self.p_max_kw, "unit active power (kW)")
        setting(self.droop, "droop", "pu", above=0.0)
        if self.p_nominal_kw is not None:
            setting(self.p_nominal_kw, "p_nominal_kw", "kW")
        if self.rating_kw <= 0:
            raise InvalidLimitsError(f"unit rating must be > 0 kW, got `{self.rating_kw}` kW")

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
        setting(self.f_nominal_hz, "f_nominal_hz", "Hz", above=0.0)
        setting(self.deadband_hz, "deadband_hz", "Hz", minimum=0.0, below=self.f_nominal_hz)
        setting(self.ffr_gain_per_hz, "ffr_gain_per_hz", "per Hz", minimum=0.0)
        setting(self.agc_kp, "agc_kp", "", minimum=0.0)
        setting(self.agc_ki_per_s, "agc_ki_per_s", "per s", minimum=0.0)
        if self.agc_bias_kw_per_hz is not None:
            setting(self.agc_bias_kw_per_hz, "agc_bias_kw_per_hz", "kW/Hz", minimum=0.0)

    @property
    def bias_kw_per_hz(self) -> float:
        if self.agc_bias_kw_per_hz is not None:
            return self.agc_bias_kw_per_hz
        return sum(u.rating_kw / (u.droop * self.f_nominal_hz) for u in self.units.values())


@dataclass(frozen=True)
class VppMeasurement:
    """Frequency (Hz) and per-unit active power (kW), with the schedule where there is one.

    `p_schedule_kw` is the baseline each response is added to (for AGC also the
    schedule the VPP must return to); a unit without one gets the pre-event baseline
    (see the module docstring). `time_s` (s, non-decreasing) is used by AGC to
    integrate and by triggered FFR to time its activation.
    """

    frequency_hz: float
    p_kw: Mapping[str, float]
    p_schedule_kw: Mapping[str, float] = field(default_factory=dict)
    time_s: float = 0.0

    def __post_init__(self) -> None:
        frequency = finite(self.frequency_hz, "frequency (Hz)")
        if frequency <= 0:
            raise InvalidMeasurementError(f"frequency must be > 0 Hz, got `{frequency}` Hz")
        finite(self.time_s, "time (s)")
        p = {u: finite(v, f"power of unit `{u}` (kW)") for u, v in self.p_kw.items()}
        sched = {
            u: finite(v, f"schedule of unit `{u}` (kW)") for u, v in self.p_schedule_kw.items()
        }
        object.__setattr__(self, "p_kw", frozen_mapping(p))
        object.__setattr__(self, "p_schedule_kw", frozen_mapping(sched))


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
    """The units of one limits object as arrays, aligned with a measurement and a baseline."""

    def __init__(self, limits: FrequencyLimits, m: VppMeasurement, held: Mapping[str, float]):
        self.ids = tuple(sorted(limits.units))
        missing = [u for u in self.ids if u not in m.p_kw]
        if missing:
            raise InvalidMeasurementError(f"no power measurement for unit `{missing[0]}`")
        units = [limits.units[u] for u in self.ids]
        self.low = np.array([u.p_min_kw for u in units])
        self.high = np.array([u.p_max_kw for u in units])
        self.participation = np.array([u.rating_kw / u.droop for u in units])
        self.p = np.array([m.p_kw[u] for u in self.ids])
        self.scheduled = np.array([u in m.p_schedule_kw for u in self.ids])
        base = [m.p_schedule_kw.get(u, held.get(u, m.p_kw[u])) for u in self.ids]
        self.base = np.clip(base, self.low, self.high)

    def setpoints(self, delta: np.ndarray, asked: float) -> FrequencySetpoints:
        p = np.clip(self.base + delta, self.low, self.high)
        saturated = not math.isclose(float((p - self.base).sum()), asked, abs_tol=1e-6)
        return FrequencySetpoints(dict(zip(self.ids, p.tolist(), strict=True)), asked, saturated)


class _Baseline:
    """The pre-event baseline of the units that have no schedule.

    While the controller asks nothing the baseline follows the measured power; from the
    first step that asks something it is held, and it is released one step after the
    controller asks nothing again (that step still returns the units to it).
    """

    def __init__(self) -> None:
        self.held: dict[str, float] = {}

    def track(self, units: _Units, active: bool) -> None:
        """After a step: hold the baseline it used while a response is active."""
        if not active:
            self.held = {}
        elif not self.held:
            self.held = dict(zip(units.ids, units.base.tolist(), strict=True))

    def reset(self) -> None:
        self.held = {}


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


def _by_room(units: _Units, asked: float) -> FrequencySetpoints:
    """`asked` shared by headroom (footroom when negative) around the baseline."""
    room = np.maximum(units.high - units.base if asked > 0 else units.base - units.low, 0.0)
    return units.setpoints(share(asked, room, room), asked)


class FastFrequencyResponse(LimitsSlot[FrequencyLimits]):
    """Proportional FFR: gain proportional to VPP generation, shared by headroom.

    Holds the pre-event baseline between steps (see the module docstring); `reset`
    forgets it.
    """

    def __init__(self, limits: FrequencyLimits) -> None:
        super().__init__(limits)
        self._baseline = _Baseline()

    def reset(self) -> None:
        self._baseline.reset()

    def step(
        self, m: VppMeasurement, *, limits: FrequencyLimits | None = None
    ) -> FrequencySetpoints:
        limits = self._current(limits)
        units = _Units(limits, m, self._baseline.held)
        error = deadband(m.frequency_hz - limits.f_nominal_hz, limits.deadband_hz)
        gain = limits.ffr_gain_per_hz * max(float(units.base.sum()), 0.0)
        asked = -gain * error
        self._baseline.track(units, asked != 0.0)
        return _by_room(units, asked)


@dataclass(frozen=True)
class TriggeredFfr:
    """A threshold-triggered fast frequency response product (the Nordic TSOs' FFR).

    When the frequency reaches `threshold_hz` (below nominal: under-frequency, the VPP
    injects more; above nominal: over-frequency, it injects less) the VPP delivers
    `capacity_kw` in full: its set-point ramps there over `activation_time_s` (0 = at
    once; Nordic FFR requires full activation within 1.3 s at 49.7 Hz, 1.0 s at 49.6 Hz,
    0.7 s at 49.5 Hz). The full response is held for at least `support_duration_s`
    and, once the frequency is back inside the threshold, ramps back to the baseline
    over `deactivation_time_s` (Nordic FFR: a 5 s support duration needs a deactivation
    rate of at most 20 % of the capacity per second, i.e. at least 5 s; faster
    deactivation needs a 30 s support duration). Source: Fingrid, "Fast Frequency
    Reserve", technical requirements (https://www.fingrid.fi/en/electricity-market/
    reserves_and_balancing/fast-frequency-reserve/).
    """

    capacity_kw: float
    threshold_hz: float = 49.7
    activation_time_s: float = 0.0
    support_duration_s: float = 5.0
    deactivation_time_s: float = 5.0

    def __post_init__(self) -> None:
        setting(self.capacity_kw, "capacity_kw", "kW", above=0.0)
        setting(self.threshold_hz, "threshold_hz", "Hz", above=0.0)
        setting(self.activation_time_s, "activation_time_s", "s", minimum=0.0)
        setting(self.support_duration_s, "support_duration_s", "s", minimum=0.0)
        setting(self.deactivation_time_s, "deactivation_time_s", "s", minimum=0.0)

    @classmethod
    def nordic(cls, capacity_kw: float, threshold_hz: float = 49.7) -> TriggeredFfr:
        """Nordic FFR at one of its activation levels (49.7, 49.6 or 49.5 Hz), full
        activation at once, 5 s support, deactivation at 20 % of the capacity per second."""
        if threshold_hz not in NORDIC_FFR_ACTIVATION_S:
            levels = ", ".join(f"`{f}`" for f in NORDIC_FFR_ACTIVATION_S)
            raise InvalidLimitsError(
                f"nordic ffr activates at {levels} Hz, not `{threshold_hz}` Hz"
            )
        return cls(capacity_kw, threshold_hz, 0.0, 5.0, 5.0)


NORDIC_FFR_ACTIVATION_S = {49.7: 1.3, 49.6: 1.0, 49.5: 0.7}
"""Nordic FFR activation levels (Hz) and their maximum full activation times (s)."""


class TriggeredFastFrequencyResponse(LimitsSlot[FrequencyLimits]):
    """Threshold-triggered FFR (`TriggeredFfr`): full contracted response once triggered.

    States: `armed` (waiting for the threshold), `active` (ramping to or holding the
    full response), `deactivating` (ramping back). Needs `time_s` in every
    measurement, non-decreasing. The response is shared by headroom (footroom) around
    the pre-event baseline, like `FastFrequencyResponse`; `saturated` says the units
    could not deliver all of it.
    """

    def __init__(self, limits: FrequencyLimits, product: TriggeredFfr) -> None:
        if not isinstance(product, TriggeredFfr):
            raise InvalidLimitsError("the triggered ffr needs a `TriggeredFfr` product")
        self.product = product
        super().__init__(limits)
        self._baseline = _Baseline()
        self.reset()

    def _check(self, limits: FrequencyLimits) -> None:
        """The threshold must be off the nominal frequency of every limits in force."""
        if self.product.threshold_hz == limits.f_nominal_hz:
            raise InvalidLimitsError(
                f"threshold `{self.product.threshold_hz}` Hz is the nominal frequency: "
                "set it below (under-frequency) or above (over-frequency)"
            )

    def reset(self) -> None:
        self._baseline.reset()
        self.state = "armed"
        self._level = 0.0  # fraction of the capacity being delivered
        self._since = 0.0  # time the current state (or ramp) started
        self._from = 0.0  # level at the start of a deactivation ramp
        self._last_time: float | None = None

    def step(
        self, m: VppMeasurement, *, limits: FrequencyLimits | None = None
    ) -> FrequencySetpoints:
        limits = self._current(limits)
        if self._last_time is not None and m.time_s < self._last_time:
            raise InvalidMeasurementError(
                f"time `{m.time_s}` s is before the last step's `{self._last_time}` s"
            )
        self._last_time = m.time_s
        units = _Units(limits, m, self._baseline.held)
        under = self.product.threshold_hz < limits.f_nominal_hz
        beyond = m.frequency_hz <= self.product.threshold_hz if under else (
            m.frequency_hz >= self.product.threshold_hz
        )  # fmt: skip
        level = self._advance(m.time_s, beyond)
        asked = (1.0 if under else -1.0) * level * self.product.capacity_kw
        self._baseline.track(units, level > 0.0)
        return _by_room(units, asked)

    def _advance(self, now: float, beyond: bool) -> float:
        """The fraction of the capacity to deliver at `now`, moving the state machine."""
        p = self.product
        if self.state != "active" and beyond:  # trigger (or re-trigger while ramping down)
            ramp = p.activation_time_s
            self.state, self._since = "active", now - self._level * ramp
        if self.state == "active":
            elapsed = now - self._since
            ramp = p.activation_time_s
            self._level = 1.0 if elapsed >= ramp else elapsed / ramp
            if not beyond and elapsed >= ramp + p.support_duration_s:
                self.state, self._since, self._from = "deactivating", now, self._level
        if self.state == "deactivating":
            ramp = p.deactivation_time_s
            gone = now - self._since
            self._level = 0.0 if gone >= ramp else self._from * (1.0 - gone / ramp)
            if self._level == 0.0:
                self.state = "armed"
        return self._level


class AutomaticGenerationControl(LimitsSlot[FrequencyLimits]):
    """PI control of the VPP's area control error with droop-proportional participation.

    Holds the integral of the ACE between steps (with anti-windup: the integral
    stops growing while the VPP is saturated in that direction) and the pre-event
    baseline of units without a schedule; `reset` clears both.
    """

    def __init__(self, limits: FrequencyLimits) -> None:
        super().__init__(limits)
        self._baseline = _Baseline()
        self.reset()

    def reset(self) -> None:
        self._integral = 0.0
        self._last_time: float | None = None
        self._baseline.reset()

    def step(
        self, m: VppMeasurement, *, limits: FrequencyLimits | None = None
    ) -> FrequencySetpoints:
        limits = self._current(limits)
        units = _Units(limits, m, self._baseline.held)
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
        self._baseline.track(units, asked != 0.0)
        return result

    @staticmethod
    def area_control_error(limits: FrequencyLimits, m: VppMeasurement, units: _Units) -> float:
        """ACE = (P - P_schedule) of the scheduled units + B·Δf, Δf outside the deadband.

        Units without a schedule have nothing to return to: their baseline only anchors
        the correction, it is not a target.
        """
        error = deadband(m.frequency_hz - limits.f_nominal_hz, limits.deadband_hz)
        drift = float((units.p - units.base)[units.scheduled].sum())
        return drift + limits.bias_kw_per_hz * error
