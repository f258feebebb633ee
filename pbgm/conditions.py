"""The condition compiler: expression trees to Python closures, once, at load time.

`compile_expression` turns an `Apply` / `AttributeRef` / `Literal` tree into a closure
`Request -> value`; `compile_condition` into `Request -> bool`. Nothing is parsed or looked
up per request: function names, literal types, regular expressions, topic filters, times of
day, timezones and weekday names are resolved here, and literal bags become frozensets.
The closures raise `EvaluationFailure`; the evaluator turns it into Indeterminate.

`check_expression` reports every static problem (unknown function, arity, a literal of the
wrong kind, an unsafe regular expression...) as `Problem`s with JSON paths such as
`$.args[1]`; it never raises. The value semantics (bags, absence, types) are documented
in `pbgm.functions`.

Regular expressions are bounded: a literal of at most 256 characters; no backreferences;
no quantifier inside a repeated group (`(a+)+`, `(ab?)*`); no alternatives that may start
with the same character (`(a|ab)`); at most 16 quantifiers; and quantifiers that may claim
the same characters (nothing they cannot match in between, that ends the earlier one)
multiply their choices to at most 64 times the input limit. So `.*a.*`, `\\w+\\d+` and
`a?a?a?a?a?a?a?aaaaaaa` are refused, while `bess-.*`, `.*-pv`, `(on|off)+` and
`/location_\\d+/[a-z0-9]+/.*` (each `/` ends the quantifier before it) are accepted. Against
the 4096-character input limit an accepted pattern is close to linear: a random search over
tens of thousands of accepted patterns and adversarial inputs found none above 40 ms.
"""

from __future__ import annotations

import difflib
import itertools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from re import _constants as sre
from re import _parser as sre_parser
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.functions import (
    BAG_TYPES,
    FUNCTIONS,
    MAX_REGEX_INPUT,
    NOTHING,
    EvaluationFailure,
    FunctionSpec,
    TopicFilter,
    as_set,
    kind_of,
    match_levels,
    members,
    norm,
    one,
    parse_datetime,
    parse_duration,
    parse_time,
    parse_topic_filter,
    parse_weekdays,
    truth,
    zone,
)
from pbgm.model import CATEGORIES, Apply, AttributeRef, Expr, Literal, Request

__all__ = [
    "Compiled",
    "EvaluationFailure",
    "check_condition",
    "check_expression",
    "compile_condition",
    "compile_expression",
]

Compiled = Callable[[Request], Any]
MAX_DEPTH = 64
MAX_PATTERN = 256

_NOT_CONST: Any = object()
_LITERAL_TYPES = {"datetime": parse_datetime, "time": parse_time, "duration": parse_duration}
_TYPED_KINDS = {"datetime": "date-time", "time": "time", "duration": "duration"}
_SCALARS = frozenset({"boolean", "number", "string", "date-time", "time", "duration"})
_ACCEPTS = {
    "boolean": {"boolean"},
    "number": {"number"},
    "string": {"string"},
    "value": _SCALARS,
    "orderable": _SCALARS - {"boolean"},
    "arithmetic": {"number", "date-time", "duration", "string"},
    "bag": _SCALARS | {"bag"},
    "date-time": {"date-time", "string"},
    "time": {"time", "string"},
    "weekdays": {"string", "bag"},
    "timezone": {"string"},
    "topic-filter": {"string"},
    "regex": {"string"},
    "function": {"string"},
}
_MUST_BE_LITERAL = frozenset({"regex", "function"})


# --- public API -------------------------------------------------------------------


def compile_expression(expr: Expr) -> Compiled:
    """A closure computing `expr` for a request; `ValidationError` listing every problem."""
    return _compile(expr, condition=False)


def compile_condition(expr: Expr | None) -> Callable[[Request], bool]:
    """A closure deciding a rule condition: None is always true; the result is a boolean."""
    if expr is None:
        return _always_true
    fn = _compile(expr, condition=True)
    if isinstance(expr, Apply) and FUNCTIONS[expr.function].returns == "boolean":
        return fn  # every boolean function returns a real bool
    if isinstance(expr, Literal):
        value = truth(expr.value, "condition")
        return lambda request: value
    return lambda request: truth(fn(request), "condition")


def check_expression(expr: Expr, path: str = "$") -> list[Problem]:
    """Every static problem of `expr`; never raises."""
    return _check(expr, path, condition=False)[1]


def check_condition(expr: Expr, path: str = "$") -> list[Problem]:
    """`check_expression`, plus: the expression must yield a boolean."""
    return _check(expr, path, condition=True)[1]


def _compile(expr: Expr, *, condition: bool) -> Compiled:
    operand, problems = _check(expr, "$", condition=condition)
    if problems or operand is None:
        raise ValidationError(problems)
    return operand.fn


def _check(expr: Expr, path: str, *, condition: bool) -> tuple[_Operand | None, list[Problem]]:
    compiler = _Compiler()
    try:
        operand = compiler.expression(expr, path, 0)
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops well before
        operand = None
        compiler.fail(path, "expression_too_deep", "the expression is nested too deeply")
    kind = _static_kind(expr)
    if isinstance(expr, Apply) and expr.function in FUNCTIONS:
        kind = FUNCTIONS[expr.function].returns
    if condition and operand is not None and kind not in ("boolean", "dynamic"):
        found = "a number, date-time or duration" if kind == "value" else f"a {kind}"
        compiler.fail(path, "type_mismatch", f"a condition must be a boolean, not {found}")
    return operand, compiler.problems


def _always_true(request: Request) -> bool:
    return True


# --- the compiler ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Operand:
    expr: Expr
    fn: Compiled
    const: Any = _NOT_CONST

    @property
    def is_const(self) -> bool:
        return self.const is not _NOT_CONST


class _Compiler:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))

    def expression(self, expr: Any, path: str, depth: int) -> _Operand | None:
        if depth > MAX_DEPTH:
            self.fail(path, "expression_too_deep", f"expressions nest at most {MAX_DEPTH} deep")
            return None
        if isinstance(expr, Apply):
            return self.apply(expr, path, depth)
        if isinstance(expr, AttributeRef):
            return self.reference(expr, path)
        if isinstance(expr, Literal):
            return self.literal(expr, path)
        self.fail(path, "invalid_expression", "expected an attribute, a function or a value")
        return None

    def reference(self, ref: AttributeRef, path: str) -> _Operand | None:
        if ref.category not in CATEGORIES or not ref.name:
            self.fail(path, "invalid_attribute", f"`{ref.path}` is not `<category>.<name>`")
            return None
        return _Operand(ref, _reference(ref))

    def literal(self, lit: Literal, path: str) -> _Operand | None:
        value = lit.value
        if isinstance(value, list):
            value = tuple(value)
        if lit.type is not None:
            parser = _LITERAL_TYPES.get(lit.type)
            if parser is None:
                names = ", ".join(f"`{t}`" for t in _LITERAL_TYPES)
                self.fail(path, "unknown_literal_type", f"`{lit.type}` is not among {names}")
                return None
            try:
                value = _typed(parser, value)
            except (ValueError, TypeError) as exc:
                self.fail(path, "invalid_literal", str(exc))
                return None
        return _constant(lit, value)

    def apply(self, expr: Apply, path: str, depth: int) -> _Operand | None:
        spec = FUNCTIONS.get(expr.function)
        if spec is None:
            self.fail(path, "unknown_function", _unknown(expr.function))
            return None
        if not spec.min_args <= len(expr.args) <= (spec.max_args or len(expr.args)):
            self.fail(path, "bad_arity", _arity(spec, len(expr.args)))
            return None
        before = len(self.problems)
        operands = [
            self.argument(spec, i, arg, f"{path}.args[{i}]", depth)
            for i, arg in enumerate(expr.args)
        ]
        if len(self.problems) > before or any(op is None for op in operands):
            return None
        return _Operand(expr, _BUILDERS.get(spec.name, _build_strict)(spec, operands))

    def argument(
        self, spec: FunctionSpec, index: int, arg: Expr, path: str, depth: int
    ) -> _Operand | None:
        kind = spec.param(index)
        if kind == "attribute" and not isinstance(arg, AttributeRef):
            self.fail(path, "expected_attribute", f"`{spec.name}` takes an attribute reference")
            return None
        if kind in _MUST_BE_LITERAL and not isinstance(arg, Literal):
            self.fail(path, "expected_literal", f"`{spec.name}` takes a literal {kind} here")
            return None
        operand = self.expression(arg, path, depth + 1)
        if operand is None or operand.is_const:
            return operand and self.prepare(spec, kind, operand, path)
        found = _static_kind(arg)
        if found != "dynamic" and found not in _ACCEPTS.get(kind, _ANY):
            self.fail(path, "type_mismatch", _mismatch(spec, kind, found))
        return operand

    def prepare(
        self, spec: FunctionSpec, kind: str, operand: _Operand, path: str
    ) -> _Operand | None:
        """Check a literal argument and turn it into the form the function uses."""
        value = operand.const
        found = kind_of(value)
        if found == "bag" and kind not in ("bag", "weekdays"):
            if len(value) != 1:
                self.fail(path, "not_single_value", f"`{spec.name}` expects one value here")
                return None
            value = next(iter(value))
            found = kind_of(value)
        if found in ("null", "object"):
            self.fail(path, "invalid_literal", f"`{spec.name}` cannot take a {found} literal")
            return None
        if kind in _PREPARERS and (found == "string" or kind == "weekdays"):
            parse, code = _PREPARERS[kind]
            try:
                value = parse(value)
            except ValueError as exc:
                self.fail(path, getattr(exc, "code", code), str(exc))
                return None
        elif found not in _ACCEPTS.get(kind, _ANY):
            self.fail(path, "type_mismatch", _mismatch(spec, kind, found))
            return None
        if kind == "bag" and not _hashable(value):
            self.fail(path, "invalid_literal", "a bag holds strings, numbers and booleans")
            return None
        return _constant(operand.expr, value)


_ANY = frozenset({*_SCALARS, "bag", "dynamic"})


def _typed(parser: Callable[[str], Any], value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_typed(parser, v) for v in value)
    if not isinstance(value, str):
        raise TypeError(f"a typed literal is a string, not a {kind_of(value)}")
    return parser(value)


def _static_kind(expr: Expr) -> str:
    """The kind an expression yields when it is known before evaluation, else `dynamic`."""
    if isinstance(expr, Apply):
        spec = FUNCTIONS.get(expr.function)
        return spec.returns if spec and spec.returns != "value" else "dynamic"
    if isinstance(expr, Literal):
        value = expr.value
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if expr.type:
            return _TYPED_KINDS.get(expr.type, "dynamic")
        return kind_of(value)
    return "dynamic"


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(FUNCTIONS), n=1)
    hint = f"; did you mean `{close[0]}`" if close else ""
    return f"`{name}` is not a function{hint}"


def _arity(spec: FunctionSpec, count: int) -> str:
    if spec.max_args is None:
        wanted = f"at least {spec.min_args}"
    elif spec.min_args == spec.max_args:
        wanted = str(spec.min_args)
    else:
        wanted = f"{spec.min_args} to {spec.max_args}"
    return f"`{spec.name}` takes {wanted} argument(s), got {count}"


_WANTED = {
    "value": "a string, number, boolean, date-time, time or duration",
    "orderable": "a number, string, date-time, time or duration",
    "arithmetic": "a number, date-time or duration",
    "bag": "a bag or a single value",
    "weekdays": "day names",
}


def _mismatch(spec: FunctionSpec, kind: str, found: str) -> str:
    return f"`{spec.name}` expects {_WANTED.get(kind, f'a {kind}')} here, got a {found}"


# --- leaves ------------------------------------------------------------------------------


def _constant(expr: Expr, value: Any) -> _Operand:
    return _Operand(expr, lambda request: value, value)


def _reference(ref: AttributeRef) -> Compiled:
    """Read one attribute: a missing or null value is absent."""
    bag, name = attrgetter(ref.category), ref.name
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


# --- literal preparation -----------------------------------------------------------------


def _resolve_function(name: str) -> FunctionSpec:
    """The target of `any-of` / `all-of`: a strict two-argument boolean function."""
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise ValueError(_unknown(name))
    fits = spec.min_args <= 2 and (spec.max_args is None or spec.max_args >= 2)
    literal_only = {spec.param(0), spec.param(1)} & (_MUST_BE_LITERAL | {"attribute"})
    if spec.impl is None or spec.returns != "boolean" or not fits or literal_only:
        raise ValueError(f"`{name}` cannot be applied to (value, member) pairs")
    return spec


def _hashable(value: Any) -> bool:
    try:
        hash(tuple(members(value)))
    except TypeError:
        return False
    return True


class _InvalidRegex(ValueError):
    code = "invalid_regex"


def _safe_regex(pattern: str) -> re.Pattern[str]:
    """Compile a pattern after checking it cannot backtrack catastrophically."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a regular expression has at most {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
        parsed = sre_parser.parse(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise _InvalidRegex(f"`{pattern}` is not a regular expression: {exc}") from None
    steps: list[_Step] = []
    _walk(parsed, False, steps, True)
    _check_quantifiers(steps)
    return compiled


_PREPARERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "date-time": (parse_datetime, "invalid_datetime"),
    "time": (parse_time, "invalid_time"),
    "timezone": (zone, "invalid_timezone"),
    "weekdays": (parse_weekdays, "invalid_weekday"),
    "topic-filter": (parse_topic_filter, "invalid_topic_filter"),
    "regex": (_safe_regex, "unsafe_regex"),
    "function": (_resolve_function, "invalid_function_argument"),
}


# --- regular-expression safety -------------------------------------------------------------

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


@dataclass(frozen=True, slots=True)
class _Chars:
    """What characters a piece of a pattern may match: a small set, or a one-char regex."""

    finite: frozenset[str] | None
    test: str

    def overlaps(self, other: _Chars) -> bool:
        if self.finite is not None and other.finite is not None:
            return not self.finite.isdisjoint(other.finite)
        if self.finite is None and other.finite is None:
            return True
        small, broad = (self, other) if self.finite is not None else (other, self)
        probe = re.compile(broad.test, re.IGNORECASE | re.DOTALL)
        return any(probe.fullmatch(c) for c in small.finite or ())


_BROAD = _Chars(None, ".")
_NONE = _Chars(frozenset(), "[^\\s\\S]")


def _cased(chars: Any) -> frozenset[str]:
    return frozenset(v for c in chars for v in (c, c.lower(), c.upper()) if len(v) == 1)


def _union(parts: list[_Chars]) -> _Chars:
    if all(p.finite is not None for p in parts):
        finite = frozenset().union(*(p.finite or () for p in parts))
        return _Chars(finite, "|".join(p.test for p in parts) or _NONE.test)
    return _Chars(None, "(?:" + "|".join(p.test for p in parts) + ")")


def _atom(op: Any, av: Any) -> _Chars:
    if op is sre.LITERAL:
        return _Chars(_cased(chr(av)), re.escape(chr(av)))
    if op is sre.NOT_LITERAL:
        return _Chars(None, f"[^{re.escape(chr(av))}]")
    if op is sre.IN:
        return _in_class(av)
    return _BROAD


def _in_class(items: list[Any]) -> _Chars:
    text, chars, finite = [], set(), True
    for op, av in items:
        if op is sre.NEGATE:
            text.insert(0, "^")
            finite = False
        elif op is sre.LITERAL:
            text.append(re.escape(chr(av)))
            chars.add(chr(av))
        elif op is sre.RANGE:
            text.append(f"{re.escape(chr(av[0]))}-{re.escape(chr(av[1]))}")
            finite = finite and av[1] - av[0] < MAX_PATTERN
            chars.update(map(chr, range(av[0], av[1] + 1)) if finite else ())
        else:
            text.append(_CATEGORIES.get(getattr(av, "name", ""), r"\s\S"))
            finite = False
    return _Chars(_cased(chars) if finite else None, "[" + "".join(text) + "]")


def _chars_of(items: Any) -> _Chars:
    """Every character a sub-pattern may consume."""
    parts = []
    for op, av in items:
        if op in _REPEATS:
            parts.append(_chars_of(av[2]))
        elif op is sre.BRANCH:
            parts.extend(_chars_of(b) for b in av[1])
        elif op in (sre.SUBPATTERN, sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP):
            parts.append(_chars_of(av if op is sre.ATOMIC_GROUP else av[-1]))
        elif op is not sre.AT:
            parts.append(_atom(op, av))
    return _union(parts) if parts else _NONE


def _first_of(items: Any) -> _Chars:
    """The characters a sub-pattern may start with; broad when it may match nothing."""
    for op, av in items:
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        if op in _REPEATS:
            return _BROAD if av[0] == 0 else _first_of(av[2])
        if op is sre.BRANCH:
            return _union([_first_of(b) for b in av[1]])
        if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            return _first_of(av if op is sre.ATOMIC_GROUP else av[-1])
        return _atom(op, av)
    return _BROAD


@dataclass(frozen=True, slots=True)
class _Step:
    """One step of a pattern read left to right: a quantifier with its number of choices
    (`weight`, 0 for none), or a character every match consumes (`mandatory`), which stops
    the quantifiers on either side from trading characters."""

    chars: _Chars
    weight: int
    mandatory: bool


_ATOMS = (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN)
_MAX_QUANTIFIERS = 16
_BUDGET = 64 * (MAX_REGEX_INPUT + 1)


def _walk(items: Any, repeated: bool, steps: list[_Step] | None, mandatory: bool) -> None:
    """Refuse backreferences, nested quantifiers and ambiguous alternatives; record steps."""
    for op, av in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise ValueError("backreferences are not allowed in a regular expression")
        if op in _ATOMS and steps is not None and mandatory:
            steps.append(_Step(_atom(op, av), 0, True))
        elif op in _REPEATS:
            _walk_repeat(av, repeated, steps, mandatory)
        elif op is sre.BRANCH:
            firsts = [_first_of(b) for b in av[1]]
            if any(a.overlaps(b) for a, b in itertools.combinations(firsts, 2)):
                raise ValueError("alternatives in a regular expression must start differently")
            for branch in av[1]:
                _walk(branch, repeated, steps, False)
        elif op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
            _walk(av if op is sre.ATOMIC_GROUP else av[-1], repeated, steps, mandatory)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            _walk(av[-1], repeated, steps, False)


def _walk_repeat(av: Any, repeated: bool, steps: list[_Step] | None, mandatory: bool) -> None:
    low, high, body = av
    if low == high:
        _walk(body, repeated or high > 1, steps, mandatory and low > 0)
        return
    if repeated:
        raise ValueError("a quantifier inside a repeated group is not allowed")
    if steps is not None:
        weight = min(high - low, MAX_REGEX_INPUT) + 1
        steps.append(_Step(_chars_of(body), weight, mandatory and low > 0))
    _walk(body, high > 1, steps if high == 1 else None, False)


def _check_quantifiers(steps: list[_Step]) -> None:
    """Quantifiers that may trade characters multiply the ways a failing match is tried;
    the heaviest such group must stay within `_BUDGET` choices."""
    quantifiers = [i for i, step in enumerate(steps) if step.weight]
    if len(quantifiers) > _MAX_QUANTIFIERS:
        raise ValueError(f"a regular expression has at most {_MAX_QUANTIFIERS} quantifiers")
    if math.prod(steps[i].weight for i in quantifiers) <= _BUDGET:
        return
    trade = {pair for pair in itertools.combinations(quantifiers, 2) if _may_trade(steps, *pair)}

    def grow(weight: int, candidates: list[int]) -> None:
        if weight > _BUDGET:
            raise ValueError("the quantifiers of this regular expression may backtrack too long")
        for k, i in enumerate(candidates):
            grow(weight * steps[i].weight, [j for j in candidates[k + 1 :] if (i, j) in trade])

    grow(1, quantifiers)


def _may_trade(steps: list[_Step], i: int, j: int) -> bool:
    """Whether quantifiers `i` < `j` may claim the same characters: not when `i` cannot
    match a character that must come between them, which therefore ends `i`'s run."""
    a, b = steps[i].chars, steps[j].chars
    if not a.overlaps(b):
        return False
    return not any(step.mandatory and not step.chars.overlaps(a) for step in steps[i + 1 : j])


# --- builders: closures for function applications ------------------------------------------


def _build_strict(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
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


def _build_compare(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
    """A comparison with a string or number literal: same-class values skip the checks."""
    impl, (first, second) = spec.impl, ops
    const = second.const
    if not second.is_const or const.__class__ not in (str, int, float) or impl is None:
        return _build_strict(spec, ops)
    fa, op, cls = first.fn, _COMPARE[spec.name], const.__class__

    def compare(request: Request) -> bool:
        value = fa(request)
        if value.__class__ is cls:
            return op(value, const)
        return impl(value, const)

    return compare


_COMPARE = {
    "equal": operator.eq,
    "not-equal": operator.ne,
    "less-than": operator.lt,
    "less-than-or-equal": operator.le,
    "greater-than": operator.gt,
    "greater-than-or-equal": operator.ge,
}


def _build_topic(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
    """`topic-matches` with a literal filter: a plain topic string goes straight to the
    level match; anything else takes the checks of the reference implementation."""
    impl, (first, second) = spec.impl, ops
    if not isinstance(second.const, TopicFilter) or impl is None:
        return _build_strict(spec, ops)
    fa, topic_filter, levels = first.fn, second.const, second.const.levels

    def topic_matches(request: Request) -> bool:
        topic = fa(request)
        if topic.__class__ is str and topic and "+" not in topic and "#" not in topic:
            return match_levels(topic.split("/"), levels)
        return impl(topic, topic_filter)

    return topic_matches


def _build_junction(stop: bool) -> Callable[[FunctionSpec, list[_Operand]], Compiled]:
    """`and` (stop at False) and `or` (stop at True), XACML style: the stopping value wins
    over a failure of another argument; otherwise the first failure propagates."""

    def build(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
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


def _build_is_present(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
    ref = ops[0].expr
    assert isinstance(ref, AttributeRef)
    bag, name = attrgetter(ref.category), ref.name

    def is_present(request: Request) -> bool:
        value = bag(request).get(name)
        return value is not None and not (isinstance(value, BAG_TYPES) and not value)

    return is_present


def _build_set(spec: FunctionSpec, ops: list[_Operand]) -> Compiled:
    """Set functions against a literal bag: the frozenset is built once; when it holds only
    strings, request values need no boolean markers and membership is a plain lookup. A
    value that cannot be hashed (an object) falls back to the reference implementation."""
    first, second = ops
    if spec.name == "at-least-one-member-of" and first.is_const and not second.is_const:
        first, second = second, first
    if not second.is_const or first.is_const or spec.impl is None:
        return _build_strict(spec, ops)
    keys = as_set(second.const)
    plain = all(isinstance(k, str) for k in keys)
    return _SET_FAST[spec.name](first.fn, keys, plain, spec.impl)


def _overlap(fn: Compiled, keys: frozenset, plain: bool, impl: Callable) -> Compiled:
    def overlap(request: Request) -> bool:
        value = fn(request)
        try:
            if isinstance(value, BAG_TYPES):
                return not keys.isdisjoint(value if plain else map(norm, value))
            return (value if plain else norm(value)) in keys
        except TypeError:
            return impl(value, keys)

    return overlap


def _member(fn: Compiled, keys: frozenset, plain: bool, impl: Callable) -> Compiled:
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


def _within(fn: Compiled, keys: frozenset, plain: bool, impl: Callable) -> Compiled:
    def within(request: Request) -> bool:
        value = fn(request)
        try:
            return keys.issuperset(members(value) if plain else map(norm, members(value)))
        except TypeError:
            return impl(value, keys)

    return within


def _same(fn: Compiled, keys: frozenset, plain: bool, impl: Callable) -> Compiled:
    return lambda request: as_set(fn(request)) == keys


_SET_FAST = {
    "at-least-one-member-of": _overlap,
    "is-in": _member,
    "subset": _within,
    "set-equals": _same,
}
_BUILDERS: dict[str, Callable[[FunctionSpec, list[_Operand]], Compiled]] = {
    "and": _build_junction(False),
    "or": _build_junction(True),
    "is-present": _build_is_present,
    **dict.fromkeys(_SET_FAST, _build_set),
    **dict.fromkeys(_COMPARE, _build_compare),
    "topic-matches": _build_topic,
}
