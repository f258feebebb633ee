"""The ranges the FlexOffer arithmetic works in, and the check of every number against them.

The rules add energies over slices, scale them by durations, and turn durations into
times. Each number therefore has a range in which those formulas stay exact enough and
finite:

* energies (slice bounds, total and sub-total constraints, schedule amounts), prices
  and costs: |x| <= `MAX_MAGNITUDE` (1e15, a thousand times the world's yearly energy
  use in kWh; beyond it sums of a few slices lose whole units);
* power factors: within [-1, 1] (a cosine; reported as `power_factor_out_of_range`);
* durations (slice `minDuration`/`maxDuration`, schedule `duration`) times the interval
  length, the interval length itself and `assignmentBeforeStart`: at most `MAX_SPAN_S`
  (100 years) of seconds, so every derived time is a date-time.

A number outside its range is `number_out_of_range` (non-finite: `invalid_number`), and
the rules then treat it as unknown: they check what does not depend on it. Parsing
applies the same bounds to the document's numbers (`pbgm.flexoffer._reader`);
`sanitise` applies them to a model built in code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from pbgm.errors import Problem
from pbgm.flexoffer._model import (
    Bounds,
    FlexOffer,
    FlexOfferSchedule,
    FlexOfferSlice,
    PriceBounds,
    ScheduleSlice,
)

MAX_MAGNITUDE = 1e15
"""Largest |energy|, price or cost the rules compute with (in the offer's unit)."""

MAX_SPAN_S = 100 * 366 * 86_400
"""Longest time span (s) a duration, an interval or a lead may describe."""


def out_of_range_message(shown: str) -> str:
    return f"`{shown}` is outside the range ±{MAX_MAGNITUDE:g} the energy arithmetic works in"


class _Check:
    """Collects problems and returns each number, or None when it is unusable."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def magnitude(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.append(Problem(path, "invalid_type", "expected a number"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problems.append(Problem(path, "invalid_number", "expected a finite number"))
            return None
        if abs(value) > MAX_MAGNITUDE:
            self.problems.append(
                Problem(path, "number_out_of_range", out_of_range_message(f"{value:g}"))
            )
            return None
        return value

    def span(self, value: Any, seconds: int | None, path: str, what: str) -> Any:
        """An integer count of `seconds`-long units whose span stays within MAX_SPAN_S."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(Problem(path, "invalid_type", "expected an integer"))
            return None
        if seconds is not None and abs(value) * max(seconds, 0) > MAX_SPAN_S:
            self.problems.append(
                Problem(
                    path,
                    "number_out_of_range",
                    f"`{value}` {what} is longer than {MAX_SPAN_S // (366 * 86_400)} years",
                )
            )
            return None
        return value

    def bounds(self, bounds: Any, path: str) -> Any:
        if not isinstance(bounds, Bounds):
            return bounds
        return Bounds(
            self.magnitude(bounds.lower, f"{path}.lower"),
            self.magnitude(bounds.upper, f"{path}.upper"),
        )


def sanitise_offer(offer: FlexOffer) -> tuple[FlexOffer, list[Problem]]:
    """`offer` with every number outside its range replaced by None, and the problems."""
    check = _Check()
    seconds = check.span(
        offer.num_seconds_per_interval, 1, "$.numSecondsPerInterval", "seconds per interval"
    )
    usable = seconds if seconds is not None and seconds > 0 else None
    profile = tuple(
        _slice(check, piece, usable, f"$.flexOfferProfileConstraints[{i}]")
        for i, piece in enumerate(offer.profile or ())
    )
    changes: dict[str, Any] = {
        "num_seconds_per_interval": seconds,
        "assignment_before_start": check.span(
            offer.assignment_before_start, 1, "$.assignmentBeforeStart", "seconds of lead"
        ),
        "profile": profile if offer.profile is not None else None,
    }
    for name, key in (
        ("total_energy_constraint", "totalEnergyConstraint"),
        ("sub_total_energy_constraint", "subTotalEnergyConstraint"),
        ("total_cost_constraint", "totalCostConstraint"),
        ("power_factor_constraint", "powerFactorConstraint"),
    ):
        changes[name] = check.bounds(getattr(offer, name), f"$.{key}")
    for name, key in (("default_schedule", "defaultSchedule"), ("schedule", "flexOfferSchedule")):
        schedule = getattr(offer, name)
        if schedule is not None:
            changes[name] = _schedule(check, schedule, usable, f"$.{key}")
    return _replace(offer, changes, check), check.problems


def sanitise_schedule(
    schedule: FlexOfferSchedule, seconds: int | None, base: str = "$"
) -> tuple[FlexOfferSchedule, list[Problem]]:
    """`schedule` with every number outside its range replaced by None, and the problems."""
    check = _Check()
    return _schedule(check, schedule, seconds, base), check.problems


def _slice(check: _Check, piece: Any, seconds: int | None, path: str) -> Any:
    if not isinstance(piece, FlexOfferSlice):
        return piece
    price = piece.price_constraint
    if isinstance(price, PriceBounds):
        price = PriceBounds(
            check.magnitude(price.min_price, f"{path}.priceConstraint.minPrice"),
            check.magnitude(price.max_price, f"{path}.priceConstraint.maxPrice"),
        )
    return dataclasses.replace(
        piece,
        energy_constraints=tuple(
            check.bounds(b, f"{path}.energyConstraintList[{i}]")
            for i, b in enumerate(piece.energy_constraints)
        ),
        min_duration=check.span(piece.min_duration, seconds, f"{path}.minDuration", "intervals"),
        max_duration=check.span(piece.max_duration, seconds, f"{path}.maxDuration", "intervals"),
        price_constraint=price,
    )


def _schedule(check: _Check, schedule: Any, seconds: int | None, base: str) -> Any:
    if not isinstance(schedule, FlexOfferSchedule):
        return schedule
    own = check.span(
        schedule.num_seconds_per_interval,
        1,
        f"{base}.numSecondsPerInterval",
        "seconds per interval",
    )
    slices = tuple(
        _schedule_slice(check, piece, seconds, f"{base}.scheduleSlices[{i}]")
        for i, piece in enumerate(schedule.slices)
    )
    return dataclasses.replace(schedule, slices=slices, num_seconds_per_interval=own)


def _schedule_slice(check: _Check, piece: Any, seconds: int | None, path: str) -> Any:
    if not isinstance(piece, ScheduleSlice):
        return piece
    return ScheduleSlice(
        check.magnitude(piece.energy_amount, f"{path}.energyAmount"),
        check.span(piece.duration, seconds, f"{path}.duration", "intervals"),
        check.magnitude(piece.price, f"{path}.price"),
    )


def _replace(offer: FlexOffer, changes: dict[str, Any], check: _Check) -> FlexOffer:
    """The offer with the checked values; fields that became unusable are marked so."""
    lost = {
        name
        for name, value in changes.items()
        if value is None and getattr(offer, name) is not None
    }
    return dataclasses.replace(offer, **changes, unreadable=offer.unreadable | lost)
