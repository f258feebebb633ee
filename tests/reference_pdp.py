"""A deliberately naive PDP, written straight from the XACML 3.0 text, to test
the optimised one against (Cedar's differential testing).

No compilation of targets, no index, no shared results: every policy and rule
is scanned, every combining algorithm is the pseudo-code of XACML 3.0
Appendix C with its flags, decisions are strings. Only conditions and
obligation expressions reuse `pbgm.decision.conditions` (their meaning is defined there).

Choices the XACML text leaves open, fixed the same way as `pbgm.pdp`:
- the *-overrides and *-unless-* algorithms evaluate every child (obligations,
  advice and policy ids come from every child whose result equals the final
  decision); first-applicable stops at the first applicable child;
  only-one-applicable looks at targets (and validity windows) first;
- target values equal request values with booleans apart from numbers; a
  missing or null attribute does not match;
- validity windows are half-open: `valid_from <= now < valid_until`;
- the status of an Indeterminate comes from the first Indeterminate child's error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pbgm.decision.conditions import EvaluationFailure, compile_condition, compile_expression
from pbgm.model import (
    Advice,
    Decision,
    EvaluationError,
    Obligation,
    ObligationExpression,
    Policy,
    PolicySet,
    Request,
    Response,
    Rule,
    Status,
    Target,
)

PERMIT, DENY, NA = "Permit", "Deny", "NotApplicable"
IND_D, IND_P, IND_DP = "Indeterminate{D}", "Indeterminate{P}", "Indeterminate{DP}"


@dataclass
class Outcome:
    decision: str
    id: str = ""
    obligations: list[Obligation] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)
    cause: EvaluationError | None = None

    @property
    def indeterminate(self) -> bool:
        return self.decision.startswith("Indeterminate")


# --- targets ------------------------------------------------------------------------


def _equal(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def target_matches(target: Target, request: Request) -> bool:
    for match in target.matches:
        value = getattr(request, match.category).get(match.name)
        if value is None:
            return False
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        if not any(_equal(v, x) for v in values for x in match.values):
            return False
    return True


def policy_applicable(policy: Policy, request: Request, now: datetime) -> bool:
    if policy.valid_from is not None and not policy.valid_from <= now:
        return False
    if policy.valid_until is not None and not now < policy.valid_until:
        return False
    return target_matches(policy.target, request)


# --- obligations and advice ---------------------------------------------------------


def _resolve(items, effect, request, kind, where) -> tuple[list[Any], EvaluationError | None]:
    out = []
    for item in items:
        if item.fulfill_on.value != effect:
            continue
        attributes = {}
        for name, expr in item.attributes.items():
            try:
                attributes[name] = compile_expression(expr)(request)
            except EvaluationFailure as exc:
                return [], EvaluationError(exc.code, exc.message, *where)
            except Exception as exc:
                return [], EvaluationError("invalid_policy", str(exc), *where)
        out.append(kind(item.id, attributes))
    return out, None


def _with_outputs(
    outcome: Outcome,
    obligations: tuple[ObligationExpression, ...],
    advice: tuple[ObligationExpression, ...],
    request: Request,
    where: tuple[str | None, str | None],
) -> Outcome:
    """XACML §7.18: a node's own obligations apply when its result equals their
    FulfillOn; an error in one makes the node Indeterminate."""
    if outcome.decision not in (PERMIT, DENY):
        return outcome
    own_o, error = _resolve(obligations, outcome.decision, request, Obligation, where)
    own_a, error_a = _resolve(advice, outcome.decision, request, Advice, where)
    if error or error_a:
        letter = IND_P if outcome.decision == PERMIT else IND_D
        return Outcome(letter, outcome.id, cause=error or error_a)
    outcome.obligations += own_o
    outcome.advice += own_a
    return outcome


# --- rules ----------------------------------------------------------------------------


def evaluate_rule(rule: Rule, policy_id: str, request: Request) -> Outcome:
    """XACML §7.11, table 4."""
    if not target_matches(rule.target, request):
        return Outcome(NA, rule.id)
    letter = IND_P if rule.effect.value == PERMIT else IND_D
    try:
        holds = compile_condition(rule.condition)(request)
    except EvaluationFailure as exc:
        return Outcome(letter, rule.id, cause=EvaluationError(exc.code, exc.message))
    except Exception as exc:
        return Outcome(letter, rule.id, cause=EvaluationError("invalid_policy", str(exc)))
    if not holds:
        return Outcome(NA, rule.id)
    outcome = Outcome(rule.effect.value, rule.id)
    return _with_outputs(outcome, rule.obligations, rule.advice, request, (policy_id, rule.id))


# --- combining (XACML 3.0 Appendix C) ----------------------------------------------------


def deny_overrides(outcomes: list[Outcome]) -> str:
    error_d = error_p = error_dp = permit = False
    for o in outcomes:
        if o.decision == DENY:
            return DENY
        permit |= o.decision == PERMIT
        error_d |= o.decision == IND_D
        error_p |= o.decision == IND_P
        error_dp |= o.decision == IND_DP
    if error_dp or (error_d and (error_p or permit)):
        return IND_DP
    if error_d:
        return IND_D
    if permit:
        return PERMIT
    return IND_P if error_p else NA


def permit_overrides(outcomes: list[Outcome]) -> str:
    error_d = error_p = error_dp = deny = False
    for o in outcomes:
        if o.decision == PERMIT:
            return PERMIT
        deny |= o.decision == DENY
        error_d |= o.decision == IND_D
        error_p |= o.decision == IND_P
        error_dp |= o.decision == IND_DP
    if error_dp or (error_p and (error_d or deny)):
        return IND_DP
    if error_p:
        return IND_P
    if deny:
        return DENY
    return IND_D if error_d else NA


def combine(algorithm, children, evaluate, applicable) -> tuple[str, list[Outcome]]:
    """The final decision and the evaluated children."""
    if algorithm == "first-applicable":
        for child in children:
            outcome = evaluate(child)
            if outcome.decision != NA:
                return outcome.decision, [outcome]
        return NA, []
    if algorithm == "only-one-applicable":
        chosen = [child for child in children if applicable(child)]
        if len(chosen) > 1:
            error = EvaluationError("multiple_applicable", "more than one applies")
            return IND_DP, [Outcome(IND_DP, child.id, cause=error) for child in chosen]
        if not chosen:
            return NA, []
        outcome = evaluate(chosen[0])
        return outcome.decision, [outcome]
    outcomes = [evaluate(child) for child in children]
    decisions = [o.decision for o in outcomes]
    if algorithm == "deny-overrides":
        return deny_overrides(outcomes), outcomes
    if algorithm == "permit-overrides":
        return permit_overrides(outcomes), outcomes
    if algorithm == "deny-unless-permit":
        return (PERMIT if PERMIT in decisions else DENY), outcomes
    if algorithm == "permit-unless-deny":
        return (DENY if DENY in decisions else PERMIT), outcomes
    raise AssertionError(f"unknown algorithm {algorithm}")


def _same_class(decision: str, final: str) -> bool:
    if final.startswith("Indeterminate"):
        return decision.startswith("Indeterminate")
    return decision == final


def conclude(node_id: str, final: str, outcomes: list[Outcome]) -> tuple[Outcome, list[str]]:
    """The combined outcome and the ids of the children that explain it."""
    deciders = [o for o in outcomes if final != NA and _same_class(o.decision, final)]
    outcome = Outcome(final, node_id)
    if final.startswith("Indeterminate"):
        outcome.cause = deciders[0].cause
    else:
        for o in deciders:
            outcome.obligations += o.obligations
            outcome.advice += o.advice
    return outcome, [o.id for o in deciders]


# --- policies and the set ------------------------------------------------------------------


def evaluate_policy(policy: Policy, request: Request, now: datetime) -> Outcome:
    if not policy_applicable(policy, request, now):
        return Outcome(NA, policy.id)
    final, outcomes = combine(
        policy.rule_combining,
        policy.rules,
        lambda rule: evaluate_rule(rule, policy.id, request),
        lambda rule: target_matches(rule.target, request),
    )
    outcome, _ = conclude(policy.id, final, outcomes)
    return _with_outputs(outcome, policy.obligations, policy.advice, request, (policy.id, None))


def decide(policy_set: PolicySet, request: Request, now: datetime) -> Response:
    """Decide `request`: every policy scanned, nothing precomputed."""
    if "current_time" not in request.environment:
        environment = {**request.environment, "current_time": now}
        request = Request(request.subject, request.resource, request.action, environment)
    if not target_matches(policy_set.target, request):
        return Response(Decision.NOT_APPLICABLE)
    final, outcomes = combine(
        policy_set.policy_combining,
        policy_set.policies,
        lambda policy: evaluate_policy(policy, request, now),
        lambda policy: policy_applicable(policy, request, now),
    )
    outcome, ids = conclude(policy_set.id, final, outcomes)
    outcome = _with_outputs(
        outcome, policy_set.obligations, policy_set.advice, request, (None,) * 2
    )
    return _response(outcome, ids)


def _response(outcome: Outcome, ids: list[str]) -> Response:
    status = Status()
    if outcome.indeterminate:
        assert outcome.cause is not None
        code = "missing-attribute" if outcome.cause.code == "missing_attribute" else None
        status = Status(code or "processing-error", outcome.cause.message)
    decision = Decision.INDETERMINATE if outcome.indeterminate else Decision(outcome.decision)
    return Response(
        decision,
        status,
        tuple(outcome.obligations),
        tuple(outcome.advice),
        tuple(ids) if outcome.decision != NA else (),
    )
