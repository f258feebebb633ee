"""The condition compiler: expression trees to Python closures, once, at load time.

`compile_expression` turns an `Apply` / `AttributeRef` / `Literal` tree into a closure
`Request -> value`; `compile_condition` into `Request -> bool`. Nothing is parsed or looked
up per request: function names, literal types, regular expressions, topic filters, times of
day, timezones and weekday names are resolved here, and literal bags become frozensets.
The closures raise `EvaluationFailure`; the evaluator turns it into Indeterminate.

`check_expression` reports every static problem (unknown function, arity, a literal of the
wrong kind, an unsafe regular expression...) as `Problem`s with JSON paths such as
`$.args[1]`; it never raises. `check_condition` also refuses an expression that can never
yield a boolean. The value semantics (bags, absence, types) are documented in
`pbgm.functions`.

The work is done in `pbgm.decision.compiler`, which walks and checks the tree, and
`pbgm.decision.builders`, which makes the closures; `pbgm.functions.regex` bounds regular
expressions (its docstring says which patterns are accepted).
"""

from __future__ import annotations

from collections.abc import Callable

from pbgm.decision.builders import Compiled, Operand
from pbgm.decision.compiler import Compiler, static_kind, type_of_expr
from pbgm.decision.xtypes import type_name
from pbgm.errors import Problem, ValidationError
from pbgm.functions import EvaluationFailure, function_spec, truth
from pbgm.model import Apply, Expr, Literal, Request

__all__ = [
    "Compiled",
    "EvaluationFailure",
    "check_condition",
    "check_expression",
    "compile_condition",
    "compile_expression",
]


# --- public API -------------------------------------------------------------------


def compile_expression(expr: Expr) -> Compiled:
    """A closure computing `expr` for a request; `ValidationError` listing every problem."""
    return _compile(expr, condition=False)


def compile_condition(expr: Expr | None) -> Callable[[Request], bool]:
    """A closure deciding a rule condition: None is always true; the result is a boolean."""
    if expr is None:
        return _always_true
    fn = _compile(expr, condition=True)
    spec = function_spec(expr.function) if isinstance(expr, Apply) else None
    if spec is not None and spec.returns == "boolean":
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


def _check(expr: Expr, path: str, *, condition: bool) -> tuple[Operand | None, list[Problem]]:
    compiler = Compiler()
    try:
        operand = compiler.expression(expr, path, 0)
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops well before
        operand = None
        compiler.fail(path, "expression_too_deep", "the expression is nested too deeply")
    kind = static_kind(expr)
    spec = function_spec(expr.function) if isinstance(expr, Apply) else None
    if spec is not None:
        kind = spec.returns
    xacml = type_of_expr(expr)
    if xacml is not None and xacml != ("boolean", False):
        kind = type_name(xacml)
    if condition and operand is not None and kind not in ("boolean", "dynamic"):
        found = "a number, date-time or duration" if kind == "value" else f"a {kind}"
        compiler.fail(path, "type_mismatch", f"a condition must be a boolean, not {found}")
    return operand, compiler.problems


def _always_true(request: Request) -> bool:
    return True
