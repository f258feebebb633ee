"""The functions of pbgm's condition language: what each one means, and the registry.

`pbgm.conditions` compiles `Apply` trees against `FUNCTIONS`; `pbgm.validate` reads it to
report unknown functions and bad arity. The implementations here work on evaluated values
and are the reference meaning; the compiler may specialise some of them for speed.

Values
    An expression yields a scalar (string, number, boolean, date-time, time of day,
    duration, or a JSON object) or a bag: a list, tuple, set or frozenset of scalars. A
    string is a scalar, never a bag of characters. A request attribute that is missing or
    null is absent: reading it fails with `missing_attribute`, unless the reference says
    `may_be_absent`, in which case it yields the empty bag.

Bags where one value is expected (every parameter that is not a bag parameter)
    - a bag of exactly one value is that value;
    - a bag of two or more values fails with `not_single_value`;
    - an empty bag is "no value": a predicate (a function returning a boolean) with a
      no-value argument returns False; a value function (`abs`, `add`, `subtract`,
      `multiply`, `divide`, `day-of-week`) returns the empty bag, so the absence reaches
      the predicate that uses it; in a boolean position (an argument of `and`, `or`, `not`,
      or a whole condition) the empty bag is False. So `not-equal(x, 1)` with `x` absent is
      False while `not(equal(x, 1))` is True.

Bag parameters (`is-in` second, the set functions, `bag-size`, the third of `any-of`)
    A scalar is a bag of one; the empty bag is the empty set.

Types
    - Booleans are not numbers. Numbers are ints and floats compared by value (1 == 1.0).
    - `equal`, `not-equal` and the orderings compare two values of one kind: number,
      string (by code point), boolean (equality only), date-time, time, duration. A
      string meeting a date-time, time or duration is parsed as one (ISO 8601). Any other
      pair of kinds fails with `type_error`; numbers are never parsed from strings.
    - Set functions compare members by equality, booleans apart from numbers; members of
      different kinds are simply unequal, never an error (bags come from JSON and may mix
      kinds); objects and nested lists are unequal to everything.
    - Date-times are `datetime` objects or ISO 8601 strings, always with a timezone: a
      naive one fails with `type_error`. Times of day are `HH:MM` or `HH:MM:SS`; durations
      ISO 8601 (`PT15M`, `P1DT2H`, `P2W`).

Failures are `EvaluationFailure(code, message)`: `missing_attribute`, `type_error`,
`not_single_value`, `function_error` (division by zero, input too long, a bad topic filter
or timezone given by the request). The evaluator turns them into Indeterminate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

BAG_TYPES = (list, tuple, set, frozenset)
EMPTY: tuple[Any, ...] = ()
ZERO = timedelta()
MAX_REGEX_INPUT = 4096
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class EvaluationFailure(Exception):
    """A condition could not be evaluated; the evaluator records it as Indeterminate."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Nothing:
    """The value of an empty bag where one value was expected."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


# --- values -------------------------------------------------------------------


def one(value: Any, fn: str) -> Any:
    """The single value of `value`: itself, the only member of a bag, or `NOTHING`."""
    if isinstance(value, BAG_TYPES):
        if len(value) == 1:
            return next(iter(value))
        if not value:
            return NOTHING
        raise EvaluationFailure(
            "not_single_value", f"`{fn}` expects one value, got a bag of {len(value)}"
        )
    return value


def members(value: Any) -> Iterable[Any]:
    """The members of a bag; a scalar is a bag of one."""
    return value if isinstance(value, BAG_TYPES) else (value,)


def kind_of(value: Any) -> str:
    """The name of a value's kind, as used in messages and static checks."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date-time"
    if isinstance(value, time):
        return "time"
    if isinstance(value, timedelta):
        return "duration"
    if isinstance(value, BAG_TYPES):
        return "bag"
    return "null" if value is None else "object"


def type_error(fn: str, expected: str, value: Any) -> EvaluationFailure:
    return EvaluationFailure("type_error", f"`{fn}` expects {expected}, got a {kind_of(value)}")


def truth(value: Any, fn: str) -> bool:
    """A value in a boolean position: a boolean, a bag of one boolean, or False if empty."""
    if value is True or value is False:
        return value
    if isinstance(value, BAG_TYPES):
        value = one(value, fn)
        if value is NOTHING:
            return False
        if value is True or value is False:
            return value
    raise type_error(fn, "a boolean", value)


def negate(value: Any) -> bool:
    return not truth(value, "not")


# --- parsing strings (raise ValueError; callers turn it into a problem or a failure) ---

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


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time with a timezone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
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


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """An MQTT topic filter split into levels, checked against MQTT 3.1.1 §4.7."""

    text: str
    levels: tuple[str, ...]


def parse_topic_filter(text: str) -> TopicFilter:
    if not text or "\0" in text:
        raise ValueError("a topic filter must be a non-empty string without NUL")
    levels = tuple(text.split("/"))
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"in `{text}`, `#` must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"in `{text}`, `+` must be a whole level")
    return TopicFilter(text, levels)


def _parsed(parser: Callable[[str], Any], value: Any, fn: str, expected: str) -> Any:
    if not isinstance(value, str):
        raise type_error(fn, expected, value)
    try:
        return parser(value)
    except ValueError as exc:
        raise EvaluationFailure("type_error", f"`{fn}`: {exc}") from None


def as_datetime(value: Any, fn: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EvaluationFailure("type_error", f"`{fn}` got a date-time without a timezone")
        return value
    return _parsed(parse_datetime, value, fn, "a date-time")


def as_time(value: Any, fn: str) -> time:
    return value if isinstance(value, time) else _parsed(parse_time, value, fn, "a time of day")


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


# --- comparison -------------------------------------------------------------------

_FAST = frozenset({str, int, float})
_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "date-time": parse_datetime,
    "time": parse_time,
    "duration": parse_duration,
}
_EQUATABLE = frozenset({"boolean", "number", "string", "date-time", "time", "duration"})
_ORDERABLE = _EQUATABLE - {"boolean"}


def _pair(a: Any, b: Any, fn: str, kinds: frozenset[str]) -> tuple[Any, Any]:
    """Bring two scalars to one comparable kind, parsing a string if the other side asks."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb and ka == "string" and kb in _PARSERS:
        a, ka = _parsed(_PARSERS[kb], a, fn, f"a {kb}"), kb
    elif ka != kb and kb == "string" and ka in _PARSERS:
        b, kb = _parsed(_PARSERS[ka], b, fn, f"a {ka}"), ka
    if ka != kb or ka not in kinds:
        what = "compare" if kinds is _EQUATABLE else "order"
        raise EvaluationFailure("type_error", f"`{fn}` cannot {what} a {ka} with a {kb}")
    if ka == "date-time":
        return as_datetime(a, fn), as_datetime(b, fn)
    return a, b


def _comparison(fn: str, op: Callable[[Any, Any], bool], kinds: frozenset[str]) -> Callable:
    def compare(a: Any, b: Any) -> bool:
        if isinstance(a, BAG_TYPES):
            a = one(a, fn)
        if isinstance(b, BAG_TYPES):
            b = one(b, fn)
        if a is NOTHING or b is NOTHING:
            return False
        if a.__class__ is b.__class__ and a.__class__ in _FAST:
            return op(a, b)
        return op(*_pair(a, b, fn, kinds))

    return compare


def between(x: Any, low: Any, high: Any) -> bool:
    return _LE_BETWEEN(low, x) and _LE_BETWEEN(x, high)


_LE_BETWEEN = _comparison("between", operator.le, _ORDERABLE)


# --- arithmetic -------------------------------------------------------------------


def _bounded(fn: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Arithmetic whose result does not fit (a float, a date-time) fails with `function_error`."""

    def wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
        def bounded(*args: Any) -> Any:
            try:
                return impl(*args)
            except OverflowError:
                raise EvaluationFailure("function_error", f"`{fn}` overflows") from None

        return bounded

    return wrap


def _scalars(values: tuple[Any, ...], fn: str) -> list[Any] | None:
    """Single values of the arguments, or None when one is absent (the result is empty)."""
    out = [one(v, fn) for v in values]
    return None if any(v is NOTHING for v in out) else out


def _numbers(values: Iterable[Any], fn: str) -> None:
    for v in values:
        if kind_of(v) != "number":
            raise type_error(fn, "numbers", v)


def _timeline(args: list[Any], fn: str) -> list[Any]:
    """Date-times checked and strings read as date-times, for date-time arithmetic."""
    if not any(isinstance(v, datetime | timedelta) for v in args):
        return args
    return [v if isinstance(v, timedelta) else as_datetime(v, fn) for v in args]


@_bounded("add")
def add(*values: Any) -> Any:
    args = _scalars(values, "add")
    if args is None:
        return EMPTY
    args = _timeline(args, "add")
    moments = [v for v in args if isinstance(v, datetime)]
    if len(moments) > 1:
        raise EvaluationFailure("type_error", "`add` cannot add two date-times")
    if moments or isinstance(args[0], timedelta):
        return sum((v for v in args if isinstance(v, timedelta)), moments[0] if moments else ZERO)
    _numbers(args, "add")
    return sum(args)


@_bounded("subtract")
def subtract(a: Any, b: Any) -> Any:
    args = _scalars((a, b), "subtract")
    if args is None:
        return EMPTY
    first, second = _timeline(args, "subtract")
    if isinstance(first, datetime | timedelta):
        if isinstance(first, timedelta) and isinstance(second, datetime):
            raise EvaluationFailure(
                "type_error", "`subtract` cannot take a date-time from a duration"
            )
        return first - second
    _numbers(args, "subtract")
    return first - second


@_bounded("multiply")
def multiply(*values: Any) -> Any:
    args = _scalars(values, "multiply")
    if args is None:
        return EMPTY
    _numbers(args, "multiply")
    product = 1
    for v in args:
        product *= v
    return product


@_bounded("divide")
def divide(a: Any, b: Any) -> Any:
    args = _scalars((a, b), "divide")
    if args is None:
        return EMPTY
    _numbers(args, "divide")
    if args[1] == 0:
        raise EvaluationFailure("function_error", "`divide` by zero")
    return args[0] / args[1]


def absolute(a: Any) -> Any:
    a = one(a, "abs")
    if a is NOTHING:
        return EMPTY
    if kind_of(a) not in ("number", "duration"):
        raise type_error("abs", "a number or a duration", a)
    return abs(a)


# --- bags and sets -------------------------------------------------------------------


class _Bool:
    """Stands for a boolean inside sets, so that True never equals 1."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


_TRUE, _FALSE = _Bool(True), _Bool(False)


def norm(value: Any) -> Any:
    """A set key for `value`: booleans replaced by markers, everything else unchanged."""
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return value


def as_set(value: Any) -> frozenset[Any]:
    """The members of a bag as set keys; an object or a list becomes a key equal to nothing."""
    items = members(value)
    try:
        return frozenset(map(norm, items))
    except TypeError:
        return frozenset(norm(v) if _hashable(v) else object() for v in items)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def is_in(value: Any, bag: Any) -> bool:
    value = one(value, "is-in")
    return value is not NOTHING and not as_set(bag).isdisjoint(as_set(value))


def at_least_one_member_of(a: Any, b: Any) -> bool:
    return not as_set(a).isdisjoint(as_set(b))


def subset(a: Any, b: Any) -> bool:
    return as_set(a) <= as_set(b)


def set_equals(a: Any, b: Any) -> bool:
    return as_set(a) == as_set(b)


def bag_size(bag: Any) -> int:
    return len(bag) if isinstance(bag, BAG_TYPES) else 1


def _higher_order(want: bool) -> Callable[[FunctionSpec, Any, Any], bool]:
    """`any-of` (want True) and `all-of` (want False) with `or`/`and` failure semantics."""

    def apply(spec: FunctionSpec, value: Any, bag: Any) -> bool:
        assert spec.impl is not None
        failure = None
        for item in members(bag):
            try:
                if spec.impl(value, item) is want:
                    return want
            except EvaluationFailure as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return not want

    return apply


# --- strings -------------------------------------------------------------------------


def _string_test(fn: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def impl(text: Any, part: Any) -> bool:
        text, part = one(text, fn), one(part, fn)
        if text is NOTHING or part is NOTHING:
            return False
        for v in (text, part):
            if not isinstance(v, str):
                raise type_error(fn, "strings", v)
        return test(text, part)

    return impl


def regex_match(text: Any, pattern: re.Pattern[str]) -> bool:
    """Full match of a pattern checked and compiled by the compiler."""
    text = one(text, "regex-match")
    if text is NOTHING:
        return False
    if not isinstance(text, str):
        raise type_error("regex-match", "a string", text)
    if len(text) > MAX_REGEX_INPUT:
        raise EvaluationFailure(
            "function_error", f"input to `regex-match` is longer than {MAX_REGEX_INPUT} characters"
        )
    return pattern.fullmatch(text) is not None


# --- time ------------------------------------------------------------------------------


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
    local, bounds = _local(moment, tz, fn), _scalars((start, end), fn)
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


# --- MQTT --------------------------------------------------------------------------------


def topic_matches(topic: Any, topic_filter: Any) -> bool:
    """MQTT 3.1.1/5 matching: `+` one level, `#` the rest (and the parent level)."""
    fn = "topic-matches"
    args = _scalars((topic, topic_filter), fn)
    if args is None:
        return False
    topic, topic_filter = args
    if not isinstance(topic_filter, TopicFilter):
        topic_filter = _topic_filter(topic_filter, fn)
    if not isinstance(topic, str):
        raise type_error(fn, "a topic name", topic)
    if not topic or "+" in topic or "#" in topic:
        raise EvaluationFailure("function_error", f"`{fn}`: a topic name is non-empty, no `+`/`#`")
    return match_levels(topic.split("/"), topic_filter.levels)


def _topic_filter(value: Any, fn: str) -> TopicFilter:
    if not isinstance(value, str):
        raise type_error(fn, "a topic filter", value)
    try:
        return parse_topic_filter(value)
    except ValueError as exc:
        raise EvaluationFailure("function_error", f"`{fn}`: {exc}") from None


def match_levels(topic: list[str], levels: tuple[str, ...]) -> bool:
    if topic[0].startswith("$") and levels[0] in ("+", "#"):
        return False
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(topic) or (level != "+" and level != topic[i]):
            return False
    return len(topic) == len(levels)


# --- the registry ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function of the condition language.

    `params` gives the kind of each parameter; when `max_args` is None the last one repeats.
    Kinds: `boolean`, `number`, `string`, `value` (any scalar), `orderable`, `arithmetic`,
    `bag`, `date-time`, `time`, `timezone`, `weekdays`, `topic-filter` (checked when
    literal), `regex` and `function` (must be literals), `attribute` (an attribute reference).
    `impl` works on evaluated values; None for the lazy ones compiled specially.
    """

    name: str
    min_args: int
    max_args: int | None
    description: str
    params: tuple[str, ...]
    returns: str = "boolean"
    impl: Callable[..., Any] | None = field(default=None, compare=False)
    category: str = ""

    def param(self, index: int) -> str:
        return self.params[min(index, len(self.params) - 1)]


def _group(category: str, *specs: FunctionSpec) -> list[FunctionSpec]:
    return [replace(spec, category=category) for spec in specs]


def _cmp(name: str, op: Callable, kinds: frozenset[str], words: str) -> FunctionSpec:
    param = "value" if kinds is _EQUATABLE else "orderable"
    description = f"True when the first value {words} the second."
    return FunctionSpec(name, 2, 2, description, (param, param), impl=_comparison(name, op, kinds))


def _str(name: str, test: Callable[[str, str], bool], words: str) -> FunctionSpec:
    description = f"True when the first string {words} the second (case-sensitive)."
    return FunctionSpec(
        name, 2, 2, description, ("string", "string"), impl=_string_test(name, test)
    )


_F = FunctionSpec
_ALL = [
    *_group(
        "logic",
        _F("and", 1, None, "True when every argument is true. Left to right, stops at the first "
           "false; false wins over a failure of another argument, else the failure propagates.",
           ("boolean",)),
        _F("or", 1, None, "True when one argument is true. Left to right, stops at the first "
           "true; true wins over a failure of another argument, else the failure propagates.",
           ("boolean",)),
        _F("not", 1, 1, "The negation of a boolean (an empty bag counts as false).",
           ("boolean",), impl=negate),
    ),
    *_group(
        "comparison",
        _cmp("equal", operator.eq, _EQUATABLE, "equals"),
        _cmp("not-equal", operator.ne, _EQUATABLE, "differs from"),
        _cmp("less-than", operator.lt, _ORDERABLE, "is less than"),
        _cmp("less-than-or-equal", operator.le, _ORDERABLE, "is less than or equal to"),
        _cmp("greater-than", operator.gt, _ORDERABLE, "is greater than"),
        _cmp("greater-than-or-equal", operator.ge, _ORDERABLE, "is greater than or equal to"),
        _F("between", 3, 3, "True when low <= x <= high: `between(x, low, high)`, inclusive.",
           ("orderable",), impl=between),
    ),
    *_group(
        "arithmetic",
        _F("abs", 1, 1, "The absolute value of a number or duration.", ("arithmetic",),
           "value", absolute),
        _F("add", 2, None, "The sum of numbers, of durations, or of one date-time (a string is "
           "read as one) and durations.", ("arithmetic",), "value", add),
        _F("subtract", 2, 2, "a - b for numbers or durations; date-time minus duration is a "
           "date-time, date-time minus date-time a duration.", ("arithmetic",), "value",
           subtract),
        _F("multiply", 2, None, "The product of numbers.", ("number",), "number", multiply),
        _F("divide", 2, 2, "a / b (true division); dividing by zero fails with "
           "`function_error`.", ("number",), "number", divide),
    ),
    *_group(
        "set",
        _F("is-in", 2, 2, "True when the value is a member of the bag: `is-in(value, bag)`.",
           ("value", "bag"), impl=is_in),
        _F("at-least-one-member-of", 2, 2, "True when the two bags share a member.",
           ("bag", "bag"), impl=at_least_one_member_of),
        _F("subset", 2, 2, "True when every member of the first bag is in the second.",
           ("bag", "bag"), impl=subset),
        _F("set-equals", 2, 2, "True when the two bags have the same members.",
           ("bag", "bag"), impl=set_equals),
        _F("bag-size", 1, 1, "The number of values in the bag (a scalar counts 1).",
           ("bag",), "number", bag_size),
        _F("is-present", 1, 1, "True when the attribute is in the request with a value that "
           "is neither null nor an empty list; never fails.", ("attribute",)),
        _F("any-of", 3, 3, "`any-of(function, value, bag)`: true when the two-argument "
           "boolean function (a literal name) holds for (value, x) for some x in the bag; "
           "`or` failure semantics.", ("function", "value", "bag"),
           impl=_higher_order(True)),
        _F("all-of", 3, 3, "`all-of(function, value, bag)`: true when the function holds for "
           "(value, x) for every x in the bag (true for an empty bag); `and` failure "
           "semantics.", ("function", "value", "bag"), impl=_higher_order(False)),
    ),
    *_group(
        "string",
        _str("starts-with", str.startswith, "starts with"),
        _str("ends-with", str.endswith, "ends with"),
        _str("contains", lambda text, part: part in text, "contains"),
        _F("regex-match", 2, 2, "True when the whole string matches the pattern (full match). "
           "The pattern must be a literal of at most 256 characters without backreferences, "
           "nested or ambiguous quantifiers; input over 4096 characters fails.",
           ("string", "regex"), impl=regex_match),
    ),
    *_group(
        "time",
        _F("time-in-window", 3, 4, "`time-in-window(datetime, \"HH:MM\", \"HH:MM\"[, tz])`: "
           "start <= local time < end; a window whose end is before its start wraps past "
           "midnight. Local time in the IANA timezone given, UTC by default.",
           ("date-time", "time", "time", "timezone"), impl=time_in_window),
        _F("day-of-week", 1, 2, "The ISO weekday name (`Mon` ... `Sun`) of a date-time in the "
           "timezone given, UTC by default.", ("date-time", "timezone"), "string",
           day_of_week),
        _F("day-of-week-in", 2, 3, "True when the date-time falls on one of the days (`Mon`, "
           "`monday`...; case-insensitive) in the timezone given, UTC by default.",
           ("date-time", "weekdays", "timezone"), impl=day_of_week_in),
    ),
    *_group(
        "mqtt",
        _F("topic-matches", 2, 2, "`topic-matches(topic, filter)` per MQTT 3.1.1/5: `+` one "
           "level, `#` the remaining levels including the parent (`a/#` matches `a`); a topic "
           "starting with `$` is not matched by a filter starting with a wildcard.",
           ("string", "topic-filter"), impl=topic_matches),
    ),
]  # fmt: skip

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({spec.name: spec for spec in _ALL})
