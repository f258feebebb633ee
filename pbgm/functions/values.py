"""Values of the condition language: scalars, bags, absence, kinds and failures.

The semantics these helpers implement (a bag of one is its value, an empty bag is no
value, booleans are not numbers) are documented in `pbgm.functions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from typing import Any

BAG_TYPES = (list, tuple, set, frozenset)
EMPTY: tuple[Any, ...] = ()


class EvaluationFailure(Exception):
    """A condition could not be evaluated; the evaluator records it as Indeterminate.
    `missing` names the attributes a designator missed: (category, id, data type, issuer)."""

    def __init__(self, code: str, message: str, missing: tuple[tuple[Any, ...], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.missing = missing


class _Nothing:
    """The value of an empty bag where one value was expected."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


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


def scalars(values: tuple[Any, ...], fn: str) -> list[Any] | None:
    """Single values of the arguments, or None when one is absent (the result is empty)."""
    out = [one(v, fn) for v in values]
    return None if any(v is NOTHING for v in out) else out


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


def parsed(parser: Callable[[str], Any], value: Any, fn: str, expected: str) -> Any:
    """A string read by `parser`; anything else, or an unreadable string, is a type error."""
    if not isinstance(value, str):
        raise type_error(fn, expected, value)
    try:
        return parser(value)
    except ValueError as exc:
        raise EvaluationFailure("type_error", f"`{fn}`: {exc}") from None


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
