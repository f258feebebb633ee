"""FlexOffer and schedule documents, in every spelling seen in the wild, to the model.

Accepted spellings of one field are listed together below, canonical (spec
camelCase) first: the spec's `acceptBeforeTime` and Java's `acceptanceBeforeTime`;
`lower`/`upper` and `lowerBound`/`upperBound`; `priceConstraint{minPrice,maxPrice}`
and `tariffConstraint{minTariff,maxTariff}`; schedule `price` or `tariff`; numbers
as strings; interval numbers (`startAfterInterval`, ...) instead of times; the
older shape (`durationSeconds`, `energyConstraint{lower,upper}`, schedules as
`{startTime, energyAmounts[]}`); and snake_case. A document wrapped as
`{"flexOffer": {...}}` (the spec's example) is unwrapped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pbgm.flexoffer._model import (
    DEFAULT_SECONDS_PER_INTERVAL,
    Bounds,
    FlexOffer,
    FlexOfferSchedule,
    FlexOfferSlice,
    PriceBounds,
    ScheduleSlice,
)
from pbgm.flexoffer._reader import BAD, Reader
from pbgm.policy import freeze

_SECONDS_PER_INTERVAL = ("numSecondsPerInterval", "num_seconds_per_interval")
_TIMES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "creation_time": (
        ("creationTime", "creation_time"),
        ("creationInterval", "creation_interval"),
    ),
    "accept_before_time": (
        ("acceptBeforeTime", "acceptanceBeforeTime", "accept_before_time"),
        ("acceptBeforeInterval", "acceptanceBeforeInterval", "accept_before_interval"),
    ),
    "assignment_before_time": (
        ("assignmentBeforeTime", "assignment_before_time"),
        ("assignmentBeforeInterval", "assignment_before_interval"),
    ),
    "start_after_time": (
        ("startAfterTime", "start_after_time"),
        ("startAfterInterval", "start_after_interval"),
    ),
    "start_before_time": (
        ("startBeforeTime", "start_before_time"),
        ("startBeforeInterval", "start_before_interval"),
    ),
    "end_after_time": (
        ("endAfterTime", "end_after_time"),
        ("endAfterInterval", "end_after_interval"),
    ),
    "end_before_time": (
        ("endBeforeTime", "end_before_time"),
        ("endBeforeInterval", "end_before_interval"),
    ),
}
_REQUIRED_TIMES = ("creation_time", "start_before_time")
_BOUNDS_FIELDS: Mapping[str, tuple[str, ...]] = {
    "total_energy_constraint": (
        "totalEnergyConstraint",
        "TotalEnergyConstraints",
        "totalEnergyConstraints",
        "total_energy_constraint",
    ),
    "sub_total_energy_constraint": (
        "subTotalEnergyConstraint",
        "SubTotalEnergyConstraints",
        "subTotalEnergyConstraints",
        "sub_total_energy_constraint",
    ),
    "power_factor_constraint": ("powerFactorConstraint", "power_factor_constraint"),
    "total_cost_constraint": ("totalCostConstraint", "total_cost_constraint"),
}
_TEXT_FIELDS: Mapping[str, tuple[tuple[str, ...], str | None]] = {
    "state_reason": (("stateReason", "state_reason"), None),
    "unit": (("unit",), "Wh"),
    "multiplier": (("multiplier",), "k"),
    "profile_type": (
        ("flexOfferProfilType", "flexOfferProfileType", "profileType", "profile_type"),
        "activeEnergy",
    ),
}
_PROFILE = ("flexOfferProfileConstraints", "flex_offer_profile_constraints", "profile")
_ENERGY_LIST = ("energyConstraintList", "energyConstraintsList", "energy_constraints")
_ENERGY_ONE = ("energyConstraint", "energy_constraint")
_PRICE = ("priceConstraint", "price_constraint", "tariffConstraint", "tariff_constraint")
_SCHEDULE_SLICES = ("scheduleSlices", "schedule_slices", "slices")
_ENERGY_AMOUNTS = ("energyAmounts", "energy_amounts")


def parse_flexoffer(data: Mapping[str, Any]) -> FlexOffer:
    """A `FlexOffer` from a document; `ValidationError` lists every structural problem."""
    reader = Reader()
    data, path = _unwrap(reader, data, "flexOffer")
    fields = _read_offer(reader, data, path)
    reader.raise_if_problems()
    return FlexOffer(**fields)


def parse_schedule(data: Mapping[str, Any], *, offer: FlexOffer | None = None) -> FlexOfferSchedule:
    """A schedule from a document; `offer` supplies the interval length and, for the
    older `energyAmounts[]` shape, the slice durations."""
    reader = Reader()
    data, path = _unwrap(reader, data, "flexOfferSchedule")
    seconds = offer.num_seconds_per_interval if offer else DEFAULT_SECONDS_PER_INTERVAL
    durations = _fixed_durations(offer.profile) if offer else ()
    schedule = _read_schedule(reader, data, path, seconds, durations)
    reader.raise_if_problems()
    assert isinstance(schedule, FlexOfferSchedule)
    return schedule


def _unwrap(reader: Reader, data: Any, wrapper: str) -> tuple[Mapping[str, Any], str]:
    if not isinstance(data, Mapping):
        reader.fail("$", "invalid_type", "expected an object")
        reader.raise_if_problems()
    inner = data.get(wrapper)
    if len(data) == 1 and isinstance(inner, Mapping):
        return inner, f"$.{wrapper}"
    return data, "$"


# --- the offer ----------------------------------------------------------------


def _read_offer(r: Reader, data: Mapping[str, Any], path: str) -> dict[str, Any]:
    seconds = r.field(data, _SECONDS_PER_INTERVAL, path, r.positive_integer)
    seconds = seconds or DEFAULT_SECONDS_PER_INTERVAL
    out: dict[str, Any] = {
        "id": r.field(data, ("id",), path, r.text, required=True),
        "state": _state(r.field(data, ("state",), path, r.text, required=True)),
        "offered_by_id": r.field(
            data, ("offeredById", "offered_by_id"), path, r.text, required=True
        ),
        "location_id": freeze(
            r.field(data, ("locationId", "locationID", "location_id"), path, r.location)
        ),
        "num_seconds_per_interval": seconds,
        "assignment_before_start": _assignment_before_start(r, data, path, seconds),
        "profile": _read_profile(r, data, path, seconds),
    }
    for name, (names, default) in _TEXT_FIELDS.items():
        value = r.field(data, names, path, r.text)
        out[name] = default if value is None else value
    for name, names in _BOUNDS_FIELDS.items():
        out[name] = r.field(data, names, path, lambda raw, p: _bounds(r, raw, p))
    out.update(_read_times(r, data, path, seconds))
    durations = _fixed_durations(out["profile"])
    for name, names in (
        ("default_schedule", ("defaultSchedule", "default_schedule")),
        ("schedule", ("flexOfferSchedule", "flex_offer_schedule", "schedule")),
    ):
        out[name] = r.field(
            data, names, path, lambda raw, p: _read_schedule(r, raw, p, seconds, durations)
        )
    return out


def _state(value: str | None) -> str | None:
    return None if value is None else value.strip().lower()


def _read_times(r: Reader, data: Mapping[str, Any], path: str, seconds: int) -> dict[str, Any]:
    times: dict[str, datetime | None] = {
        name: r.moment(data, tn, ins, path, seconds, required=name in _REQUIRED_TIMES)
        for name, (tn, ins) in _TIMES.items()
    }
    times["start_after_time"] = times["start_after_time"] or times["creation_time"]
    times["assignment_before_time"] = times["assignment_before_time"] or times["start_after_time"]
    return times


def _assignment_before_start(r: Reader, data: Mapping[str, Any], path: str, seconds: int) -> int:
    names = ("assignmentBeforeStart", "assignment_before_start", "assignmentBeforeDurationSeconds")
    value = r.field(data, names, path, r.integer)
    intervals = r.field(data, ("assignmentBeforeDurationIntervals",), path, r.integer)
    if value is None and intervals is not None:
        value = intervals * seconds
    if value is not None and value < 0:
        r.fail(f"{path}.{_key(data, names)}", "invalid_value", "must not be negative")
    return value or 0


def _key(data: Mapping[str, Any], names: Sequence[str]) -> str:
    """The spelling present in `data`, or the canonical one."""
    return next((n for n in names if data.get(n) is not None), names[0])


def _fixed_durations(profile: Sequence[FlexOfferSlice | None]) -> tuple[int, ...]:
    """Slice durations for the older `energyAmounts[]` schedules (1 when not fixed)."""
    return tuple(
        s.min_duration if s is not None and s.min_duration == s.max_duration else 1 for s in profile
    )


# --- the profile --------------------------------------------------------------


def _read_profile(r: Reader, data: Mapping[str, Any], path: str, seconds: int) -> tuple[Any, ...]:
    items = r.field(data, _PROFILE, path, r.array, required=True)
    if items is None:
        return ()
    base = f"{path}.{_key(data, _PROFILE)}"
    return tuple(_read_slice(r, item, f"{base}[{i}]", seconds) for i, item in enumerate(items))


def _read_slice(r: Reader, raw: Any, path: str, seconds: int) -> FlexOfferSlice | None:
    item = r.mapping(raw, path)
    if item is BAD:
        return None
    fixed = _duration_seconds(r, item, path, seconds)
    low = r.field(item, ("minDuration", "min_duration"), path, r.integer)
    high = r.field(item, ("maxDuration", "max_duration"), path, r.integer)
    return FlexOfferSlice(
        energy_constraints=_read_energy(r, item, path),
        min_duration=next(v for v in (low, fixed, 1) if v is not None),
        max_duration=next(v for v in (high, fixed, 1) if v is not None),
        price_constraint=r.field(item, _PRICE, path, lambda raw, p: _price(r, raw, p)),
    )


def _duration_seconds(r: Reader, item: Mapping[str, Any], path: str, seconds: int) -> int | None:
    """The older spec's `durationSeconds`, as a whole number of intervals."""
    value: int | None = r.field(
        item, ("durationSeconds", "duration_seconds"), path, r.positive_integer
    )
    if value is None:
        return None
    if value % seconds:
        r.fail(
            f"{path}.durationSeconds",
            "invalid_value",
            f"`{value}` is not a whole number of {seconds} s intervals",
        )
        return None
    return value // seconds


def _read_energy(r: Reader, item: Mapping[str, Any], path: str) -> tuple[Bounds, ...]:
    many = r.field(item, _ENERGY_LIST, path, r.array)
    if many is not None:
        base = f"{path}.{_key(item, _ENERGY_LIST)}"
        found = [_bounds(r, raw, f"{base}[{i}]") for i, raw in enumerate(many)]
        return tuple(b for b in found if isinstance(b, Bounds))
    one = r.field(item, _ENERGY_ONE, path, lambda raw, p: _bounds(r, raw, p))
    if one is not None:
        return (one,)
    if item.get("DependencyEnergyConstraintList") is not None:
        r.fail(path, "unsupported_shape", "dependency energy constraints are not supported")
    elif not any(item.get(n) is not None for n in _ENERGY_LIST + _ENERGY_ONE):
        r.fail(
            f"{path}.energyConstraintList", "missing_field", "`energyConstraintList` is required"
        )
    return ()


def _bounds(r: Reader, raw: Any, path: str) -> Any:
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    lower = r.field(item, ("lower", "lowerBound", "lower_bound"), path, r.number, required=True)
    upper = r.field(item, ("upper", "upperBound", "upper_bound"), path, r.number, required=True)
    return BAD if lower is None or upper is None else Bounds(lower, upper)


def _price(r: Reader, raw: Any, path: str) -> Any:
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    low_names = ("minPrice", "minTariff", "min_price", "min_tariff")
    high_names = ("maxPrice", "maxTariff", "max_price", "max_tariff")
    low = r.field(item, low_names, path, r.number, required=True)
    high = r.field(item, high_names, path, r.number, required=True)
    return BAD if low is None or high is None else PriceBounds(low, high)


# --- schedules ----------------------------------------------------------------


def _read_schedule(r: Reader, raw: Any, path: str, seconds: int, durations: Sequence[int]) -> Any:
    mark = len(r.problems)
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    own_seconds = r.field(item, _SECONDS_PER_INTERVAL, path, r.positive_integer)
    start = r.moment(
        item,
        ("startTime", "start_time"),
        ("startInterval", "start_interval"),
        path,
        own_seconds or seconds,
        required=True,
    )
    slices = _read_schedule_slices(r, item, path, durations)
    schedule_id = r.field(item, ("scheduleId", "schedule_id"), path, r.identifier)
    update_id = r.field(item, ("updateId", "update_id"), path, r.integer)
    if len(r.problems) > mark or start is None:
        return BAD
    return FlexOfferSchedule(start, slices, schedule_id, update_id, own_seconds)


def _read_schedule_slices(
    r: Reader, item: Mapping[str, Any], path: str, durations: Sequence[int]
) -> tuple[ScheduleSlice, ...]:
    items = r.field(item, _SCHEDULE_SLICES, path, r.array)
    if items is not None:
        base = f"{path}.{_key(item, _SCHEDULE_SLICES)}"
        found = [_schedule_slice(r, raw, f"{base}[{i}]") for i, raw in enumerate(items)]
        return tuple(s for s in found if isinstance(s, ScheduleSlice))
    amounts = r.field(item, _ENERGY_AMOUNTS, path, r.array)
    if amounts is None:
        if not any(item.get(n) is not None for n in _SCHEDULE_SLICES + _ENERGY_AMOUNTS):
            r.fail(f"{path}.scheduleSlices", "missing_field", "`scheduleSlices` is required")
        return ()
    base = f"{path}.{_key(item, _ENERGY_AMOUNTS)}"
    values = [r.number(raw, f"{base}[{i}]") for i, raw in enumerate(amounts)]
    return tuple(
        ScheduleSlice(v, durations[i] if i < len(durations) else 1)
        for i, v in enumerate(values)
        if v is not BAD
    )


def _schedule_slice(r: Reader, raw: Any, path: str) -> Any:
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    amount = r.field(item, ("energyAmount", "energy_amount"), path, r.number, required=True)
    duration = r.field(item, ("duration",), path, r.integer)
    price = r.field(item, ("price", "tariff"), path, r.number)
    if amount is None:
        return BAD
    return ScheduleSlice(amount, 1 if duration is None else duration, price)
