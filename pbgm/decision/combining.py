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

`Combining` is the step a policy (over its rules) and a policy set (over its
policies) share: run the algorithm, then collect what the deciding children
carry. Decisions are small ints, not `Decision` members: this is the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Protocol

from pbgm.functions import EvaluationFailure
from pbgm.model import Advice, Decision, EvaluationError, MissingAttribute, Obligation, Request

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
    equals this one (filled for policy sets: the deciding policy ids). `memo`
    caches what the level above derives from a shared result (its own result,
    then the response), so a repeated decision allocates nothing. `applicable`, set
    only by the policy sets of a tracking set (`Combining.tracking`), names the policies
    and policy sets beneath that were applicable (XACML's `PolicyIdentifierList`).
    """

    applicable: tuple[str, ...]  # set only by tracking sets: read with getattr

    __slots__ = (
        "advice",
        "applicable",
        "cause",
        "decision",
        "errors",
        "id",
        "memo",
        "obligations",
        "sources",
    )

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
        self.memo: Any = None

    def __repr__(self) -> str:
        return f"Result({NAMES[self.decision]}, id={self.id!r})"


NOT_APPLICABLE_RESULT = Result(NOT_APPLICABLE)
_NO_PLAIN: tuple[Result | None, ...] = (None, None, NOT_APPLICABLE_RESULT)
_BOTH = frozenset({PERMIT, DENY})


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
    two applicable children make `Indeterminate{DP}`, naming all that apply; a target
    that is Indeterminate makes the whole Indeterminate{DP}."""
    applicable = []
    for child in children:
        try:
            if child.applies(request, now):
                applicable.append(child)
        except EvaluationFailure as exc:
            error = failure_error(exc, owner)
            return INDETERMINATE_DP, [failed(INDETERMINATE_DP, child.id, error)]
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


def _ordered(winner: int, loser: int) -> Combiner:
    """Ordered-deny-overrides (winner Deny) and ordered-permit-overrides: the children in
    their order, stopping at the first that decides `winner`; so only that child's
    obligations and advice are returned with it (the unordered forms evaluate every child)."""

    def ordered(
        children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
    ) -> Combined:
        results = []
        for child in children:
            result = child.evaluate(request, now)
            results.append(result)
            if result.decision == winner:
                return winner, results
        return _overrides(results, winner, loser), results

    return ordered


def _legacy(winner: int) -> Combiner:
    """The deny-overrides (winner Deny) and permit-overrides of XACML 1.0/1.1 (Appendix C,
    legacy), ordered or not: the first child deciding `winner` decides. Over rules, an
    Indeterminate rule whose effect is `winner` makes the result Indeterminate, else a
    child deciding the other effect decides, else any Indeterminate is. Over policies,
    deny-overrides turns an Indeterminate policy into Deny; permit-overrides gives Deny
    before Indeterminate. Their Indeterminate is Indeterminate{DP} (they know no other)."""
    loser = DENY if winner == PERMIT else PERMIT

    def legacy(
        children: Sequence[Node], request: Request, now: datetime, owner: str | None = None
    ) -> Combined:
        rules = owner is not None
        results = []
        potential = error = other = False
        for child in children:
            result = child.evaluate(request, now)
            results.append(result)
            decision = result.decision
            if decision == winner:
                return winner, results
            if decision == loser:
                other = True
            elif decision >= INDETERMINATE_D:
                if not rules and winner == DENY:
                    return DENY, results
                error = True
                potential = potential or (rules and decision == indeterminate_of(winner))
        if potential:
            return INDETERMINATE_DP, results
        if other:
            return loser, results
        return (INDETERMINATE_DP if error else NOT_APPLICABLE), results

    return legacy


ALGORITHMS: dict[str, Combiner] = {
    "deny-overrides": deny_overrides,
    "permit-overrides": permit_overrides,
    "first-applicable": first_applicable,
    "only-one-applicable": only_one_applicable,
    "deny-unless-permit": deny_unless_permit,
    "permit-unless-deny": permit_unless_deny,
    "ordered-deny-overrides": _ordered(DENY, PERMIT),
    "ordered-permit-overrides": _ordered(PERMIT, DENY),
    "legacy-deny-overrides": _legacy(DENY),
    "legacy-permit-overrides": _legacy(PERMIT),
    "legacy-ordered-deny-overrides": _legacy(DENY),
    "legacy-ordered-permit-overrides": _legacy(PERMIT),
}


def failure_error(
    exc: EvaluationFailure, policy_id: str | None, rule_id: str | None = None
) -> EvaluationError:
    """The `EvaluationError` recording an `EvaluationFailure`, missing attributes included."""
    missing = tuple(MissingAttribute(*m) for m in exc.missing)
    return EvaluationError(exc.code, exc.message, policy_id, rule_id, missing)


def selected(decision: int, results: Sequence[Result]) -> list[Result]:
    """The results that explain `decision`: equal to it, or any Indeterminate
    for an Indeterminate decision. Obligations and policy ids come from these."""
    if decision >= INDETERMINATE_D:
        return [r for r in results if r.decision >= INDETERMINATE_D]
    if decision == NOT_APPLICABLE:
        return []
    return [r for r in results if r.decision == decision]


ONE_CHILD: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(
        (
            "deny-overrides",
            "permit-overrides",
            "first-applicable",
            "only-one-applicable",
            "ordered-deny-overrides",
            "ordered-permit-overrides",
        ),
        (PERMIT, DENY, NOT_APPLICABLE, INDETERMINATE_D, INDETERMINATE_P, INDETERMINATE_DP),
    ),
    "deny-unless-permit": (PERMIT, DENY, DENY, DENY, DENY, DENY),
    "permit-unless-deny": (PERMIT, DENY, PERMIT, PERMIT, PERMIT, PERMIT),
    **dict.fromkeys(
        ("legacy-deny-overrides", "legacy-ordered-deny-overrides"),
        (PERMIT, DENY, NOT_APPLICABLE, DENY, DENY, DENY),
    ),
    **dict.fromkeys(
        ("legacy-permit-overrides", "legacy-ordered-permit-overrides"),
        (PERMIT, DENY, NOT_APPLICABLE, INDETERMINATE_DP, INDETERMINATE_DP, INDETERMINATE_DP),
    ),
}
"""The decision of each algorithm over a single candidate child (of a policy set), by
that child's result. (For only-one-applicable, a child that does not apply evaluates to
NotApplicable; the legacy algorithms are those over policies.)"""


def reachable(algorithm: str, effects: AbstractSet[int]) -> set[int]:
    """The decisions Permit and Deny a node can reach: an algorithm decides Permit only
    from a Permit child (Deny likewise), but for the *-unless-* defaults."""
    codes = set(effects) if algorithm in ALGORITHMS else set()
    if algorithm == "deny-unless-permit":
        codes.add(DENY)
    if algorithm == "permit-unless-deny":
        codes.add(PERMIT)
    return codes


# --- the combining step of a policy or a policy set ----------------------------------------


class Outputs(Protocol):
    """A node's own obligations and advice for one decision (`pbgm.decision.evaluator`):
    `fixed` when they do not depend on the request, else `resolve`d per request."""

    fixed: tuple[tuple[Obligation, ...], tuple[Advice, ...]] | None

    def resolve(self, request: Request, where: Callable[..., EvaluationError]) -> Any: ...


class Index(Protocol):
    def candidates(self, request: Request) -> Sequence[Any]: ...


class Combining:
    """What a policy and a policy set share: children (found through an index)
    combined by an algorithm, then the node's own obligations and advice added.

    Obligations and advice come from the children whose result equals the final
    decision, in order, then the node's own (XACML §7.18); an error resolving the
    node's own makes it Indeterminate{its decision}. Errors of every child are kept.

    Shared results: `plain[decision]` is the ready result of a policy when no child
    carries anything (None where the decision is unreachable or its own outputs depend
    on the request); a policy set memoises its result on the one child that decided
    (`nobody` stands for no child under the *-unless-* algorithms).
    """

    __slots__ = (
        "children",
        "combine",
        "failure",
        "id",
        "index",
        "nobody",
        "on_deny",
        "on_permit",
        "one_child",
        "owner",
        "plain",
        "tracking",
    )

    with_sources: bool = False
    root: bool = False
    id: str
    owner: str | None
    children: Sequence[Any]

    def setup(
        self,
        algorithm: str,
        on_permit: Outputs,
        on_deny: Outputs,
        index: Index | None,
        effects: AbstractSet[int] = _BOTH,
    ) -> None:
        """`effects`: the effects of the children (Permit and Deny when unknown)."""
        self.combine = ALGORITHMS.get(algorithm)
        self.one_child = ONE_CHILD.get(algorithm)
        self.failure = None
        self.tracking = False
        if self.combine is None:
            self.failure = self.where(f"unknown combining algorithm `{algorithm}`")
        self.on_permit, self.on_deny, self.index = on_permit, on_deny, index
        self.nobody: tuple[Result, Result] | None = None
        self.plain: tuple[Result | None, ...] = _NO_PLAIN
        if self.with_sources:  # a policy set names its deciding policies: never shared
            self.nobody = (Result(PERMIT), Result(DENY))
            return
        codes = reachable(algorithm, effects)
        ready = [
            Result(code, self.id, *outputs.fixed)
            if code in codes and outputs.fixed is not None
            else None
            for code, outputs in ((PERMIT, on_permit), (DENY, on_deny))
        ]
        self.plain = (*ready, NOT_APPLICABLE_RESULT)

    def where(
        self, message: str, code: str = "invalid_policy", missing: tuple[Any, ...] = ()
    ) -> EvaluationError:
        found = tuple(MissingAttribute(*m) for m in missing)
        return EvaluationError(code, message, self.owner, None, found)

    def combined(self, request: Request, now: datetime) -> Result:
        """Combine the children that may apply; the node itself already applies."""
        if self.combine is None:
            assert self.failure is not None
            return failed(INDETERMINATE_DP, self.id, self.failure)
        children = self.children if self.index is None else self.index.candidates(request)
        decision, results = self.combine(children, request, now, self.owner)
        return self.finish(decision, results, request)

    def finish(self, decision: int, results: Sequence[Result], request: Request) -> Result:
        """The node's result once its algorithm decided `decision` from `results`."""
        if decision == NOT_APPLICABLE:
            return NOT_APPLICABLE_RESULT
        if self.tracking:
            return self.tracked(decision, results, request)
        if decision < NOT_APPLICABLE and _bare(results):  # the common case: shared results
            plain = self.plain[decision]
            if plain is not None:
                return plain
            if self.nobody is not None:
                chosen = selected(decision, results)
                if len(chosen) <= 1:
                    shared = self._decided_by(chosen[0] if chosen else self.nobody[decision])
                    if shared is not None:
                        return shared
        return self._conclude(decision, results, request)

    def finish_one(self, result: Result, request: Request) -> Result:
        """`finish` for a policy set whose only candidate child gave `result`."""
        decision = self.one_child[result.decision]  # type: ignore[index]
        if decision == NOT_APPLICABLE:
            return NOT_APPLICABLE_RESULT
        if self.tracking:
            return self.tracked(decision, (result,), request)
        if decision < NOT_APPLICABLE and not (result.errors or result.obligations or result.advice):
            child = result if result.decision == decision else self.nobody[decision]  # type: ignore[index]
            memo = child.memo
            if memo is not None:
                return memo  # type: ignore[no-any-return]
            shared = self._decided_by(child)
            if shared is not None:
                return shared
        return self._conclude(decision, (result,), request)

    def tracked(self, decision: int, results: Sequence[Result], request: Request) -> Result:
        """The result of a tracking policy set, never shared: `applicable` lists the
        evaluated children that were not NotApplicable, each followed by what it lists."""
        result = self._conclude(decision, results, request)
        applicable: list[str] = []
        for child in results:
            if child.decision != NOT_APPLICABLE and child.id:
                applicable.append(child.id)
                applicable += getattr(child, "applicable", ())
        result.applicable = tuple(applicable)
        if self.root:  # the set a response is made of names them all
            result.sources = result.applicable
        return result

    def _decided_by(self, child: Result) -> Result | None:
        """A policy set's result when one bare child (or none: `nobody`) decided,
        memoised on that child; None when the set's own obligations depend on the request."""
        if child.memo is None:
            outputs = self.on_permit if child.decision == PERMIT else self.on_deny
            if outputs.fixed is None:
                return None
            sources = (child.id,) if child.id else ()
            child.memo = Result(child.decision, self.id, *outputs.fixed, sources=sources)
        return child.memo  # type: ignore[no-any-return]

    def _conclude(self, decision: int, results: Sequence[Result], request: Request) -> Result:
        errors: tuple[EvaluationError, ...] = ()
        for result in results:
            if result.errors:
                errors += result.errors
        chosen = selected(decision, results)
        sources = tuple(r.id for r in chosen) if self.with_sources else ()
        if decision >= INDETERMINATE_D:
            return Result(decision, self.id, (), (), errors, chosen[0].cause, sources)
        outputs = self.on_permit if decision == PERMIT else self.on_deny
        own = outputs.fixed or outputs.resolve(request, self.where)
        if isinstance(own, EvaluationError):
            return Result(indeterminate_of(decision), self.id, (), (), (*errors, own), own, sources)
        obligations, advice = own
        for result in reversed(chosen):
            if result.obligations:
                obligations = result.obligations + obligations
            if result.advice:
                advice = result.advice + advice
        return Result(decision, self.id, obligations, advice, errors, None, sources)


def _bare(results: Sequence[Result]) -> bool:
    """No child carries obligations, advice or errors."""
    for result in results:  # noqa: SIM110 - a loop beats all() on the hot path
        if result.errors or result.obligations or result.advice:
            return False
    return True
