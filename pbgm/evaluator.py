"""Compiled rules and policies: targets, conditions, obligations and an index,
prepared once and evaluated many times.

Matching: a `Match` holds when any request value of its attribute (a scalar or
a bag) is among its values; a missing (or null) attribute does not match.
A value that cannot equal a literal (a mapping, a list inside a bag) simply does
not match, so targets never fail. Booleans are not numbers: `true` does not
match `1`.

Everything that can be prepared is prepared at compile time: conditions and
obligation expressions become closures (`pbgm.conditions`), literal obligations
become ready `Obligation` objects, results without obligations are shared, and
a `CandidateIndex` maps the most selective equality of each target to the
children it selects, so deciding costs the same for 100 or 100,000 policies.

A rule or policy that does not compile (an unknown function, an unknown
combining algorithm) still loads: it evaluates to Indeterminate with the code
`invalid_policy` whenever it applies, so a broken Deny never becomes a Permit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from pbgm.combining import (
    DENY,
    NOT_APPLICABLE_RESULT,
    PERMIT,
    Combining,
    Result,
    failed,
    indeterminate_of,
)
from pbgm.conditions import EvaluationFailure, compile_condition, compile_expression
from pbgm.model import (
    Advice,
    Effect,
    EvaluationError,
    Expr,
    Literal,
    Match,
    Obligation,
    ObligationExpression,
    Policy,
    Request,
    Rule,
    Target,
)

log = logging.getLogger(__name__)

INDEX_THRESHOLD = 8
"""Lists of more children than this get a target index; shorter ones are scanned."""

PREFERRED_KEYS = ("resource.id", "resource.policy_id", "resource.asset_id")
"""Index keys tried first: they usually select one policy among many."""

_BAGS = (list, tuple, set, frozenset)
_EFFECT_CODE = {Effect.PERMIT: PERMIT, Effect.DENY: DENY}
_NO_OUTPUTS: tuple[tuple[Obligation, ...], tuple[Advice, ...]] = ((), ())

Where = Callable[..., EvaluationError]

# --- matching --------------------------------------------------------------------


def _needs_strict(values: frozenset[Any]) -> bool:
    """Python says `True == 1`; only sets holding booleans, 0 or 1 need the slow check."""
    return any(type(v) is bool or (type(v) in (int, float) and v in (0, 1)) for v in values)


def _holds_one(values: frozenset[Any], item: Any, strict: bool) -> bool:
    try:
        if item not in values:
            return False
    except TypeError:  # unhashable: equals no literal
        return False
    return not strict or any(
        v == item and (type(v) is bool) is (type(item) is bool) for v in values
    )


def _any_holds(values: frozenset[Any], bag: Any, strict: bool) -> bool:
    return any(_holds_one(values, item, strict) for item in bag)


def compile_match(match: Match) -> Callable[[Request], bool]:
    get_bag, name, values = attrgetter(match.category), match.name, match.values
    strict = _needs_strict(values)

    def holds(request: Request) -> bool:
        value = get_bag(request).get(name)
        if value is None:
            return False
        if isinstance(value, _BAGS):
            return _any_holds(values, value, strict)
        if strict:
            return _holds_one(values, value, strict)
        try:
            return value in values
        except TypeError:  # unhashable: equals no literal
            return False

    return holds


def compile_target(target: Target) -> Callable[[Request], bool] | None:
    """A predicate for the target, or None for the empty target (always matches)."""
    matchers = tuple(compile_match(m) for m in target.matches)
    if not matchers:
        return None
    if len(matchers) == 1:
        return matchers[0]

    def holds(request: Request) -> bool:
        for matcher in matchers:  # noqa: SIM110 - a loop beats all() on the hot path
            if not matcher(request):
                return False
        return True

    return holds


def index_key(matches: Sequence[Match]) -> Match | None:
    """The match to index a target by: a preferred id, else the fewest values."""
    for path in PREFERRED_KEYS:
        for match in matches:
            if match.path == path:
                return match
    return min(matches, key=lambda m: len(m.values), default=None)


class CandidateIndex:
    """Maps attribute values to the children whose target may match them.

    `candidates` returns a superset of the matching children in their original
    order (first-applicable and only-one-applicable depend on it); each
    candidate still checks its whole target.
    """

    def __init__(self, children: Sequence[Any], targets: Sequence[Sequence[Match]]) -> None:
        self._children = tuple(children)
        always: list[int] = []
        tables: dict[tuple[str, str], dict[Any, list[int]]] = {}
        for position, matches in enumerate(targets):
            key = index_key(matches)
            if key is None:
                always.append(position)
                continue
            table = tables.setdefault((key.category, key.name), {})
            for value in key.values:
                table.setdefault(value, []).append(position)
        self._always = tuple(always)
        self._tables = tuple(
            (attrgetter(category), name, {v: self._entry(p) for v, p in table.items()})
            for (category, name), table in tables.items()
        )

    def _entry(self, positions: list[int]) -> tuple[tuple[int, ...], tuple[Any, ...]]:
        return tuple(positions), tuple(self._children[p] for p in positions)

    def candidates(self, request: Request) -> Sequence[Any]:
        hits = []
        for get_bag, name, table in self._tables:
            value = get_bag(request).get(name)
            if value is None:
                continue
            for item in value if isinstance(value, _BAGS) else (value,):
                try:
                    hit = table.get(item)
                except TypeError:
                    continue
                if hit is not None:
                    hits.append(hit)
        if not self._always:
            if not hits:
                return ()
            if len(hits) == 1:
                return hits[0][1]
        positions = set(self._always)
        for hit in hits:
            positions.update(hit[0])
        return [self._children[p] for p in sorted(positions)]


# --- obligations and advice ----------------------------------------------------------


def _compile_value(expr: Expr) -> tuple[bool, Any]:
    """(True, value) for a literal known at compile time, else (False, closure)."""
    try:
        compiled = compile_expression(expr)
    except Exception as exc:
        return False, _broken(f"does not compile: {_reason(exc)}")
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


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else "invalid expression"


class _Output:
    """One obligation or advice expression, resolved per request unless all literal."""

    __slots__ = ("attributes", "id", "kind", "value")

    def __init__(self, item: ObligationExpression, kind: type[Obligation] | type[Advice]) -> None:
        self.id, self.kind = item.id, kind
        compiled = {name: _compile_value(expr) for name, expr in item.attributes.items()}
        self.attributes = tuple((name, fixed, v) for name, (fixed, v) in compiled.items())
        static = all(fixed for _, fixed, _ in self.attributes)
        self.value = self._build({n: v for n, _, v in self.attributes}) if static else None

    def _build(self, attributes: dict[str, Any]) -> Obligation | Advice:
        return self.kind(self.id, MappingProxyType(attributes))

    def resolve(self, request: Request) -> Obligation | Advice:
        if self.value is not None:
            return self.value
        return self._build({n: v if fixed else v(request) for n, fixed, v in self.attributes})


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
            return where(f"{_label(current)}: {exc.message}", exc.code)
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
    """The obligations and advice of a node that apply when it decides `effect`."""
    return Outputs(
        [_Output(o, Obligation) for o in obligations if o.fulfill_on == effect],
        [_Output(a, Advice) for a in advice if a.fulfill_on == effect],
    )


# --- rules -------------------------------------------------------------------------------

_CACHE_SIZE = 4096
_conditions: dict[str, Callable[[Request], bool]] = {}


def _compile_condition(condition: Expr) -> Callable[[Request], bool]:
    """`compile_condition`, shared between equal conditions (grant sets repeat a few
    conditions many times). Keyed by `repr`, which tells `true` from `1`."""
    key = repr(condition)
    compiled = _conditions.get(key)
    if compiled is None:
        compiled = compile_condition(condition)
        if len(_conditions) >= _CACHE_SIZE:
            _conditions.clear()
        _conditions[key] = compiled
    return compiled


class CompiledRule:
    """A rule ready to evaluate: NotApplicable, its effect, or Indeterminate{effect}."""

    __slots__ = (
        "condition",
        "effect",
        "failure",
        "id",
        "outputs",
        "policy_id",
        "result",
        "target",
        "target_matches",
    )

    def __init__(self, rule: Rule, policy_id: str) -> None:
        self.id, self.policy_id = rule.id, policy_id
        self.effect = _EFFECT_CODE[rule.effect]
        self.target_matches = rule.target.matches
        self.target = compile_target(rule.target)
        self.failure: EvaluationError | None = None
        self.condition = self._compile_condition(rule.condition)
        outputs = compile_outputs(rule.effect, rule.obligations, rule.advice)
        self.outputs = None if outputs.fixed is not None else outputs
        self.result = Result(self.effect, self.id, *(outputs.fixed or _NO_OUTPUTS))

    def where(self, message: str, code: str = "invalid_policy") -> EvaluationError:
        return EvaluationError(code, message, self.policy_id or None, self.id)

    def _compile_condition(self, condition: Expr | None) -> Callable[[Request], bool] | None:
        if condition is None:
            return None
        try:
            return _compile_condition(condition)
        except Exception as exc:
            self.failure = self.where(f"condition does not compile: {_reason(exc)}")
            return None

    def applies(self, request: Request, now: datetime) -> bool:
        return self.target is None or self.target(request)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESULT
        if self.failure is not None:
            return self._fail(self.failure)
        if self.condition is not None:
            try:
                if not self.condition(request):
                    return NOT_APPLICABLE_RESULT
            except EvaluationFailure as exc:
                return self._fail(self.where(exc.message, exc.code))
            except Exception:
                log.warning("condition of rule %r crashed", self.id, exc_info=True)
                return self._fail(self.where("condition failed unexpectedly", "processing_error"))
        if self.outputs is None:
            return self.result
        resolved = self.outputs.resolve(request, self.where)
        if isinstance(resolved, EvaluationError):
            return self._fail(resolved)
        return Result(self.effect, self.id, *resolved)

    def _fail(self, error: EvaluationError) -> Result:
        return failed(indeterminate_of(self.effect), self.id, error)


# --- policies (policy sets are in pbgm.pdp) -------------------------------------------


def combining_parts(
    children: Sequence[Any],
    obligations: Sequence[ObligationExpression],
    advice: Sequence[ObligationExpression],
    index_threshold: int,
) -> tuple[Outputs, Outputs, CandidateIndex | None]:
    """Own outputs for Permit and for Deny, and an index when the children are many."""
    index = None
    if len(children) > index_threshold:
        index = CandidateIndex(children, [child.target_matches for child in children])
    return (
        compile_outputs(Effect.PERMIT, obligations, advice),
        compile_outputs(Effect.DENY, obligations, advice),
        index,
    )


class CompiledPolicy(Combining):
    """A policy: validity window and target, then its rules combined.

    The window is half-open: valid from `valid_from` (inclusive) until
    `valid_until` (exclusive); outside it the policy is NotApplicable.
    """

    with_sources = False

    def __init__(self, policy: Policy, index_threshold: int = INDEX_THRESHOLD) -> None:
        self.id = self.owner = policy.id
        self.valid_from, self.valid_until = policy.valid_from, policy.valid_until
        self.windowed = self.valid_from is not None or self.valid_until is not None
        self.target_matches = policy.target.matches
        self.target = compile_target(policy.target)
        self.children = tuple(CompiledRule(rule, policy.id) for rule in policy.rules)
        parts = combining_parts(self.children, policy.obligations, policy.advice, index_threshold)
        self.setup(policy.rule_combining, *parts)

    def in_window(self, now: datetime) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until

    def applies(self, request: Request, now: datetime) -> bool:
        if self.windowed and not self.in_window(now):
            return False
        return self.target is None or self.target(request)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.windowed and not self.in_window(now):
            return NOT_APPLICABLE_RESULT
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESULT
        return self.combined(request, now)
