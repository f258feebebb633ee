"""The MPC's requested flexibility of one node as a FlexOffer for the asset there.

Pure: everything it needs is passed in, `now` included. The rules (docs/market.md,
"From request to offers"):

* prediction `k` of the request is slice `k` of the offer; a slice lasts
  `step_s / num_seconds_per_interval` intervals of the asset's template (a step that is
  not a whole number of intervals cannot be offered);
* the request asks for `v` kW (kvar), positive = more injection; the offer lets the
  market choose anything between nothing and that: energy bounds per interval
  `[min(0, e), max(0, e)]`, `e = v * interval hours`, signed by the template's
  `sign_convention` and scaled to its `unit`, then cut to its `allowed_direction`, its
  `energy_per_slice` and the policy's `limit-energy` obligation; a template
  `total_energy` narrower than the slices allow becomes the offer's
  `totalEnergyConstraint`;
* times: created now; `acceptBeforeTime` `accept_within_s` (at least the template's
  `min_lead_time_s`) from now and `assignmentBeforeTime` `assign_within_s` from now,
  each rounded up to the interval grid when the template aligns to it; the profile
  starts at `assignmentBeforeTime` (no time flexibility: the MPC's steps are fixed in
  time), so `startAfterTime = startBeforeTime`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pbgm.flexoffer import Bounds, FlexOffer, FlexOfferSlice, FlexOfferTemplate, Limits

#: Energy unit of a template -> (spec `unit`, spec `multiplier`, factor from k-units).
ENERGY_UNITS = {
    "Wh": ("Wh", "1", 1000.0),
    "kWh": ("Wh", "k", 1.0),
    "MWh": ("Wh", "M", 0.001),
    "VAh": ("VAh", "1", 1000.0),
    "kVAh": ("VAh", "k", 1.0),
    "MVAh": ("VAh", "M", 0.001),
}

#: The MPC's variables -> (FlexOffer profile type, the unit family they need).
VARIABLES = {
    "active_power": ("activeEnergy", "Wh"),
    "active_power_ESS": ("activeEnergy", "Wh"),
    "reactive_power": ("reactiveEnergy", "VAh"),
}


class NotOfferable(ValueError):
    """The asset cannot carry this request; `code` says why (docs/market.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Timing:
    """How far ahead the market must answer, from the run's parameters (seconds)."""

    step_s: int = 900
    accept_within_s: int = 60
    assign_within_s: int = 120


@dataclass(frozen=True, slots=True)
class Shape:
    """What an offer of one template for one variable looks like, before the limits."""

    duration: int
    """Intervals per MPC step."""
    sign: float
    """+1 when production is positive in the template, -1 otherwise."""
    scale: float
    """Template energy units per kWh."""
    unit: str
    multiplier: str
    profile_type: str

    def energy(self, kw: float, seconds_per_interval: int) -> float:
        """Energy per interval, in template units and signs, of `kw` (+ = injection)."""
        return self.sign * kw * seconds_per_interval / 3600.0 * self.scale

    def kw(self, energy: float, seconds_per_interval: int, duration: int) -> float:
        """The MPC's kW of a scheduled slice `energy` (whole slice of `duration`)."""
        hours = duration * seconds_per_interval / 3600.0
        return self.sign * energy / self.scale / hours


def shape(template: FlexOfferTemplate, variable: str, step_s: int) -> Shape:
    """How `variable` maps onto offers of `template`, or `NotOfferable`."""
    if variable not in VARIABLES:
        raise NotOfferable("unsupported_variable", f"no FlexOffer for variable `{variable}`")
    profile_type, family = VARIABLES[variable]
    if template.profile_type is not None and template.profile_type != profile_type:
        raise NotOfferable(
            "profile_type_mismatch",
            f"the template offers `{template.profile_type}`, `{variable}` needs `{profile_type}`",
        )
    unit = ENERGY_UNITS.get(template.unit)
    if unit is None or unit[0] != family:
        raise NotOfferable("unit_mismatch", f"`{variable}` cannot be offered in `{template.unit}`")
    interval = template.num_seconds_per_interval
    if step_s % interval:
        raise NotOfferable(
            "step_not_on_interval",
            f"an MPC step of {step_s} s is not a whole number of {interval} s intervals",
        )
    sign = 1.0 if template.sign_convention == "production_positive" else -1.0
    return Shape(step_s // interval, sign, unit[2], unit[0], unit[1], profile_type)


def slice_bounds(
    values_kw: Sequence[float], template: FlexOfferTemplate, form: Shape, cap: float | None
) -> list[Bounds]:
    """Per step, the energy bounds per interval the offer allows (module docstring)."""
    interval = template.num_seconds_per_interval
    low, high = _direction(template)
    limits = template.energy_per_slice
    bounds = []
    for kw in values_kw:
        energy = form.energy(kw, interval)
        lower, upper = min(0.0, energy), max(0.0, energy)
        lower, upper = _cut(lower, upper, low, high)
        lower, upper = _cut(lower, upper, limits.min, limits.max)
        if cap is not None:
            lower, upper = _cut(lower, upper, -cap, cap)
        bounds.append(Bounds(_tidy(lower), _tidy(upper)))
    return bounds


def _direction(template: FlexOfferTemplate) -> tuple[float | None, float | None]:
    """The sign range `allowed_direction` leaves, in the template's sign convention."""
    if template.allowed_direction == "both":
        return None, None
    production = template.allowed_direction == "production"
    positive = production == (template.sign_convention == "production_positive")
    return (0.0, None) if positive else (None, 0.0)


def _cut(lower: float, upper: float, low: float | None, high: float | None) -> tuple[float, float]:
    if low is not None:
        lower, upper = max(lower, low), max(upper, low)
    if high is not None:
        lower, upper = min(lower, high), min(upper, high)
    return lower, upper


def _tidy(value: float) -> float:
    """No `-0.0` in offers, and no float noise beyond what a meter resolves."""
    rounded = round(value, 9)
    return 0.0 if rounded == 0 else rounded


def build_offer(
    offer_id: str,
    *,
    template: FlexOfferTemplate,
    form: Shape,
    bounds: Sequence[Bounds],
    offered_by: str,
    node: int,
    timing: Timing,
    now: datetime,
) -> FlexOffer:
    """The FlexOffer for one asset (module docstring)."""
    interval = template.num_seconds_per_interval
    align = template.align_to_interval_grid
    accept_s = max(timing.accept_within_s, template.min_lead_time_s)
    accept = _later(now, accept_s, interval, align)
    assign = max(accept, _later(now, timing.assign_within_s, interval, align))
    profile = tuple(
        FlexOfferSlice((b,), min_duration=form.duration, max_duration=form.duration) for b in bounds
    )
    return FlexOffer(
        id=offer_id,
        state="offered",
        offered_by_id=offered_by,
        creation_time=now,
        accept_before_time=accept,
        assignment_before_time=assign,
        start_after_time=assign,
        start_before_time=assign,
        profile=profile,
        location_id=f"node_{node}",
        num_seconds_per_interval=interval,
        total_energy_constraint=_total(bounds, form.duration, template.total_energy),
        unit=form.unit,
        multiplier=form.multiplier,
        profile_type=form.profile_type,
    )


def _later(now: datetime, seconds: int, interval: int, align: bool) -> datetime:
    """`seconds` after `now`, rounded up to the interval grid when `align`, else to the
    second."""
    moment = now + timedelta(seconds=seconds)
    step = interval if align else 1
    epoch = math.ceil(moment.timestamp() / step) * step
    return datetime.fromtimestamp(epoch, now.tzinfo)


def _total(bounds: Sequence[Bounds], duration: int, limits: Limits) -> Bounds | None:
    """A `totalEnergyConstraint` when the template's `total_energy` is narrower than
    what the slices reach, else None."""
    reach_low = sum(b.lower for b in bounds) * duration
    reach_high = sum(b.upper for b in bounds) * duration
    low = reach_low if limits.min is None else max(reach_low, limits.min)
    high = reach_high if limits.max is None else min(reach_high, limits.max)
    if low == reach_low and high == reach_high:
        return None
    return Bounds(_tidy(min(low, high)), _tidy(max(low, high)))
