"""A deliberately naive PDP, written straight from the XACML 3.0 text, to test
the optimised one against (Cedar's differential testing).

No compilation of targets, no index, no shared results: every policy and rule
is scanned, every combining algorithm is the pseudo-code of XACML 3.0
Appendix C with its flags, decisions are strings. Only conditions and
obligation expressions reuse `pbgm.decision.conditions` (their meaning is defined there).

XACML additions, as naive: the XACML part of a target (`<AnyOf>`/`<AllOf>`/`<Match>`,
§7.7 tables 1-3, with Indeterminate), tables 4, 5 and 7 for a target that is
Indeterminate, nested policy sets, obligation assignments, and the ordered and legacy
combining algorithms written from their pseudo-code (Appendix C). Missing attributes are
recorded in the status as the optimised PDP does.

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
from pbgm.functions import XACML_FUNCTIONS
from pbgm.model import (
    Advice,
    Assignment,
    Decision,
    EvaluationError,
    Matcher,
    MissingAttribute,
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
    """True or False; raises `EvaluationFailure` when the target is Indeterminate."""
    for match in target.matches:
        value = getattr(request, match.category).get(match.name)
        if value is None:
            return False
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        if not any(_equal(v, x) for v in values for x in match.values):
            return False
    return _all(lambda alternatives: _any(lambda all_of: _all(
        lambda m: _match(m, request), all_of), alternatives), target.any_of)  # fmt: skip


def _all(test, items) -> bool:
    """XACML's conjunction: a false makes it false, else an error makes it Indeterminate."""
    error = None
    for item in items:
        try:
            if not test(item):
                return False
        except EvaluationFailure as exc:
            error = error or exc
    if error is not None:
        raise error
    return True


def _any(test, items) -> bool:
    error = None
    for item in items:
        try:
            if test(item):
                return True
        except EvaluationFailure as exc:
            error = error or exc
    if error is not None:
        raise error
    return False


def _match(matcher: Matcher, request: Request) -> bool:
    """§7.6: the function of the literal and each value of the designator."""
    value = compile_expression(matcher.value)(request)
    bag = compile_expression(matcher.attribute)(request)
    function = XACML_FUNCTIONS[matcher.function].impl
    return _any(lambda item: function(value, item), bag)


def policy_applicable(policy: Policy, request: Request, now: datetime) -> bool:
    if policy.valid_from is not None and not policy.valid_from <= now:
        return False
    if policy.valid_until is not None and not now < policy.valid_until:
        return False
    return target_matches(policy.target, request)


# --- obligations and advice ---------------------------------------------------------


def _error(exc: EvaluationFailure, where) -> EvaluationError:
    missing = tuple(MissingAttribute(*m) for m in exc.missing)
    return EvaluationError(exc.code, exc.message, *where, missing)


def _resolve(items, effect, request, kind, where) -> tuple[list[Any], EvaluationError | None]:
    out = []
    for item in items:
        if item.fulfill_on.value != effect:
            continue
        attributes = {}
        assignments = []
        try:
            for name, expr in item.attributes.items():
                attributes[name] = compile_expression(expr)(request)
            for a in item.assignments:
                value = compile_expression(a.expression)(request)
                assignments.append(Assignment(a.attribute_id, value, a.category, a.issuer))
        except EvaluationFailure as exc:
            return [], _error(exc, where)
        except Exception as exc:
            return [], EvaluationError("invalid_policy", str(exc), *where)
        out.append(kind(item.id, attributes, tuple(assignments)))
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
    letter = IND_P if rule.effect.value == PERMIT else IND_D
    try:
        if not target_matches(rule.target, request):
            return Outcome(NA, rule.id)
    except EvaluationFailure as exc:
        return Outcome(letter, rule.id, cause=_error(exc, (policy_id, rule.id)))
    try:
        holds = compile_condition(rule.condition)(request)
    except EvaluationFailure as exc:
        return Outcome(letter, rule.id, cause=_error(exc, (policy_id, rule.id)))
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


def _legacy(algorithm, children, evaluate, level) -> tuple[str, list[Outcome]]:
    """The 1.0/1.1 deny- and permit-overrides (Appendix C, legacy), from their pseudo-code;
    their Indeterminate is Indeterminate{DP}."""
    winner = DENY if "deny" in algorithm else PERMIT
    loser = PERMIT if winner == DENY else DENY
    own_error = IND_D if winner == DENY else IND_P
    outcomes = []
    at_least_one_error = potential = at_least_one_loser = False
    for child in children:
        outcome = evaluate(child)
        outcomes.append(outcome)
        if outcome.decision == winner:
            return winner, outcomes
        if outcome.decision == loser:
            at_least_one_loser = True
        elif outcome.indeterminate:
            if level == "policy" and winner == DENY:
                return DENY, outcomes
            at_least_one_error = True
            if level == "rule" and outcome.decision == own_error:
                potential = True
    if potential:
        return IND_DP, outcomes
    if at_least_one_loser:
        return loser, outcomes
    return (IND_DP if at_least_one_error else NA), outcomes


def combine(algorithm, children, evaluate, applicable, level="rule") -> tuple[str, list[Outcome]]:
    """The final decision and the evaluated children."""
    if algorithm.startswith("legacy-"):
        return _legacy(algorithm, children, evaluate, level)
    if algorithm.startswith("ordered-"):
        winner = DENY if algorithm == "ordered-deny-overrides" else PERMIT
        outcomes = []
        for child in children:
            outcome = evaluate(child)
            outcomes.append(outcome)
            if outcome.decision == winner:
                return winner, outcomes
        unordered = deny_overrides if winner == DENY else permit_overrides
        return unordered(outcomes), outcomes
    if algorithm == "first-applicable":
        for child in children:
            outcome = evaluate(child)
            if outcome.decision != NA:
                return outcome.decision, [outcome]
        return NA, []
    if algorithm == "only-one-applicable":
        chosen = []
        for child in children:
            try:
                if applicable(child):
                    chosen.append(child)
            except EvaluationFailure as exc:
                return IND_DP, [Outcome(IND_DP, child.id, cause=_error(exc, (None, None)))]
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


_TABLE_7 = {PERMIT: IND_P, IND_P: IND_P, DENY: IND_D, IND_D: IND_D, IND_DP: IND_DP}


def evaluate_policy(policy: Policy, request: Request, now: datetime) -> Outcome:
    """A policy (§7.12, table 7) or a nested policy set (§7.13, table 7 again)."""
    failure = None
    try:
        if not policy_applicable(policy, request, now):
            return Outcome(NA, policy.id)
    except EvaluationFailure as exc:
        failure = exc
    if policy.is_set:
        final, outcomes = combine(
            policy.policy_combining,
            policy.policies,
            lambda child: evaluate_policy(child, request, now),
            lambda child: policy_applicable(child, request, now),
            "policy",
        )
        where = (None, None)
    else:
        final, outcomes = combine(
            policy.rule_combining,
            policy.rules,
            lambda rule: evaluate_rule(rule, policy.id, request),
            lambda rule: target_matches(rule.target, request),
        )
        where = (policy.id, None)
    outcome, _ = conclude(policy.id, final, outcomes)
    if failure is not None:
        if final == NA:
            return Outcome(NA, policy.id)
        return Outcome(_TABLE_7[final], policy.id, cause=_error(failure, where))
    return _with_outputs(outcome, policy.obligations, policy.advice, request, where)


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
        "policy",
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
        status = Status(code or "processing-error", outcome.cause.message, outcome.cause.missing)
    decision = Decision.INDETERMINATE if outcome.indeterminate else Decision(outcome.decision)
    return Response(
        decision,
        status,
        tuple(outcome.obligations),
        tuple(outcome.advice),
        tuple(ids) if outcome.decision != NA else (),
    )
