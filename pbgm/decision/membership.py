"""Membership tests: the most common conditions, kept as data for the flat policies.

Most access conditions ask whether an attribute holds one of a few strings:
`at-least-one-member-of(subject.groups, ["ops", "admins"])`, `is-in(subject.id,
["alice"])`, `equal(subject.id, "alice")`, or an `or` / `and` of such tests. The
flat policies (`pbgm.decision.flat`) evaluate them from one small tuple, `holds`, instead
of calling the condition's closures: a decision that reaches one policy among
100,000 then touches a few objects rather than a few dozen, and the closures,
which weigh far more than the tuple, are compiled only if the general path ever
needs them (`expression` gives the condition back).

A condition is the tuple `(every, junction, spec, keys, spec, keys, ...)`:
`every` tells whether all tests must hold (`and`) or one is enough (`or`, or a
single test), `junction` is the function that joined them (None for a single
test), each `keys` is the frozenset of a test's literal strings and each `spec`
a shared tuple `(overlap, bag, name, source)` (the attribute is read with
`bag(request).get(name)`; `overlap` tells that a bag value holds when it shares
a member with the keys; `source` is what `expression` needs).

`holds` decides only the plain cases, exactly those where the compiled closure
answers without looking further: a string value (any test), or a list, tuple or
set of hashable values (`overlap`). For anything else (an absent attribute, a
number, a bag for `is-in`...) it returns None and the caller takes the general
path, which gives the closure's answer or error.
"""

from __future__ import annotations

from typing import Any

from pbgm.decision.index import bag_getter
from pbgm.decision.shared import shared
from pbgm.functions import BAG_TYPES
from pbgm.model import CATEGORIES, Apply, AttributeRef, Expr, Literal, Request

Condition = tuple[Any, ...]
Keys = tuple[str, ...] | frozenset[str]

_TESTS = {"at-least-one-member-of": True, "is-in": False, "equal": False}
_JUNCTIONS = {"and": True, "or": False}
_PLAIN_BAGS = frozenset(BAG_TYPES)  # read by exact class: subclasses take the general path
_FEW = 4  # keys up to this many are kept in a tuple: smaller than a set, as fast
_specs: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def membership(expr: Expr | None) -> Condition | None:
    """The condition as membership tests, or None when it is not one (see above)."""
    if isinstance(expr, Apply) and expr.function in _JUNCTIONS and expr.args:
        tests = [_test(arg) for arg in expr.args]
        if any(test is None for test in tests):
            return None
        return (_JUNCTIONS[expr.function], expr.function, *(x for t in tests for x in t))  # type: ignore[union-attr]
    test = _test(expr)
    return None if test is None else (False, None, *test)


def holds(condition: Condition, request: Request, at: int = 0, stop: int = 0) -> bool | None:
    """Whether the condition holds for the request; None when only its closure can tell.
    (`at` and `stop` read one copied into a longer tuple: `seq[at]` is `every`, the
    tests follow, `seq[at + 1]` being skipped, until `stop` or a None spec.)"""
    every = condition[at]
    end = stop or len(condition)
    i = at + 2
    while i < end:
        spec = condition[i]
        if spec is None:
            break
        overlap, bag, name, _ = spec
        value = bag(request).get(name)
        keys = condition[i + 1]
        if value.__class__ is str:
            hit = value in keys
        elif overlap and value.__class__ in _PLAIN_BAGS:
            if keys.__class__ is tuple:  # a few keys: compared one by one, none hashed
                hit = False
                for member in value:
                    if member in keys:
                        hit = True
                        break
            else:
                try:
                    hit = not keys.isdisjoint(value)
                except TypeError:  # an unhashable member
                    return None
        else:
            return None
        if hit is not every:
            return hit
        i += 2
    return every  # type: ignore[no-any-return]


def expression(condition: Condition) -> Expr:
    """The condition as an expression again, equal in meaning to the one it came from."""
    tests = [_source(condition[i], condition[i + 1]) for i in range(2, len(condition), 2)]
    junction = condition[1]
    return tests[0] if junction is None else Apply(junction, tuple(tests))


def _test(expr: Expr | None) -> tuple[tuple[Any, ...], Keys] | None:
    if not isinstance(expr, Apply) or expr.function not in _TESTS or len(expr.args) != 2:
        return None
    ref, literal = expr.args
    if expr.function == "at-least-one-member-of" and isinstance(ref, Literal):
        ref, literal = literal, ref  # the order does not matter
    if not isinstance(ref, AttributeRef) or ref.category not in CATEGORIES or not ref.name:
        return None
    keys = _strings(literal, bag=expr.function != "equal")
    if keys is None:
        return None
    source = (expr.function, ref.category, ref.name, ref.may_be_absent)
    spec = shared(  # a few distinct ones: shared by every policy
        _specs, source, lambda: (_TESTS[expr.function], bag_getter(ref.category), ref.name, source)
    )
    return spec, keys


def _strings(expr: Expr, *, bag: bool) -> Keys | None:
    """The literal's strings: a string, or (`bag`) a list of strings; else None."""
    if not isinstance(expr, Literal) or expr.type is not None:
        return None
    value = expr.value
    if value.__class__ is str:
        return (value,)
    if bag and isinstance(value, list | tuple) and all(v.__class__ is str for v in value):
        unique = tuple(sorted(set(value)))
        return unique if len(unique) <= _FEW else frozenset(unique)
    return None


def _source(spec: tuple[Any, ...], keys: Keys) -> Expr:
    function, category, name, may_be_absent = spec[3]
    value: Any = next(iter(keys)) if function == "equal" else tuple(sorted(keys))
    return Apply(function, (AttributeRef(category, name, may_be_absent), Literal(value)))
