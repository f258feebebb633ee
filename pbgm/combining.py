"""Combining algorithms: how the results of rules (inside a policy) or of policies
(inside a policy set) make one decision.

XACML 3.0 semantics (Appendix C, §7.13-7.14), with the extended Indeterminate:
a rule whose condition fails is `Indeterminate{D}` or `Indeterminate{P}` after
its effect, and the algorithms combine these into `Indeterminate{D}`, `{P}` or
`{DP}`. The extended values only matter inside combining; the response collapses
them to `Indeterminate`.

Every algorithm returns the final decision and the child results that were
evaluated; `selected` picks the ones whose decision equals the final one (their
obligations, advice and ids are what the caller reports). Apart from the lazy
`first-applicable` and `only-one-applicable`, every child is evaluated, so the
obligations and errors reported never depend on where a short-circuit fell.

Decisions are small ints, not `Decision` members, because this is the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from pbgm.model import Advice, Decision, EvaluationError, Obligation, Request

PERMIT = 0
DENY = 1
NOT_APPLICABLE = 2
INDETERMINATE_D = 3
INDETERMINATE_P = 4
INDETERMINATE_DP = 5

_COLLAPSED = (
    Decision.PERMIT,
    Decision.DENY,
    Decision.NOT_APPLICABLE,
    Decision.INDETERMINATE,
    Decision.INDETERMINATE,
    Decision.INDETERMINATE,
)
_NAMES = ("Permit", "Deny", "NotApplicable", "Indeterminate{D}", "Indeterminate{P}")
NAMES = (*_NAMES, "Indeterminate{DP}")


def collapse(code: int) -> Decision:
    """The decision a response shows for an internal decision code."""
    return _COLLAPSED[code]


def indeterminate_of(code: int) -> int:
    """`Indeterminate{D}` for Deny, `{P}` for Permit: what an error turns a decision into."""
    return INDETERMINATE_D if code == DENY else INDETERMINATE_P


class Result:
    """The outcome of evaluating one rule, policy or policy set.

    `errors` holds every error met beneath (diagnostics); `cause` is the error
    that made an Indeterminate result. `sources` names the children whose result
    equals this one (filled for policy sets: the deciding policy ids).
    """

    __slots__ = ("advice", "cause", "decision", "errors", "id", "obligations", "sources")

    def __init__(
        self,
        decision: int,
        id: str = "",
        obligations: tuple[Obligation, ...] = (),
        advice: tuple[Advice, ...] = (),
        errors: tuple[EvaluationError, ...] = (),
        cause: EvaluationError | None = None,
        sources: tuple[str, ...] = (),
    ) -> None:
        self.decision = decision
        self.id = id
        self.obligations = obligations
        self.advice = advice
        self.errors = errors
        self.cause = cause
        self.sources = sources

    def __repr__(self) -> str:
        return f"Result({NAMES[self.decision]}, id={self.id!r})"


NOT_APPLICABLE_RESULT = Result(NOT_APPLICABLE)


def failed(code: int, id: str, error: EvaluationError) -> Result:
    """An Indeterminate result caused by `error`."""
    return Result(code, id, errors=(error,), cause=error)


class Node(Protocol):
    """A rule or a policy as the combining algorithms see it."""

    id: str

    def applies(self, request: Request, now: datetime) -> bool: ...

    def evaluate(self, request: Request, now: datetime) -> Result: ...


Combined = tuple[int, Sequence[Result]]
Combiner = Callable[[Sequence[Node], Request, datetime, "str | None"], Combined]


def _evaluate_all(children: Sequence[Node], request: Request, now: datetime) -> list[Result]:
    return [child.evaluate(request, now) for child in children]


def _overrides(results: Sequence[Result], winner: int, loser: int) -> int:
    """Appendix C.2 (winner Deny) and C.3 (winner Permit), one body for both."""
    seen = [False] * 6
    for result in results:
        if result.decision == winner:
            return winner
        seen[result.decision] = True
    winner_error = indeterminate_of(winner)
    loser_error = indeterminate_of(loser)
    if seen[INDETERMINATE_DP]:
        return INDETERMINATE_DP
    if seen[winner_error] and (seen[loser_error] or seen[loser]):
        return INDETERMINATE_DP
    if seen[winner_error]:
        return winner_error
    if seen[loser]:
        return loser
    if seen[loser_error]:
        return loser_error
    return NOT_APPLICABLE


def deny_overrides(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    results = _evaluate_all(children, request, now)
    return _overrides(results, DENY, PERMIT), results


def permit_overrides(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    results = _evaluate_all(children, request, now)
    return _overrides(results, PERMIT, DENY), results


def first_applicable(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    """Appendix C.8: the first child that is not NotApplicable decides, errors included."""
    for child in children:
        result = child.evaluate(request, now)
        if result.decision != NOT_APPLICABLE:
            return result.decision, (result,)
    return NOT_APPLICABLE, ()


def only_one_applicable(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    """Appendix C.9: applicability is the target (and validity window) alone;
    two applicable children make `Indeterminate{DP}`, naming all that apply."""
    applicable = [child for child in children if child.applies(request, now)]
    if not applicable:
        return NOT_APPLICABLE, ()
    if len(applicable) == 1:
        result = applicable[0].evaluate(request, now)
        return result.decision, (result,)
    error = _conflict(applicable, owner)
    first = failed(INDETERMINATE_DP, applicable[0].id, error)
    rest = [Result(INDETERMINATE_DP, child.id, cause=error) for child in applicable[1:]]
    return INDETERMINATE_DP, [first, *rest]


def _conflict(applicable: Sequence[Node], owner: str | None) -> EvaluationError:
    ids = ", ".join(f"`{child.id}`" for child in applicable)
    kind = "rule" if owner is not None else "policy"
    return EvaluationError(
        "multiple_applicable",
        f"only one {kind} may apply but {len(applicable)} do: {ids}",
        policy_id=owner,
    )


def deny_unless_permit(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    """Appendix C.10: Permit if any child permits, otherwise Deny (never NA or Indeterminate)."""
    results = _evaluate_all(children, request, now)
    for result in results:
        if result.decision == PERMIT:
            return PERMIT, results
    return DENY, results


def permit_unless_deny(
    children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
) -> Combined:
    """Appendix C.11: Deny if any child denies, otherwise Permit."""
    results = _evaluate_all(children, request, now)
    for result in results:
        if result.decision == DENY:
            return DENY, results
    return PERMIT, results


ALGORITHMS: dict[str, Combiner] = {
    "deny-overrides": deny_overrides,
    "permit-overrides": permit_overrides,
    "first-applicable": first_applicable,
    "only-one-applicable": only_one_applicable,
    "deny-unless-permit": deny_unless_permit,
    "permit-unless-deny": permit_unless_deny,
}


def selected(decision: int, results: Sequence[Result]) -> list[Result]:
    """The results that explain `decision`: equal to it, or any Indeterminate
    for an Indeterminate decision. Obligations and policy ids come from these."""
    if decision >= INDETERMINATE_D:
        return [r for r in results if r.decision >= INDETERMINATE_D]
    if decision == NOT_APPLICABLE:
        return []
    return [r for r in results if r.decision == decision]
