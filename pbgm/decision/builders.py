"""Closures for the nodes of a condition: constants, attribute reads, function applications.

A builder takes a function's spec and its compiled operands and returns one closure
`Request -> value`. The strict builder calls the reference implementation; the others
specialise the common shapes (a comparison or a set function against a literal, a topic
filter given as a literal, `and`/`or`, `is-present`) without changing the result.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pbgm.decision.index import bag_getter
from pbgm.functions import (
    BAG_TYPES,
    DATATYPES,
    NOTHING,
    EvaluationFailure,
    FunctionSpec,
    TopicFilter,
    as_set,
    match_levels,
    members,
    norm,
    one,
    truth,
)
from pbgm.model import AttributeRef, Expr, Request, typed_key

Compiled = Callable[[Request], Any]
#: A reference implementation of a two-argument boolean function (a comparison, a set test).
BinaryTest = Callable[[Any, Any], bool]
NOT_CONST: Any = object()


@dataclass(frozen=True, slots=True)
class Operand:
    """A compiled node: its expression, its closure, and its value when it is a constant."""

    expr: Expr
    fn: Compiled
    const: Any = NOT_CONST

    @property
    def is_const(self) -> bool:
        return self.const is not NOT_CONST


# --- leaves -------------------------------------------------------------------------------


def constant(expr: Expr, value: Any) -> Operand:
    """A node whose value is known at load time."""
    return Operand(expr, lambda request: value, value)


def reference(ref: AttributeRef) -> Compiled:
    """Read one attribute: a missing or null value is absent."""
    if ref.data_type is not None:
        return designator(ref)
    bag, name = bag_getter(ref.category), ref.name
    if ref.may_be_absent:

        def optional(request: Request) -> Any:
            value = bag(request).get(name)
            return () if value is None else value

        return optional
    message = f"missing attribute `{ref.path}`"

    def required(request: Request) -> Any:
        value = bag(request).get(name)
        if value is None:
            raise EvaluationFailure("missing_attribute", message)
        return value

    return required


def designator(ref: AttributeRef) -> Compiled:
    """A XACML attribute designator: the bag (tuple) of the attribute's values of its data
    type (and issuer); found under the typed key a XACML request carries, else by filtering
    the values of a plain request by type. Empty and required: `missing_attribute`."""
    assert ref.data_type is not None
    bag, name, issuer = bag_getter(ref.category), ref.name, ref.issuer
    key, cls = typed_key(name, ref.data_type, issuer), DATATYPES[ref.data_type].cls
    missing = ((ref.category, ref.name, ref.data_type, issuer),)
    message = f"missing attribute `{name}` of `{ref.category}`"
    required = not ref.may_be_absent

    def read(request: Request) -> Any:
        attributes = bag(request)
        values = attributes.get(key)
        if values is None:
            values = () if issuer is not None else _of_class(attributes.get(name), cls)
        if required and not values:
            raise EvaluationFailure("missing_attribute", message, missing)
        return values

    return read


def _of_class(value: Any, cls: type) -> tuple[Any, ...]:
    if value is None:
        return ()
    if value.__class__ is cls:
        return (value,)
    if isinstance(value, BAG_TYPES):
        return tuple(v for v in value if v.__class__ is cls)
    return ()


# --- function applications ----------------------------------------------------------------


def build_strict(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    """Evaluate every argument, then call the function; literal arguments are inlined."""
    impl = spec.impl
    assert impl is not None
    if len(ops) == 1:
        (a,) = (op.fn for op in ops)
        return lambda request: impl(a(request))
    if len(ops) == 2:
        first, second = ops
        fa, fb, cb = first.fn, second.fn, second.const
        if second.is_const:
            return lambda request: impl(fa(request), cb)
        return lambda request: impl(fa(request), fb(request))
    fns = tuple(op.fn for op in ops)
    return lambda request: impl(*[f(request) for f in fns])


def _build_compare(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    """A comparison with a string or number literal: same-class values skip the checks."""
    impl: BinaryTest | None = spec.impl
    first, second = ops
    const = second.const
    if not second.is_const or const.__class__ not in (str, int, float) or impl is None:
        return build_strict(spec, ops)
    fa, op, cls = first.fn, _COMPARE[spec.name], const.__class__

    def compare(request: Request) -> bool:
        value = fa(request)
        if value.__class__ is cls:
            return op(value, const)
        return impl(value, const)

    return compare


_COMPARE: dict[str, BinaryTest] = {
    "equal": operator.eq,
    "not-equal": operator.ne,
    "less-than": operator.lt,
    "less-than-or-equal": operator.le,
    "greater-than": operator.gt,
    "greater-than-or-equal": operator.ge,
}


def _build_topic(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    """`topic-matches` with a literal filter: a plain topic string goes straight to the
    level match; anything else takes the checks of the reference implementation."""
    impl: BinaryTest | None = spec.impl
    first, second = ops
    if not isinstance(second.const, TopicFilter) or impl is None:
        return build_strict(spec, ops)
    fa, topic_filter, levels = first.fn, second.const, second.const.levels

    def topic_matches(request: Request) -> bool:
        topic = fa(request)
        if topic.__class__ is str and topic and "+" not in topic and "#" not in topic:
            return match_levels(topic.split("/"), levels)
        return impl(topic, topic_filter)

    return topic_matches


def _build_junction(stop: bool) -> Callable[[FunctionSpec, list[Operand]], Compiled]:
    """`and` (stop at False) and `or` (stop at True), XACML style: the stopping value wins
    over a failure of another argument; otherwise the first failure propagates."""

    def build(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
        fns, name, go = tuple(op.fn for op in ops), spec.name, not stop

        def junction(request: Request) -> bool:
            failure = None
            for fn in fns:
                try:
                    value = fn(request)
                    if value is stop or (value is not go and truth(value, name) is stop):
                        return stop
                except EvaluationFailure as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
            return go

        return junction

    return build


def _build_is_present(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    ref = ops[0].expr
    assert isinstance(ref, AttributeRef)
    bag, name = bag_getter(ref.category), ref.name

    def is_present(request: Request) -> bool:
        value = bag(request).get(name)
        return value is not None and not (isinstance(value, BAG_TYPES) and not value)

    return is_present


def _build_set(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    """Set functions against a literal bag: the frozenset is built once; when it holds only
    strings, request values need no boolean markers and membership is a plain lookup. A
    value that cannot be hashed (an object) falls back to the reference implementation."""
    first, second = ops
    if spec.name == "at-least-one-member-of" and first.is_const and not second.is_const:
        first, second = second, first
    if not second.is_const or first.is_const or spec.impl is None:
        return build_strict(spec, ops)
    keys = as_set(second.const)
    plain = all(isinstance(k, str) for k in keys)
    return _SET_FAST[spec.name](first.fn, keys, plain, spec.impl)


def _overlap(fn: Compiled, keys: frozenset[Any], plain: bool, impl: BinaryTest) -> Compiled:
    def overlap(request: Request) -> bool:
        value = fn(request)
        try:
            if isinstance(value, BAG_TYPES):
                return not keys.isdisjoint(value if plain else map(norm, value))
            return (value if plain else norm(value)) in keys
        except TypeError:
            return impl(value, keys)

    return overlap


def _member(fn: Compiled, keys: frozenset[Any], plain: bool, impl: BinaryTest) -> Compiled:
    def member(request: Request) -> bool:
        value = fn(request)
        if isinstance(value, BAG_TYPES):
            value = one(value, "is-in")
            if value is NOTHING:
                return False
        try:
            return (value if plain else norm(value)) in keys
        except TypeError:
            return False

    return member


def _within(fn: Compiled, keys: frozenset[Any], plain: bool, impl: BinaryTest) -> Compiled:
    def within(request: Request) -> bool:
        value = fn(request)
        try:
            return keys.issuperset(members(value) if plain else map(norm, members(value)))
        except TypeError:
            return impl(value, keys)

    return within


def _same(fn: Compiled, keys: frozenset[Any], plain: bool, impl: BinaryTest) -> Compiled:
    return lambda request: as_set(fn(request)) == keys


def _build_n_of(spec: FunctionSpec, ops: list[Operand]) -> Compiled:
    """XACML `n-of`: left to right, stopping once the result is known; a failure counts as
    a value that might have been true."""
    count_fn, fns = ops[0].fn, tuple(op.fn for op in ops[1:])

    def n_of(request: Request) -> bool:
        wanted = count_fn(request)
        if wanted.__class__ is not int:
            raise EvaluationFailure("type_error", "`n-of` counts with an integer")
        if wanted > len(fns):
            raise EvaluationFailure("function_error", f"`n-of` wants {wanted} of {len(fns)}")
        trues = failures = 0
        failure = None
        for done, fn in enumerate(fns, 1):
            if trues >= wanted:
                return True
            try:
                value = fn(request)
                if value is True:
                    trues += 1
                elif value is not False:
                    raise EvaluationFailure("type_error", "`n-of` takes booleans")
            except EvaluationFailure as exc:
                failures += 1
                failure = failure or exc
            if trues + failures + len(fns) - done < wanted:
                return False
        if trues >= wanted:
            return True
        assert failure is not None
        raise failure

    return n_of


def build_higher_order(spec: FunctionSpec, inner: FunctionSpec, ops: list[Operand]) -> Compiled:
    """A XACML higher-order function applying `inner` (its spec given to the implementation)."""
    impl = spec.impl
    assert impl is not None
    fns = tuple(op.fn for op in ops)
    return lambda request: impl(inner, *[f(request) for f in fns])


_F1 = "urn:oasis:names:tc:xacml:1.0:function:"
_SET_FAST = {
    "at-least-one-member-of": _overlap,
    "is-in": _member,
    "subset": _within,
    "set-equals": _same,
}
BUILDERS: dict[str, Callable[[FunctionSpec, list[Operand]], Compiled]] = {
    "and": _build_junction(False),
    "or": _build_junction(True),
    "is-present": _build_is_present,
    **dict.fromkeys(_SET_FAST, _build_set),
    **dict.fromkeys(_COMPARE, _build_compare),
    "topic-matches": _build_topic,
    _F1 + "and": _build_junction(False),
    _F1 + "or": _build_junction(True),
    _F1 + "n-of": _build_n_of,
}
