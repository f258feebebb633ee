"""Compiled rules and policies: targets, conditions, obligations and an index,
prepared once and evaluated many times.

Matching and the candidate index are in `pbgm.decision.index` (re-exported here), the
obligations and advice in `pbgm.decision.outputs`, and the specialised policies of the
common shapes in `pbgm.decision.flat`.

Everything that can be prepared is prepared at compile time: conditions and
obligation expressions become closures (`pbgm.decision.conditions`), equal conditions and
equal string matches share one closure, literal obligations become ready
`Obligation` objects, results without obligations are shared, and a
`CandidateIndex` maps the most selective equality of each target to the children
it selects, so deciding costs the same for 100 or 100,000 policies.

A rule or policy that does not compile (an unknown function, an unknown
combining algorithm) still loads: it evaluates to Indeterminate with the code
`invalid_policy` whenever it applies, so a broken Deny never becomes a Permit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pbgm.decision.combining import (
    DENY,
    INDETERMINATE_D,
    INDETERMINATE_DP,
    INDETERMINATE_P,
    NOT_APPLICABLE,
    NOT_APPLICABLE_RESULT,
    PERMIT,
    Combining,
    Result,
    failed,
    indeterminate_of,
)
from pbgm.decision.conditions import EvaluationFailure, compile_condition
from pbgm.decision.index import (
    PREFERRED_KEYS,
    CandidateIndex,
    Predicate,
    compile_match,
    compile_target,
    index_key,
    rest_target,
    target_and_rest,
)
from pbgm.decision.membership import expression, membership
from pbgm.decision.outputs import Outputs, compile_outputs, reason
from pbgm.decision.shared import shared
from pbgm.decision.targets import compile_any_of
from pbgm.model import (
    AnyOf,
    Apply,
    AttributeRef,
    Effect,
    EvaluationError,
    Expr,
    MissingAttribute,
    ObligationExpression,
    Policy,
    Request,
    Rule,
    Target,
)

__all__ = [
    "INDEX_THRESHOLD",
    "PREFERRED_KEYS",
    "CandidateIndex",
    "CompiledPolicy",
    "CompiledRule",
    "Outputs",
    "combining_parts",
    "compile_match",
    "compile_outputs",
    "compile_target",
    "index_key",
]

log = logging.getLogger(__name__)

INDEX_THRESHOLD = 8
"""Lists of more children than this get a target index; shorter ones are scanned."""

_EFFECT_CODE = {Effect.PERMIT: PERMIT, Effect.DENY: DENY}
BARE = (Result(PERMIT), Result(DENY))
"""The results of the rules without obligations or advice, shared (a rule result's id
is never reported: a policy reports its own)."""

_UNCOMPILED: Any = object()
CURRENT_TIME = "environment.current_time"

# --- rules -------------------------------------------------------------------------------

_conditions: dict[str, Callable[[Request], bool]] = {}


def _compile_condition(condition: Expr) -> Callable[[Request], bool]:
    """`compile_condition`, shared between equal conditions (grant sets repeat a few
    conditions many times). Keyed by `repr`, which tells `true` from `1`."""
    return shared(_conditions, repr(condition), lambda: compile_condition(condition))


class CompiledRule:
    """A rule ready to evaluate: NotApplicable, its effect, or Indeterminate{effect}.

    For the flat policies of `pbgm.decision.flat`: `rest` is the target without its index
    key (`pbgm.decision.index`), `flag` is 1 for Permit and 2 for Deny, and `tests` holds
    the condition as membership tests (`pbgm.decision.membership`) when it is one; the
    closures of such a condition are then compiled on first use only.
    """

    __slots__ = (
        "condition",
        "effect",
        "failure",
        "flag",
        "id",
        "outputs",
        "policy_id",
        "rest",
        "result",
        "target",
        "target_matches",
        "tests",
    )

    def __init__(self, rule: Rule, policy_id: str) -> None:
        self.id, self.policy_id = rule.id, policy_id
        self.effect = _EFFECT_CODE[rule.effect]
        self.flag = 1 << self.effect
        self.target_matches = rule.target.matches
        self.target, self.rest = target_and_rest(self.target_matches)
        self.failure: EvaluationError | None = None
        if rule.target.any_of:
            extra = self._any_of(rule.target.any_of)
            self.target, self.rest = both(self.target, extra), both(self.rest, extra)
        self.tests = membership(rule.condition)
        self.condition: Any = _UNCOMPILED
        if self.tests is None:
            self.condition = self._compile_condition(rule.condition)
        outputs = compile_outputs(rule.effect, rule.obligations, rule.advice)
        self.outputs = None if outputs.fixed is not None else outputs
        fixed = outputs.fixed or ((), ())  # `result` serves only when they are fixed
        bare = outputs.fixed == ((), ())
        self.result = BARE[self.effect] if bare else Result(self.effect, self.id, *fixed)

    @property
    def bare(self) -> bool:
        """Compiled, and nothing but its effect to report."""
        return self.failure is None and self.outputs is None and self.result is BARE[self.effect]

    def where(
        self, message: str, code: str = "invalid_policy", missing: tuple[Any, ...] = ()
    ) -> EvaluationError:
        found = tuple(MissingAttribute(*m) for m in missing)
        return EvaluationError(code, message, self.policy_id or None, self.id, found)

    def _any_of(self, any_of: tuple[AnyOf, ...]) -> Predicate | None:
        try:
            return compile_any_of(any_of)
        except Exception as exc:
            self.failure = self.where(f"target does not compile: {reason(exc)}")
            return None

    def _compile_condition(self, condition: Expr | None) -> Callable[[Request], bool] | None:
        if condition is None:
            return None
        try:
            return _compile_condition(condition)
        except Exception as exc:
            self.failure = self.where(f"condition does not compile: {reason(exc)}")
            return None

    def _condition(self) -> Callable[[Request], bool] | None:
        """The condition's closure, compiled now if it was left to first use."""
        condition = self.condition
        if condition is _UNCOMPILED:
            assert self.tests is not None  # only conditions held as tests are left
            condition = self.condition = self._compile_condition(expression(self.tests))
        return condition  # type: ignore[no-any-return]

    def applies(self, request: Request, now: datetime) -> bool:
        return self.target is None or self.target(request)

    def evaluate(self, request: Request, now: datetime) -> Result:
        target = self.target
        if target is not None:
            try:
                if not target(request):
                    return NOT_APPLICABLE_RESULT
            except EvaluationFailure as exc:  # a XACML target that is Indeterminate
                return self._fail(self.where(exc.message, exc.code, exc.missing))
        condition = self._condition()
        if self.failure is not None:
            return self._fail(self.failure)
        if condition is not None:
            try:
                if not condition(request):
                    return NOT_APPLICABLE_RESULT
            except EvaluationFailure as exc:
                return self._fail(self.where(exc.message, exc.code, exc.missing))
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
    *,
    ordered: bool = False,
) -> tuple[Outputs, Outputs, CandidateIndex | None]:
    """Own outputs for Permit and for Deny, and an index when the children are many
    (`ordered`: their ids increase strictly, see `CandidateIndex`)."""
    index = None
    if len(children) > index_threshold:
        targets = [child.target_matches for child in children]
        index = CandidateIndex(children, targets, ordered=ordered)
    return (
        compile_outputs(Effect.PERMIT, obligations, advice),
        compile_outputs(Effect.DENY, obligations, advice),
        index,
    )


class CompiledPolicy(Combining):
    """A policy: validity window and target, then its rules combined.

    The window is half-open: valid from `valid_from` (inclusive) until
    `valid_until` (exclusive); outside it the policy is NotApplicable.
    `evaluate_keyed` is `evaluate` for a policy its set's index found by its key:
    it checks only the `rest` of the target. The whole target is compiled on
    first use (a set of many policies mostly finds them by their key).
    The slots `first`, `key_*`, `outcomes` and `unkeyed` belong to the
    specialised form (`pbgm.decision.flat.FlatPolicy`), which only they set.
    """

    __slots__ = (
        "extra",
        "first",
        "key_bag",
        "key_entries",
        "key_name",
        "key_slots",
        "outcomes",
        "rest",
        "target",
        "target_matches",
        "unkeyed",
        "uses_current_time",
        "valid_from",
        "valid_until",
        "windowed",
    )

    target: Any
    first: bool
    key_bag: Callable[[Request], Any] | None
    key_entries: tuple[tuple[CompiledRule, ...], ...]
    key_name: str
    key_slots: dict[str, int]
    outcomes: tuple[Any, ...]
    unkeyed: tuple[CompiledRule, ...]

    def __init__(self, policy: Policy, index_threshold: int = INDEX_THRESHOLD) -> None:
        self.id = self.owner = policy.id
        self.header(policy)
        self.children = tuple(CompiledRule(rule, policy.id) for rule in policy.rules)
        parts = combining_parts(self.children, policy.obligations, policy.advice, index_threshold)
        self.setup(policy.rule_combining, *parts, {rule.effect for rule in self.children})
        if self.extra is _BROKEN:
            self.failure = self.where("the target does not compile")
            self.combine = None

    def header(self, policy: Policy) -> None:
        """The validity window and the target (the XACML part of it, `extra`, compiled now)."""
        self.valid_from, self.valid_until = policy.valid_from, policy.valid_until
        self.windowed = self.valid_from is not None or self.valid_until is not None
        self.uses_current_time = policy_uses_current_time(policy)
        self.target_matches = policy.target.matches
        self.extra: Any = None
        if policy.target.any_of:
            try:
                self.extra = compile_any_of(policy.target.any_of)
            except Exception:
                self.extra = _BROKEN
        extra = self.extra if self.extra is not _BROKEN else None
        self.target = _UNCOMPILED if self.target_matches or extra is not None else None
        self.rest = both(rest_target(self.target_matches), extra)

    @classmethod
    def broken(cls, policy_id: str, target: Target, message: str) -> CompiledPolicy:
        """A policy that could not be read: Indeterminate (`invalid_policy`, `message`)
        whenever its `target` matches, so that a broken Deny never becomes a Permit."""
        node = cls(Policy(policy_id, "", "", target=target))
        node.failure, node.combine = node.where(message), None
        return node

    def in_window(self, now: datetime) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until

    def _target(self) -> Predicate:
        target = self.target
        if target is _UNCOMPILED:
            extra = self.extra if self.extra is not _BROKEN else None
            target = self.target = both(compile_target(Target(self.target_matches)), extra)
        return target  # type: ignore[no-any-return]

    def applies(self, request: Request, now: datetime) -> bool:
        if self.windowed and not self.in_window(now):
            return False
        return self.target is None or self._target()(request)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.windowed and not self.in_window(now):
            return NOT_APPLICABLE_RESULT
        if self.target is not None:
            try:
                if not self._target()(request):
                    return NOT_APPLICABLE_RESULT
            except EvaluationFailure as exc:  # a XACML target that is Indeterminate
                return self.indeterminate_target(exc, request, now)
        return self.combined(request, now)

    def evaluate_keyed(self, request: Request, now: datetime) -> Result:
        if self.windowed and not self.in_window(now):
            return NOT_APPLICABLE_RESULT
        rest = self.rest
        if rest is not None:
            try:
                if not rest(request):
                    return NOT_APPLICABLE_RESULT
            except EvaluationFailure as exc:
                return self.indeterminate_target(exc, request, now)
        return self.combined(request, now)

    def indeterminate_target(
        self, exc: EvaluationFailure, request: Request, now: datetime
    ) -> Result:
        """XACML table 7: a target that is Indeterminate makes the policy (or policy set)
        NotApplicable if its children combine to NotApplicable, else Indeterminate{P},
        {D} or {DP} after what they combine to."""
        result = self.combined(request, now)
        if result.decision == NOT_APPLICABLE:
            return NOT_APPLICABLE_RESULT
        error = self.where(exc.message, exc.code, exc.missing)
        code = _TABLE_7[result.decision]
        return Result(code, self.id, errors=(*result.errors, error), cause=error)


_BROKEN: Any = object()
_TABLE_7 = {
    PERMIT: INDETERMINATE_P,
    INDETERMINATE_P: INDETERMINATE_P,
    DENY: INDETERMINATE_D,
    INDETERMINATE_D: INDETERMINATE_D,
    INDETERMINATE_DP: INDETERMINATE_DP,
}


def both(first: Predicate | None, second: Predicate | None) -> Predicate | None:
    """The conjunction of two optional predicates (the first checked first)."""
    if first is None or second is None:
        return first if second is None else second

    def conjunction(request: Request) -> bool:
        return first(request) and second(request)

    return conjunction


# --- what a policy reads of the time -------------------------------------------------


def outputs_use_current_time(*groups: Iterable[ObligationExpression]) -> bool:
    return any(
        mentions_current_time(e)
        for g in groups
        for o in g
        for e in (*o.attributes.values(), *(a.expression for a in o.assignments))
    )


def policy_uses_current_time(policy: Policy) -> bool:
    """Whether a condition or an obligation of the policy reads `environment.current_time`."""
    if outputs_use_current_time(policy.obligations, policy.advice):
        return True
    if any(policy_uses_current_time(child) for child in policy.policies):
        return True
    for rule in policy.rules:
        if rule.condition is not None and mentions_current_time(rule.condition):
            return True
        if outputs_use_current_time(rule.obligations, rule.advice):
            return True
    return False


def mentions_current_time(expr: Expr) -> bool:
    pending = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, Apply):
            pending += node.args
        elif isinstance(node, AttributeRef) and node.path == CURRENT_TIME:
            return True
    return False
