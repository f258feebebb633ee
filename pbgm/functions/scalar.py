"""Functions of single values: the comparisons and `between`, and the arithmetic.

Comparisons take two values of one kind (a string meeting a date-time, time or duration
is read as one); arithmetic works on numbers, durations and date-times. An absent
argument makes a comparison False and an arithmetic result the empty bag.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pbgm.functions.temporal import as_datetime, parse_datetime, parse_duration, parse_time
from pbgm.functions.values import (
    BAG_TYPES,
    EMPTY,
    NOTHING,
    EvaluationFailure,
    kind_of,
    one,
    parsed,
    scalars,
    type_error,
)

ZERO = timedelta()
EQUATABLE = frozenset({"boolean", "number", "string", "date-time", "time", "duration"})
ORDERABLE = EQUATABLE - {"boolean"}

_FAST = frozenset({str, int, float})
_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "date-time": parse_datetime,
    "time": parse_time,
    "duration": parse_duration,
}


# --- comparison -------------------------------------------------------------------


def _pair(a: Any, b: Any, fn: str, kinds: frozenset[str]) -> tuple[Any, Any]:
    """Bring two scalars to one comparable kind, parsing a string if the other side asks."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb and ka == "string" and kb in _PARSERS:
        a, ka = parsed(_PARSERS[kb], a, fn, f"a {kb}"), kb
    elif ka != kb and kb == "string" and ka in _PARSERS:
        b, kb = parsed(_PARSERS[ka], b, fn, f"a {ka}"), ka
    if ka != kb or ka not in kinds:
        what = "compare" if kinds is EQUATABLE else "order"
        raise EvaluationFailure("type_error", f"`{fn}` cannot {what} a {ka} with a {kb}")
    if ka == "date-time":
        return as_datetime(a, fn), as_datetime(b, fn)
    return a, b


def comparison(
    fn: str, op: Callable[[Any, Any], bool], kinds: frozenset[str]
) -> Callable[[Any, Any], bool]:
    """The function `fn` comparing two values with `op`; `kinds` are those it accepts."""

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


_LE_BETWEEN = comparison("between", operator.le, ORDERABLE)


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
    args = scalars(values, "add")
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
    args = scalars((a, b), "subtract")
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
    args = scalars(values, "multiply")
    if args is None:
        return EMPTY
    _numbers(args, "multiply")
    product = 1
    for v in args:
        product *= v
    return product


@_bounded("divide")
def divide(a: Any, b: Any) -> Any:
    args = scalars((a, b), "divide")
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
