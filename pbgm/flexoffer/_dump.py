"""The model back to the canonical document: the spec's camelCase spelling.

Key order is fixed and absent optional parts are omitted, so
`parse_flexoffer(dump_flexoffer(offer)) == offer`. The profile type is written
`flexOfferProfilType`, as the spec's table spells it.
"""

from __future__ import annotations

from typing import Any

from pbgm.flexoffer._model import (
    Bounds,
    FlexOffer,
    FlexOfferSchedule,
    FlexOfferSlice,
    ScheduleSlice,
)
from pbgm.policy import format_datetime, thaw


def dump_flexoffer(offer: FlexOffer) -> dict[str, Any]:
    """The canonical spec document of `offer`."""
    out: dict[str, Any] = {"id": offer.id, "state": offer.state}
    _put(out, "stateReason", offer.state_reason)
    out["offeredById"] = offer.offered_by_id
    _put(out, "locationId", thaw(offer.location_id))
    out["numSecondsPerInterval"] = offer.num_seconds_per_interval
    out["creationTime"] = format_datetime(offer.creation_time)
    _put_time(out, "acceptBeforeTime", offer.accept_before_time)
    out["assignmentBeforeTime"] = format_datetime(offer.assignment_before_time)
    out["assignmentBeforeStart"] = offer.assignment_before_start
    out["startAfterTime"] = format_datetime(offer.start_after_time)
    out["startBeforeTime"] = format_datetime(offer.start_before_time)
    _put_time(out, "endAfterTime", offer.end_after_time)
    _put_time(out, "endBeforeTime", offer.end_before_time)
    out["flexOfferProfileConstraints"] = [_dump_slice(s) for s in offer.profile]
    _put_bounds(out, "totalEnergyConstraint", offer.total_energy_constraint)
    _put_bounds(out, "subTotalEnergyConstraint", offer.sub_total_energy_constraint)
    _put_bounds(out, "powerFactorConstraint", offer.power_factor_constraint)
    _put_bounds(out, "totalCostConstraint", offer.total_cost_constraint)
    if offer.default_schedule is not None:
        out["defaultSchedule"] = dump_schedule(offer.default_schedule)
    if offer.schedule is not None:
        out["flexOfferSchedule"] = dump_schedule(offer.schedule)
    out["unit"] = offer.unit
    out["multiplier"] = offer.multiplier
    out["flexOfferProfilType"] = offer.profile_type
    return out


def dump_schedule(schedule: FlexOfferSchedule) -> dict[str, Any]:
    """The canonical spec document of a schedule (`flexOfferSchedule`)."""
    out: dict[str, Any] = {}
    _put(out, "scheduleId", schedule.schedule_id)
    _put(out, "updateId", schedule.update_id)
    out["startTime"] = format_datetime(schedule.start_time)
    _put(out, "numSecondsPerInterval", schedule.num_seconds_per_interval)
    out["scheduleSlices"] = [_dump_schedule_slice(s) for s in schedule.slices]
    return out


def _dump_slice(piece: FlexOfferSlice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "minDuration": piece.min_duration,
        "maxDuration": piece.max_duration,
        "energyConstraintList": [_bounds(b) for b in piece.energy_constraints],
    }
    if piece.price_constraint is not None:
        price = piece.price_constraint
        out["priceConstraint"] = {"minPrice": price.min_price, "maxPrice": price.max_price}
    return out


def _dump_schedule_slice(piece: ScheduleSlice) -> dict[str, Any]:
    out: dict[str, Any] = {"duration": piece.duration, "energyAmount": piece.energy_amount}
    _put(out, "price", piece.price)
    return out


def _bounds(bounds: Bounds) -> dict[str, float]:
    return {"lower": bounds.lower, "upper": bounds.upper}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _put_time(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = format_datetime(value)


def _put_bounds(out: dict[str, Any], key: str, value: Bounds | None) -> None:
    if value is not None:
        out[key] = _bounds(value)
