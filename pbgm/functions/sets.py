"""Functions of bags: membership, overlap, subset, equality, size, `any-of` and `all-of`.

Members compare by equality with booleans kept apart from numbers (`True` is not `1`);
members of different kinds are unequal, never an error, and objects or nested lists are
unequal to everything, so a bag from JSON may mix kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pbgm.functions.spec import FunctionSpec
from pbgm.functions.values import BAG_TYPES, NOTHING, EvaluationFailure, members, one


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


def higher_order(want: bool) -> Callable[[FunctionSpec, Any, Any], bool]:
    """`any-of` (want True) and `all-of` (want False) with `or`/`and` failure semantics."""

    def apply(spec: FunctionSpec, value: Any, bag: Any) -> bool:
        assert spec.impl is not None
        impl: Callable[[Any, Any], object] = spec.impl
        failure = None
        for item in members(bag):
            try:
                if impl(value, item) is want:
                    return want
            except EvaluationFailure as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return not want

    return apply
