"""Obligations and advice of rules, policies and policy sets, compiled once.

An obligation (or advice) whose attribute values are all literals is built once,
ready; one with expressions resolves them per request, and an expression that
fails makes the node that carries it Indeterminate (XACML §7.18).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from pbgm.decision.conditions import EvaluationFailure, compile_expression
from pbgm.model import (
    Advice,
    Assignment,
    Effect,
    EvaluationError,
    Expr,
    Literal,
    Obligation,
    ObligationExpression,
    Request,
)

log = logging.getLogger("pbgm.decision.evaluator")

Where = Callable[..., EvaluationError]


def _compile_value(expr: Expr) -> tuple[bool, Any]:
    """(True, value) for a literal known at compile time, else (False, closure)."""
    try:
        compiled = compile_expression(expr)
    except Exception as exc:
        return False, _broken(f"does not compile: {reason(exc)}")
    if isinstance(expr, Literal):
        try:
            return True, compiled(Request())
        except Exception:  # noqa: S110 - evaluated again (and reported) per request
            pass
    return False, compiled


def _broken(message: str) -> Callable[[Request], Any]:
    def fail(request: Request) -> Any:
        raise EvaluationFailure("invalid_policy", message)

    return fail


def reason(exc: Exception) -> str:
    """Why an expression does not compile: the message of a `ValidationError`, else generic."""
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else "invalid expression"


class _Output:
    """One obligation or advice expression, resolved per request unless all literal
    (its `attributes`, then its XACML `assignments`)."""

    __slots__ = ("assignments", "attributes", "id", "kind", "value")

    def __init__(self, item: ObligationExpression, kind: type[Obligation] | type[Advice]) -> None:
        self.id, self.kind = item.id, kind
        compiled = {name: _compile_value(expr) for name, expr in item.attributes.items()}
        self.attributes = tuple((name, fixed, v) for name, (fixed, v) in compiled.items())
        self.assignments = tuple((a, *_compile_value(a.expression)) for a in item.assignments)
        static = all(fixed for _, fixed, _ in (*self.attributes, *self.assignments))
        self.value = self._resolved(None) if static else None

    def _resolved(self, request: Request | None) -> Obligation | Advice:
        attributes = {n: v if fixed else v(request) for n, fixed, v in self.attributes}
        if not self.assignments:
            return self.kind(self.id, MappingProxyType(attributes))
        assignments = tuple(
            Assignment(a.attribute_id, v if fixed else v(request), a.category, a.issuer)
            for a, fixed, v in self.assignments
        )
        return self.kind(self.id, MappingProxyType(attributes), assignments)

    def resolve(self, request: Request) -> Obligation | Advice:
        if self.value is not None:
            return self.value
        return self._resolved(request)


class Outputs:
    """The obligations and advice a node adds to one decision (Permit or Deny).
    `fixed` holds them ready when nothing depends on the request."""

    __slots__ = ("advice", "fixed", "obligations")

    def __init__(self, obligations: Sequence[_Output], advice: Sequence[_Output]) -> None:
        self.obligations, self.advice = tuple(obligations), tuple(advice)
        parts = (*self.obligations, *self.advice)
        self.fixed: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
        if all(o.value is not None for o in parts):
            self.fixed = (
                tuple(o.value for o in self.obligations),
                tuple(a.value for a in self.advice),
            )

    def resolve(self, request: Request, where: Where) -> Any:
        """(obligations, advice), or the EvaluationError that makes the node Indeterminate."""
        if self.fixed is not None:
            return self.fixed
        current = None
        try:
            obligations = tuple((current := o).resolve(request) for o in self.obligations)
            advice = tuple((current := a).resolve(request) for a in self.advice)
        except EvaluationFailure as exc:
            return where(f"{_label(current)}: {exc.message}", exc.code, exc.missing)
        except Exception:
            log.warning("%s crashed", _label(current), exc_info=True)
            return where(f"{_label(current)} failed unexpectedly", "processing_error")
        return obligations, advice


def _label(output: _Output | None) -> str:
    kind = "advice" if output is not None and output.kind is Advice else "obligation"
    return f"{kind} `{output.id if output else ''}`"


def compile_outputs(
    effect: Effect,
    obligations: Sequence[ObligationExpression],
    advice: Sequence[ObligationExpression],
) -> Outputs:
    """The obligations and advice of a node that apply when it decides `effect`
    (one shared `NO_OUTPUTS` for the many nodes without any)."""
    obliged = [_Output(o, Obligation) for o in obligations if o.fulfill_on == effect]
    advised = [_Output(a, Advice) for a in advice if a.fulfill_on == effect]
    return Outputs(obliged, advised) if obliged or advised else NO_OUTPUTS


NO_OUTPUTS = Outputs((), ())
