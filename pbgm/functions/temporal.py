"""Time in the condition language: reading date-times, times of day, durations, timezones
and weekdays, and the functions `time-in-window`, `day-of-week` and `day-of-week-in`.

The `parse_*` functions raise `ValueError` (the compiler turns it into a problem); the
`as_*` coercions and the functions raise `EvaluationFailure` on request values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pbgm.functions.values import (
    EMPTY,
    NOTHING,
    EvaluationFailure,
    members,
    one,
    parsed,
    scalars,
    type_error,
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
_DURATION = re.compile(
    r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.ASCII
)
_DAY_NAMES = {name.lower(): i for i, name in enumerate(WEEKDAYS, 1)}
_DAY_NAMES.update(
    {
        full: i
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), 1
        )
    }
)


# --- reading strings ---------------------------------------------------------------

_LEAP_SECOND = re.compile(r"[T ]\d{2}:?\d{2}:?60(?:[.,]\d+)?(?:Z|[+-]\d|$)", re.IGNORECASE)
"""A time whose second is 60: valid ISO 8601 (a leap second), but no `datetime` holds it."""


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with a timezone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if _LEAP_SECOND.search(text):
            raise ValueError(
                f"`{text}` is a leap second; leap seconds are not supported, "
                "give the second before or after it"
            ) from None
        raise ValueError(f"`{text}` is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ValueError(f"`{text}` has no timezone; add `Z` or an offset")
    return moment


def parse_time(text: str) -> time:
    """A time of day, `HH:MM` or `HH:MM:SS`."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"`{text}` is not a time of day `HH:MM` or `HH:MM:SS`")
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (`PT15M`)."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"`{text}` is not an ISO 8601 duration such as `PT15M`")
    weeks, days, hours, minutes, seconds = (float(g or 0) for g in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"`{text}` is too long a duration") from None


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """An IANA timezone such as `Europe/Berlin`."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise ValueError(f"`{name}` is not a known IANA timezone") from None


@dataclass(frozen=True, slots=True)
class Weekdays:
    """A set of ISO weekdays (1 = Monday), parsed from names such as `Mon` or `monday`."""

    numbers: frozenset[int]


def parse_weekdays(value: Any) -> Weekdays:
    numbers = set()
    for name in members(value):
        number = _DAY_NAMES.get(name.lower()) if isinstance(name, str) else None
        if number is None:
            raise ValueError(f"`{name}` is not a day of the week; use `Mon` ... `Sun`")
        numbers.add(number)
    return Weekdays(frozenset(numbers))


# --- coercing request values ---------------------------------------------------------


def as_datetime(value: Any, fn: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EvaluationFailure("type_error", f"`{fn}` got a date-time without a timezone")
        return value
    moment: datetime = parsed(parse_datetime, value, fn, "a date-time")
    return moment


def as_time(value: Any, fn: str) -> time:
    return value if isinstance(value, time) else parsed(parse_time, value, fn, "a time of day")


def as_zone(value: Any, fn: str) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    value = one(value, fn)
    if not isinstance(value, str):
        raise type_error(fn, "a timezone name", value)
    try:
        return zone(value)
    except ValueError as exc:
        raise EvaluationFailure("function_error", f"`{fn}`: {exc}") from None


# --- the functions ---------------------------------------------------------------------


def _local(moment: Any, tz: Any, fn: str) -> datetime | None:
    moment = one(moment, fn)
    if moment is NOTHING:
        return None
    try:
        return as_datetime(moment, fn).astimezone(as_zone(tz, fn))
    except OverflowError:
        raise EvaluationFailure(
            "function_error", f"`{fn}`: the date-time is out of range"
        ) from None


def time_in_window(moment: Any, start: Any, end: Any, tz: Any = UTC) -> bool:
    fn = "time-in-window"
    local, bounds = _local(moment, tz, fn), scalars((start, end), fn)
    if local is None or bounds is None:
        return False
    first, last, now = as_time(bounds[0], fn), as_time(bounds[1], fn), local.time()
    if first <= last:
        return first <= now < last
    return now >= first or now < last


def day_of_week(moment: Any, tz: Any = UTC) -> Any:
    local = _local(moment, tz, "day-of-week")
    return EMPTY if local is None else WEEKDAYS[local.weekday()]


def day_of_week_in(moment: Any, days: Any, tz: Any = UTC) -> bool:
    local = _local(moment, tz, "day-of-week-in")
    if local is None:
        return False
    if not isinstance(days, Weekdays):
        try:
            days = parse_weekdays(days)
        except ValueError as exc:
            raise EvaluationFailure("function_error", f"`day-of-week-in`: {exc}") from None
    return local.isoweekday() in days.numbers
