"""The FlexOffer of the FlexOffer User Group specification as frozen dataclasses.

Times are timezone-aware UTC datetimes; durations of slices are numbers of
intervals of `num_seconds_per_interval` seconds. Energy bounds in a slice's
`energy_constraints` are per interval (spec Table 2.1: "energy constraints for
one time unit"), so a slice that lasts `d` intervals may deliver between
`d * lower` and `d * upper`; a schedule slice's `energy_amount` is the energy of
the whole slice. With the usual duration of 1 this is the GOFLEX Java check.

Validation checks what it can of a document that does not parse: it builds these
classes with `None` wherever a value could not be read or lies outside the range the
rules compute in (`pbgm.flexoffer._numbers`), and lists those fields of the offer in
`FlexOffer.unreadable`. `parse_flexoffer` and `parse_schedule` never return such holes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_SECONDS_PER_INTERVAL = 900

#: The states of the spec (Table 1.1), lower case; parsing lower-cases Java's `Offered`.
STATES = (
    "initial",
    "offered",
    "accepted",
    "rejected",
    "assigned",
    "executed",
    "invalid",
    "canceled",
)

#: Unit multipliers of the spec (`multiplier`): `'k'` (default), `'1'`, `'M'`.
MULTIPLIERS: Mapping[str, str] = {"1": "", "k": "k", "M": "M"}


@dataclass(frozen=True, slots=True)
class Bounds:
    """A closed range `[lower, upper]` (energy, power factor or cost)."""

    lower: float
    upper: float


#: The spec's name for the bounds of energy (`energyConstraintList` items).
EnergyBounds = Bounds


@dataclass(frozen=True, slots=True)
class PriceBounds:
    """A slice's price constraint: spec `priceConstraint{minPrice,maxPrice}`,
    Java `tariffConstraint{minTariff,maxTariff}`."""

    min_price: float
    max_price: float


@dataclass(frozen=True, slots=True)
class FlexOfferSlice:
    """One slice of the profile: duration range in intervals and energy bounds per interval.

    Several `energy_constraints` are alternatives: an amount is acceptable when it
    lies within one of them (the Java code only ever reads the first).
    """

    energy_constraints: tuple[Bounds, ...]
    min_duration: int = 1
    max_duration: int = 1
    price_constraint: PriceBounds | None = None

    @property
    def energy_hull(self) -> Bounds | None:
        """The smallest range holding every alternative, or None when there is none."""
        if not self.energy_constraints:
            return None
        lows = [b.lower for b in self.energy_constraints]
        highs = [b.upper for b in self.energy_constraints]
        return Bounds(min(lows), max(highs))


@dataclass(frozen=True, slots=True)
class ScheduleSlice:
    """One slice of a schedule: duration in intervals, energy of the whole slice, price."""

    energy_amount: float
    duration: int = 1
    price: float | None = None


@dataclass(frozen=True, slots=True)
class FlexOfferSchedule:
    """An assignment (or the default schedule): start time and one slice per profile slice."""

    start_time: datetime
    slices: tuple[ScheduleSlice, ...]
    schedule_id: int | str | None = None
    update_id: int | None = None
    num_seconds_per_interval: int | None = None

    @property
    def total_duration(self) -> int:
        return sum(s.duration for s in self.slices)

    @property
    def total_energy(self) -> float:
        return sum(s.energy_amount for s in self.slices)


@dataclass(frozen=True, slots=True)
class FlexOffer:
    """A FlexOffer with the spec's defaults already applied by `parse_flexoffer`.

    `start_after_time` defaults to `creation_time` and `assignment_before_time`
    to `start_after_time`; `assignment_before_start` is in seconds (default 0);
    a missing `power_factor_constraint` means `[1.0, 1.0]`.
    """

    id: str
    state: str
    offered_by_id: str
    creation_time: datetime
    start_after_time: datetime
    start_before_time: datetime
    assignment_before_time: datetime
    profile: tuple[FlexOfferSlice, ...]
    state_reason: str | None = None
    location_id: str | Mapping[str, Any] | None = None
    accept_before_time: datetime | None = None
    assignment_before_start: int = 0
    end_after_time: datetime | None = None
    end_before_time: datetime | None = None
    num_seconds_per_interval: int = DEFAULT_SECONDS_PER_INTERVAL
    total_energy_constraint: Bounds | None = None
    sub_total_energy_constraint: Bounds | None = None
    power_factor_constraint: Bounds | None = None
    total_cost_constraint: Bounds | None = None
    default_schedule: FlexOfferSchedule | None = None
    schedule: FlexOfferSchedule | None = None
    unit: str = "Wh"
    multiplier: str = "k"
    profile_type: str = "activeEnergy"
    unreadable: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Fields (model names) that could not be read: unknown, not absent (validation only)."""

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.num_seconds_per_interval)

    @property
    def min_duration_intervals(self) -> int:
        return sum(s.min_duration for s in self.profile)

    @property
    def max_duration_intervals(self) -> int:
        return sum(s.max_duration for s in self.profile)

    @property
    def effective_power_factor(self) -> Bounds:
        return self.power_factor_constraint or Bounds(1.0, 1.0)

    @property
    def effective_unit(self) -> str:
        """Unit with its multiplier, e.g. `kWh` for the spec's default `Wh` and `k`."""
        prefix = MULTIPLIERS.get(self.multiplier, self.multiplier)
        return f"{prefix}{self.unit}"
