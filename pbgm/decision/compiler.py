"""The tree walk of the condition compiler: checks every node and builds its closure.

One pass over an `Apply` / `AttributeRef` / `Literal` tree records every static problem
(unknown function, arity, a literal of the wrong kind, an unsafe regular expression...) as
a `Problem` with its JSON path, and, where a node is sound, builds its `Operand` with the
closures of `pbgm.decision.builders`. Literal arguments are resolved here, once: date-times, times
of day, timezones, weekday names, topic filters, regular expressions and function names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pbgm.decision.builders import (
    BUILDERS,
    Operand,
    build_higher_order,
    build_strict,
    constant,
    reference,
)
from pbgm.decision.xtypes import XacmlType, literal_type, type_name
from pbgm.errors import Problem
from pbgm.functions import (
    DATATYPES,
    FUNCTIONS,
    HIGHER_ORDER,
    XACML_FUNCTIONS,
    EvaluationFailure,
    FunctionSpec,
    function_spec,
    kind_of,
    members,
    parse_datetime,
    parse_duration,
    parse_time,
    parse_topic_filter,
    parse_weekdays,
    safe_regex,
    zone,
)
from pbgm.model import CATEGORIES, Apply, AttributeRef, Expr, Literal

MAX_DEPTH = 64

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
_ANY = frozenset({*_SCALARS, "bag", "dynamic"})
_F1 = "urn:oasis:names:tc:xacml:1.0:function:"
_NOT_FOLDED: frozenset[str] = frozenset()
"""XACML functions never evaluated at load time (none: every one is a pure function)."""
_MUST_BE_LITERAL = frozenset({"regex", "function"})


class Compiler:
    """One walk over an expression: `problems` collects what is wrong, nodes build closures."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))

    def expression(self, expr: Any, path: str, depth: int) -> Operand | None:
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

    def reference(self, ref: AttributeRef, path: str) -> Operand | None:
        if ref.data_type is not None:
            if ref.data_type not in DATATYPES:
                self.fail(path, "unknown_data_type", _unknown_type(ref.data_type))
                return None
            if not ref.category or not ref.name:
                self.fail(path, "invalid_attribute", "a designator names a category and an id")
                return None
            return Operand(ref, reference(ref))
        if ref.category not in CATEGORIES or not ref.name:
            self.fail(path, "invalid_attribute", f"`{ref.path}` is not `<category>.<name>`")
            return None
        return Operand(ref, reference(ref))

    def literal(self, lit: Literal, path: str) -> Operand | None:
        value = lit.value
        if isinstance(value, list):
            value = tuple(value)
        if lit.type is not None and lit.type in DATATYPES:
            try:
                value = _xacml_value(lit.type, value)
            except (ValueError, TypeError) as exc:
                self.fail(path, "invalid_literal", str(exc))
                return None
        elif lit.type is not None:
            parser = _LITERAL_TYPES.get(lit.type)
            if parser is None:
                names = ", ".join(f"`{t}`" for t in _LITERAL_TYPES)
                message = f"`{lit.type}` is not among {names} or the XACML data types"
                self.fail(path, "unknown_literal_type", message)
                return None
            try:
                value = _typed(parser, value)
            except (ValueError, TypeError) as exc:
                self.fail(path, "invalid_literal", str(exc))
                return None
        return constant(lit, value)

    def apply(self, expr: Apply, path: str, depth: int) -> Operand | None:
        spec = function_spec(expr.function)
        if spec is None:
            self.fail(path, "unknown_function", _unknown(expr.function))
            return None
        if not spec.min_args <= len(expr.args) <= (spec.max_args or len(expr.args)):
            self.fail(path, "bad_arity", _arity(spec, len(expr.args)))
            return None
        if spec.signature is not None:
            return self.xacml_apply(spec, expr, path, depth)
        before = len(self.problems)
        operands = [
            self.argument(spec, i, arg, f"{path}.args[{i}]", depth)
            for i, arg in enumerate(expr.args)
        ]
        compiled = [op for op in operands if op is not None]
        if len(self.problems) > before or len(compiled) < len(operands):
            return None
        return Operand(expr, BUILDERS.get(spec.name, build_strict)(spec, compiled))

    # --- XACML functions: typed, checked statically, constant calls evaluated once ---------

    def xacml_apply(self, spec: FunctionSpec, expr: Apply, path: str, depth: int) -> Operand | None:
        """A call of a XACML function: every argument compiled, its XACML type checked
        against the signature where it is known (a designator, a typed literal, another
        XACML call); a call of literals only is evaluated now, and a failure then is a
        problem (the policy is refused) rather than an Indeterminate at every decision."""
        if spec.name in HIGHER_ORDER:
            return self.higher_order(spec, expr, path, depth)
        before = len(self.problems)
        operands = [
            self.expression(arg, f"{path}.args[{i}]", depth + 1) for i, arg in enumerate(expr.args)
        ]
        if len(self.problems) > before or any(op is None for op in operands):
            return None
        compiled = [op for op in operands if op is not None]
        assert spec.signature is not None
        proven = True
        for i, arg in enumerate(expr.args):
            found = type_of_expr(arg)
            if found is None:
                proven = False
                continue
            wanted = spec.signature.param(i)
            if type_name(found) != wanted:
                self.fail(f"{path}.args[{i}]", "type_mismatch", _xacml_mismatch(spec, i, found))
        if len(self.problems) > before:
            return None
        impl = spec.raw if proven and spec.raw is not None else spec.impl
        fn = BUILDERS.get(spec.name, build_strict)(replace(spec, impl=impl), compiled)
        if all(op.is_const for op in compiled) and spec.name not in _NOT_FOLDED:
            return self.fold(expr, fn, path)
        return Operand(expr, fn)

    def fold(self, expr: Apply, fn: Any, path: str) -> Operand | None:
        try:
            value = fn(None)
        except EvaluationFailure as exc:
            self.fail(path, "constant_fails", f"this call of literals always fails: {exc.message}")
            return None
        return constant(expr, value)

    def higher_order(
        self, spec: FunctionSpec, expr: Apply, path: str, depth: int
    ) -> Operand | None:
        """`any-of`, `all-of`, ..., `map`: the function named by the first argument (a
        literal XACML function id) applied to the others, typed as §A.3.12 says."""
        first = expr.args[0]
        name = first.value if isinstance(first, Literal) else None
        inner = XACML_FUNCTIONS.get(name) if isinstance(name, str) else None
        if inner is None or inner.name in HIGHER_ORDER or inner.impl is None:
            message = f"`{spec.name}` takes the id of a XACML function first"
            self.fail(f"{path}.args[0]", "invalid_function_argument", message)
            return None
        before = len(self.problems)
        operands = [
            self.expression(arg, f"{path}.args[{i}]", depth + 1)
            for i, arg in enumerate(expr.args[1:], 1)
        ]
        if len(self.problems) > before or any(op is None for op in operands):
            return None
        kind = HIGHER_ORDER[spec.name]
        found = [type_of_expr(arg) for arg in expr.args[1:]]
        problem = check_higher_order(kind, inner, found, spec.name.startswith(_F1))
        if problem is not None:
            self.fail(path, "type_mismatch", problem)
            return None
        fn = build_higher_order(spec, inner, [op for op in operands if op is not None])
        return Operand(expr, fn)

    def argument(
        self, spec: FunctionSpec, index: int, arg: Expr, path: str, depth: int
    ) -> Operand | None:
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
        found = static_kind(arg)
        if found != "dynamic" and found not in _ACCEPTS.get(kind, _ANY):
            self.fail(path, "type_mismatch", _mismatch(spec, kind, found))
        return operand

    def prepare(self, spec: FunctionSpec, kind: str, operand: Operand, path: str) -> Operand | None:
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
        return constant(operand.expr, value)


def _typed(parser: Callable[[str], Any], value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_typed(parser, v) for v in value)
    if not isinstance(value, str):
        raise TypeError(f"a typed literal is a string, not a {kind_of(value)}")
    return parser(value)


def static_kind(expr: Expr) -> str:
    """The kind an expression yields when it is known before evaluation, else `dynamic`."""
    if isinstance(expr, Apply):
        spec = function_spec(expr.function)
        return spec.returns if spec and spec.returns != "value" else "dynamic"
    if isinstance(expr, Literal):
        value = expr.value
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if expr.type:
            return _TYPED_KINDS.get(expr.type, "dynamic")
        return kind_of(value)
    return "dynamic"


# --- messages ----------------------------------------------------------------------------


def _unknown(name: str) -> str:
    names = list(XACML_FUNCTIONS) if name.startswith("urn:") else list(FUNCTIONS)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean `{close[0]}`" if close else ""
    return f"`{name}` is not a function{hint}"


def _unknown_type(uri: str) -> str:
    close = difflib.get_close_matches(uri, list(DATATYPES), n=1)
    hint = f"; did you mean `{close[0]}`" if close else ""
    return f"`{uri}` is not a supported XACML data type{hint}"


def _xacml_value(uri: str, value: Any) -> Any:
    """A literal of a XACML data type: its lexical form read, or a value of its class."""
    if isinstance(value, str):
        return DATATYPES[uri].parse(value)
    cls = DATATYPES[uri].cls
    if value.__class__ is cls:
        return value
    raise TypeError(f"a literal of `{uri}` is written as text")


def _xacml_mismatch(spec: FunctionSpec, index: int, found: XacmlType) -> str:
    assert spec.signature is not None
    wanted = spec.signature.param(index)
    short = spec.name.rsplit(":", 1)[-1]
    got = _article(type_name(found))
    return f"`{short}` expects {_article(wanted)} as argument {index + 1}, got {got}"


def _article(kind: str) -> str:
    return f"a bag of {kind[:-2]}" if kind.endswith("[]") else f"a {kind}"


def type_of_expr(expr: Expr) -> XacmlType | None:
    """The XACML type of an expression when it is known statically: a designator, a
    literal (typed, or a plain string, boolean or number) or a call of a XACML function."""
    if isinstance(expr, AttributeRef):
        return (DATATYPES[expr.data_type].name, True) if expr.data_type in DATATYPES else None
    if isinstance(expr, Literal):
        return literal_type(expr)
    if isinstance(expr, Apply):
        spec = XACML_FUNCTIONS.get(expr.function)
        if spec is None or spec.signature is None:
            return None
        if expr.function in HIGHER_ORDER:
            return _higher_order_type(expr)
        returns = spec.signature.returns
        return (returns.removesuffix("[]"), returns.endswith("[]"))
    return None


def _higher_order_type(expr: Apply) -> XacmlType | None:
    if HIGHER_ORDER[expr.function] != "map":
        return ("boolean", False)
    first = expr.args[0] if expr.args else None
    name = first.value if isinstance(first, Literal) else None
    inner = XACML_FUNCTIONS.get(name) if isinstance(name, str) else None
    if inner is None or inner.signature is None:
        return None
    returns = inner.signature.returns
    return None if returns.endswith("[]") else (returns, True)


def check_higher_order(
    kind: str, inner: FunctionSpec, found: list[XacmlType | None], legacy: bool
) -> str | None:
    """Why the arguments do not fit a higher-order function applying `inner`; None if they do
    (or cannot be known before evaluation)."""
    assert inner.signature is not None
    short = inner.name.rsplit(":", 1)[-1]
    if kind != "map" and inner.signature.returns != "boolean":
        return f"`{kind}` applies a boolean function; `{short}` is not one"
    if inner.signature.returns.endswith("[]"):
        return f"`{kind}` applies a function of single values; `{short}` returns a bag"
    arity = 2 if kind in ("all-of-any", "any-of-all", "all-of-all") else len(found)
    if not inner.min_args <= arity <= (inner.max_args or arity):
        return f"`{short}` cannot take the {arity} argument(s) `{kind}` gives it"
    bags = [i for i, t in enumerate(found) if t is not None and t[1]]
    known = all(t is not None for t in found)
    if kind in ("any-of", "all-of", "map") and known and len(bags) != 1:
        return f"`{kind}` takes exactly one bag after the function"
    if kind in ("all-of-any", "any-of-all", "all-of-all") and known and len(bags) != 2:
        return f"`{kind}` takes two bags after the function"
    for i, t in enumerate(found):
        if t is None:
            continue
        wanted = inner.signature.param(i)
        if t[0] != wanted.removesuffix("[]"):
            got = _article(type_name(t))
            return f"`{short}` takes {_article(wanted)} as argument {i + 1}, got {got}"
    return None


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


_PREPARERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "date-time": (parse_datetime, "invalid_datetime"),
    "time": (parse_time, "invalid_time"),
    "timezone": (zone, "invalid_timezone"),
    "weekdays": (parse_weekdays, "invalid_weekday"),
    "topic-filter": (parse_topic_filter, "invalid_topic_filter"),
    "regex": (safe_regex, "unsafe_regex"),
    "function": (_resolve_function, "invalid_function_argument"),
}
