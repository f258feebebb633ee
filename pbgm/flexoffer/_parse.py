"""FlexOffer and schedule documents, in every spelling seen in the wild, to the model.

Accepted spellings of one field are listed together below, canonical (spec
camelCase) first: the spec's `acceptBeforeTime` and Java's `acceptanceBeforeTime`;
`lower`/`upper` and `lowerBound`/`upperBound`; `priceConstraint{minPrice,maxPrice}`
and `tariffConstraint{minTariff,maxTariff}`; schedule `price` or `tariff`; numbers
as strings; interval numbers (`startAfterInterval`, ...) instead of times; the
older shape (`durationSeconds`, `energyConstraint{lower,upper}`, schedules as
`{startTime, energyAmounts[]}`); and snake_case. A document wrapped as
`{"flexOffer": {...}}` (the spec's example) is unwrapped.

`read_flexoffer` and `read_schedule` are the lenient readers behind the parse functions:
they return what could be read, with `None` where a value could not (and the offer's
`unreadable` fields), beside every problem, so that validation still checks the rest.
A field that is present but unreadable is unknown, not absent: no default replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pbgm.errors import Problem, ValidationError
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
    offer, problems = read_flexoffer(data)
    if problems or offer is None:
        raise ValidationError(problems)
    return offer


def parse_schedule(data: Mapping[str, Any], *, offer: FlexOffer | None = None) -> FlexOfferSchedule:
    """A schedule from a document; `offer` supplies the interval length and, for the
    older `energyAmounts[]` shape, the slice durations."""
    schedule, problems = read_schedule(data, offer=offer)
    if problems or schedule is None:
        raise ValidationError(problems)
    return schedule


def read_flexoffer(data: Any) -> tuple[FlexOffer | None, list[Problem]]:
    """What can be read of an offer document (holes where not), and every problem.

    None only when the document is not an object at all.
    """
    reader = Reader()
    unwrapped = _unwrap(reader, data, "flexOffer")
    if unwrapped is None:
        return None, reader.problems
    data, path = unwrapped
    fields, unreadable = _read_offer(reader, data, path)
    return FlexOffer(**fields, unreadable=frozenset(unreadable)), reader.problems


def read_schedule(
    data: Any, *, offer: FlexOffer | None = None
) -> tuple[FlexOfferSchedule | None, list[Problem]]:
    """What can be read of a schedule document (holes where not), and every problem.

    None only when the document is not an object at all.
    """
    reader = Reader()
    unwrapped = _unwrap(reader, data, "flexOfferSchedule")
    if unwrapped is None:
        return None, reader.problems
    data, path = unwrapped
    seconds = offer.num_seconds_per_interval if offer else DEFAULT_SECONDS_PER_INTERVAL
    durations = _fixed_durations(offer.profile) if offer and offer.profile else ()
    schedule = _read_schedule(reader, data, path, seconds, durations)
    return (schedule if isinstance(schedule, FlexOfferSchedule) else None), reader.problems


def _unwrap(reader: Reader, data: Any, wrapper: str) -> tuple[Mapping[str, Any], str] | None:
    if not isinstance(data, Mapping):
        reader.fail("$", "invalid_type", "expected an object")
        return None
    inner = data.get(wrapper)
    if len(data) == 1 and isinstance(inner, Mapping):
        return inner, f"$.{wrapper}"
    return data, "$"


# --- the offer ----------------------------------------------------------------


def _read_offer(r: Reader, data: Mapping[str, Any], path: str) -> tuple[dict[str, Any], set[str]]:
    """The model's fields (None where unreadable) and the names of the unreadable ones."""
    unreadable: set[str] = set()

    def known(name: str, value: Any, names: Sequence[str], default: Any = None) -> Any:
        """`value`, or None (unknown) when its field failed, or `default` when absent."""
        if r.failed(path, names):
            unreadable.add(name)
            return None
        return default if value is None else value

    seconds_names = _SECONDS_PER_INTERVAL
    seconds = known(
        "num_seconds_per_interval",
        r.field(data, seconds_names, path, r.positive_integer),
        seconds_names,
        DEFAULT_SECONDS_PER_INTERVAL,
    )
    lead_names = (
        "assignmentBeforeStart",
        "assignment_before_start",
        "assignmentBeforeDurationSeconds",
        "assignmentBeforeDurationIntervals",
    )
    out: dict[str, Any] = {
        "num_seconds_per_interval": seconds,
        "assignment_before_start": known(
            "assignment_before_start",
            _assignment_before_start(r, data, path, seconds or DEFAULT_SECONDS_PER_INTERVAL),
            lead_names,
        ),
        "profile": _read_profile(r, data, path, seconds),
    }
    if out["profile"] is None:  # missing or not an array (a bad slice is a hole inside)
        unreadable.add("profile")
    identity: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("id", ("id",)),
        ("state", ("state",)),
        ("offered_by_id", ("offeredById", "offered_by_id")),
    )
    for name, names in identity:
        value = r.field(data, names, path, r.text, required=True)
        out[name] = known(name, _state(value) if name == "state" else value, names)
    location_names = ("locationId", "locationID", "location_id")
    out["location_id"] = known(
        "location_id", freeze(r.field(data, location_names, path, r.location)), location_names
    )
    for name, (text_names, default) in _TEXT_FIELDS.items():
        out[name] = known(name, r.field(data, text_names, path, r.text), text_names, default)
    for name, bounds_names in _BOUNDS_FIELDS.items():
        value = r.field(data, bounds_names, path, lambda raw, p: _bounds(r, raw, p))
        if isinstance(value, Bounds):  # an unreadable side is a hole inside
            out[name] = value
        else:
            out[name] = known(name, value, bounds_names)
    out.update(_read_times(r, data, path, seconds, unreadable))
    durations = _fixed_durations(out["profile"] or ())
    schedules: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("default_schedule", ("defaultSchedule", "default_schedule")),
        ("schedule", ("flexOfferSchedule", "flex_offer_schedule", "schedule")),
    )
    for name, schedule_names in schedules:
        value = r.field(
            data, schedule_names, path, lambda raw, p: _read_schedule(r, raw, p, seconds, durations)
        )
        out[name] = value if isinstance(value, FlexOfferSchedule) else None
    return out, unreadable


def _state(value: str | None) -> str | None:
    return None if value is None else value.strip().lower()


def _read_times(
    r: Reader, data: Mapping[str, Any], path: str, seconds: int | None, unreadable: set[str]
) -> dict[str, Any]:
    """The times, with the spec's defaults for absent ones and None for unreadable ones.

    A time given as an interval number is unknown when the interval length is.
    """
    times: dict[str, datetime | None] = {}
    for name, (time_names, interval_names) in _TIMES.items():
        by_number = any(data.get(n) is not None for n in interval_names)
        if seconds is None and by_number:
            times[name] = None
            unreadable.add(name)
            continue
        moment = r.moment(
            data,
            time_names,
            interval_names,
            path,
            seconds or DEFAULT_SECONDS_PER_INTERVAL,
            required=name in _REQUIRED_TIMES,
        )
        if r.failed(path, (*time_names, *interval_names)):
            unreadable.add(name)
            moment = None
        times[name] = moment
    for name, default in (
        ("start_after_time", "creation_time"),
        ("assignment_before_time", "start_after_time"),
    ):
        if times[name] is None and name not in unreadable:
            times[name] = times[default]
            if default in unreadable:
                unreadable.add(name)
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


def _fixed_durations(profile: Sequence[FlexOfferSlice | None]) -> tuple[int | None, ...]:
    """Slice durations for the older `energyAmounts[]` schedules (1 when not fixed,
    None when the slice's durations are unknown)."""
    return tuple(
        None
        if s is None or s.min_duration is None or s.max_duration is None
        else s.min_duration
        if s.min_duration == s.max_duration
        else 1
        for s in profile
    )


# --- the profile --------------------------------------------------------------


def _read_profile(
    r: Reader, data: Mapping[str, Any], path: str, seconds: int | None
) -> tuple[Any, ...] | None:
    items = r.field(data, _PROFILE, path, r.array, required=True)
    if items is None:
        return None
    base = f"{path}.{_key(data, _PROFILE)}"
    step = seconds or DEFAULT_SECONDS_PER_INTERVAL
    return tuple(_read_slice(r, item, f"{base}[{i}]", step) for i, item in enumerate(items))


def _read_slice(r: Reader, raw: Any, path: str, seconds: int) -> FlexOfferSlice | None:
    """A slice; None where its duration or price could not be read, and None in place of
    an energy constraint that could not."""
    item = r.mapping(raw, path)
    if item is BAD:
        return None
    fixed = _duration_seconds(r, item, path, seconds)
    fixed_failed = r.failed(path, ("durationSeconds", "duration_seconds"))
    low_names, high_names = ("minDuration", "min_duration"), ("maxDuration", "max_duration")
    low = r.field(item, low_names, path, r.integer)
    high = r.field(item, high_names, path, r.integer)
    price = r.field(item, _PRICE, path, lambda raw, p: _price(r, raw, p))
    return FlexOfferSlice(
        energy_constraints=_read_energy(r, item, path),
        min_duration=_duration(r, path, low_names, low, fixed, fixed_failed),
        max_duration=_duration(r, path, high_names, high, fixed, fixed_failed),
        price_constraint=None if r.failed(path, _PRICE) else price,
    )


def _duration(
    r: Reader,
    path: str,
    names: Sequence[str],
    value: int | None,
    fixed: int | None,
    fixed_failed: bool,
) -> Any:
    """A slice duration: its own field, else the older `durationSeconds`, else 1."""
    if r.failed(path, names):
        return None
    if value is None and fixed_failed:
        return None
    return next(v for v in (value, fixed, 1) if v is not None)


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


def _read_energy(r: Reader, item: Mapping[str, Any], path: str) -> tuple[Any, ...]:
    """The slice's energy constraints, None in place of one that could not be read."""
    many = r.field(item, _ENERGY_LIST, path, r.array)
    if many is not None:
        base = f"{path}.{_key(item, _ENERGY_LIST)}"
        found = [_bounds(r, raw, f"{base}[{i}]") for i, raw in enumerate(many)]
        return tuple(b if isinstance(b, Bounds) else None for b in found)
    if r.failed(path, _ENERGY_LIST):
        return (None,)  # present but unreadable: unknown, not "no energy bounds"
    one = r.field(item, _ENERGY_ONE, path, lambda raw, p: _bounds(r, raw, p))
    if one is not None:
        return (one,)
    if r.failed(path, _ENERGY_ONE):
        return (None,)
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
    return Bounds(lower, upper)  # a side that could not be read is None: unknown


def _price(r: Reader, raw: Any, path: str) -> Any:
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    low_names = ("minPrice", "minTariff", "min_price", "min_tariff")
    high_names = ("maxPrice", "maxTariff", "max_price", "max_tariff")
    low = r.field(item, low_names, path, r.number, required=True)
    high = r.field(item, high_names, path, r.number, required=True)
    return PriceBounds(low, high)  # a side that could not be read is None: unknown


# --- schedules ----------------------------------------------------------------


def _read_schedule(
    r: Reader, raw: Any, path: str, seconds: int | None, durations: Sequence[int | None]
) -> Any:
    """A schedule (None in place of what could not be read), or BAD if not an object."""
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    own_names = _SECONDS_PER_INTERVAL
    own_seconds = r.field(item, own_names, path, r.positive_integer)
    step = own_seconds or seconds
    start_names, number_names = ("startTime", "start_time"), ("startInterval", "start_interval")
    start = (
        None
        if step is None and any(item.get(n) is not None for n in number_names)
        else r.moment(
            item,
            start_names,
            number_names,
            path,
            step or DEFAULT_SECONDS_PER_INTERVAL,
            required=True,
        )
    )
    if r.failed(path, (*start_names, *number_names)):
        start = None
    slices = _read_schedule_slices(r, item, path, durations)
    schedule_id = r.field(item, ("scheduleId", "schedule_id"), path, r.identifier)
    update_id = r.field(item, ("updateId", "update_id"), path, r.integer)
    hole: Any = start  # None when unreadable: a hole, as the model's docstring says
    return FlexOfferSchedule(hole, slices, schedule_id, update_id, own_seconds)


def _read_schedule_slices(
    r: Reader, item: Mapping[str, Any], path: str, durations: Sequence[int | None]
) -> tuple[Any, ...]:
    items = r.field(item, _SCHEDULE_SLICES, path, r.array)
    if items is not None:
        base = f"{path}.{_key(item, _SCHEDULE_SLICES)}"
        found = [_schedule_slice(r, raw, f"{base}[{i}]") for i, raw in enumerate(items)]
        return tuple(s if isinstance(s, ScheduleSlice) else None for s in found)
    amounts = r.field(item, _ENERGY_AMOUNTS, path, r.array)
    if amounts is None:
        if not any(item.get(n) is not None for n in _SCHEDULE_SLICES + _ENERGY_AMOUNTS):
            r.fail(f"{path}.scheduleSlices", "missing_field", "`scheduleSlices` is required")
        return ()
    base = f"{path}.{_key(item, _ENERGY_AMOUNTS)}"
    values: list[Any] = [r.number(raw, f"{base}[{i}]") for i, raw in enumerate(amounts)]
    holes: list[Any] = [durations[i] if i < len(durations) else 1 for i in range(len(values))]
    return tuple(ScheduleSlice(_hole(v), d) for v, d in zip(values, holes, strict=True))


def _schedule_slice(r: Reader, raw: Any, path: str) -> Any:
    item = r.mapping(raw, path)
    if item is BAD:
        return BAD
    amount = r.field(item, ("energyAmount", "energy_amount"), path, r.number, required=True)
    duration = r.field(item, ("duration",), path, r.integer)
    price = r.field(item, ("price", "tariff"), path, r.number)
    if r.failed(path, ("duration",)):
        duration = None
    elif duration is None:
        duration = 1
    return ScheduleSlice(amount, duration, price)


def _hole(value: Any) -> Any:
    """A value that could not be read becomes None: a hole (see `read_flexoffer`)."""
    return None if value is BAD else value
