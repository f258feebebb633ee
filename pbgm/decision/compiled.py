"""The compiled policy set: what the decision point decides with.

`compile_policy_set` (or `compile_policies`, one policy at a time)
turns a policy set into a `CompiledPolicySet` once; its `respond` decides one
request, from the leaf of the one flat policy its key selects (`pbgm.decision.flat`)
when there is one, else through the general evaluator (`pbgm.decision.evaluator`,
`pbgm.decision.combining`). `report` turns a policy set's result into the response.
The decision point (`pbgm.pdp`) wraps it with the clock, the PIP and the
atomic swap on reload.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pbgm.decision.combining import (
    INDETERMINATE_D,
    NOT_APPLICABLE,
    NOT_APPLICABLE_RESULT,
    Combining,
    Result,
    collapse,
)
from pbgm.decision.evaluator import INDEX_THRESHOLD, CandidateIndex, combining_parts, compile_target
from pbgm.decision.flat import LEAF_SEGMENT, FlatPolicy, compile_policy
from pbgm.decision.membership import holds
from pbgm.model import (
    STATUS_OK,
    Apply,
    AttributeRef,
    Decision,
    EvaluationError,
    Expr,
    ObligationExpression,
    Policy,
    PolicySet,
    Request,
    Response,
    Status,
)

NOT_APPLICABLE_RESPONSE = Response(Decision.NOT_APPLICABLE)
_NO_REQUEST = Request()

STATUS_CODES = {"missing_attribute": "missing-attribute"}
"""Error codes with their own status; every other error is a `processing-error`."""


class CompiledPolicySet(Combining):
    """A policy set compiled once; `evaluate` is safe to call from many threads.

    `uses_time` tells whether a decision depends on `now` at all (a validity window,
    or `environment.current_time` in a condition or obligation): when it does not,
    the decision point reads no clock.
    """

    __slots__ = (
        "leaves",
        "problems",
        "revision",
        "single",
        "target",
        "uses_current_time",
        "uses_time",
    )

    with_sources = True

    def __init__(
        self,
        policy_set: PolicySet,
        index_threshold: int = INDEX_THRESHOLD,
        *,
        specialise: bool = True,
        policies: Iterable[Policy] | None = None,
    ) -> None:
        """`policies`, when given, stand for those of `policy_set` and are compiled as
        they come (each parsed policy may go once compiled)."""
        self.id, self.owner = policy_set.id, None
        self.revision = policy_set.revision
        self.target = compile_target(policy_set.target)
        self.uses_current_time = _outputs_use_current_time(
            policy_set.obligations, policy_set.advice
        )
        children = []
        for policy in policy_set.policies if policies is None else policies:
            children.append(compile_policy(policy, index_threshold, specialise=specialise))
            if not self.uses_current_time:
                self.uses_current_time = _policy_uses_current_time(policy)
        self.children = tuple(children)
        parts = combining_parts(
            self.children, policy_set.obligations, policy_set.advice, index_threshold
        )
        self.setup(policy_set.policy_combining, *parts)
        self.uses_time = self.uses_current_time or any(p.windowed for p in self.children)
        self.problems = tuple(self._problems())
        self.single: tuple[Any, ...] | None = None
        self.leaves: dict[str, tuple[Any, ...]] | None = None
        if specialise and isinstance(self.index, CandidateIndex) and self.combine is not None:
            self.single = self.index.single
            if self.single is not None:
                self._share_results()

    def __len__(self) -> int:
        return len(self.children)

    def respond(self, request: Request, now: datetime) -> Response:
        """The response to `request`: straight from the leaf of the one flat policy its
        key selects (`pbgm.decision.flat`) when there is one, else as `evaluate` decides (the
        target checked and the key read once, whichever path decides)."""
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESPONSE
        single = self.single
        if single is None:
            result = self.combined(request, now)
        else:
            value = single[0](request).get(single[1])
            leaves = self.leaves
            leaf = leaves.get(value) if leaves is not None and value.__class__ is str else None
            if leaf is not None:
                bag, name, slots = leaf[0]
                key = bag(request).get(name)
                if key.__class__ is str:
                    slot = slots.get(key)
                    if slot is None:
                        return leaf[1]  # type: ignore[no-any-return]
                    at = 2 + LEAF_SEGMENT * slot
                    hit = holds(leaf, request, at + 2, at + LEAF_SEGMENT)
                    if hit is not None:
                        return leaf[at] if hit else leaf[at + 1]  # type: ignore[no-any-return]
            result = self._keyed(value, request, now)
        response = result.memo
        return response if response is not None else report(result)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESULT
        single = self.single
        if single is None:
            return self.combined(request, now)
        return self._keyed(single[0](request).get(single[1]), request, now)

    def _keyed(self, value: Any, request: Request, now: datetime) -> Result:
        """`evaluate` once the target holds, `value` being the request's value of the
        key of the single index: one candidate found by a string key is evaluated
        alone (the specialised path), anything else is combined."""
        if value.__class__ is str:
            found = self.single[2].get(value, self.single[3])  # type: ignore[index]
            if len(found) == 1:
                return self.finish_one(found[0].evaluate_keyed(request, now), request)
        return self.combined(request, now)

    def _share_results(self) -> None:
        """Make, at load time, the results and responses shared by the decisions one
        bare policy (or none) makes, rather than on the first such decision; and the
        leaves of the flat policies found alone by their key."""
        assert self.nobody is not None and self.single is not None
        shared = [*self.nobody]
        for policy in self.children:
            shared += [r for r in policy.plain[:NOT_APPLICABLE] if r is not None]
        for result in shared:
            if not (result.obligations or result.advice or result.errors):
                memo = self._decided_by(result)
                if memo is not None:
                    report(memo)
        if self.on_permit.fixed is not None and self.on_deny.fixed is not None:
            self.leaves = self._leaves()

    def _leaves(self) -> dict[str, tuple[Any, ...]]:
        def answer(result: Result) -> Response:
            decided = self.finish_one(result, _NO_REQUEST)  # the set's outputs are fixed
            return decided.memo or report(decided)

        leaves = {}
        for value, found in self.single[2].items():  # type: ignore[index]
            if value.__class__ is str and len(found) == 1 and isinstance(found[0], FlatPolicy):
                leaf = found[0].leaf(answer)
                if leaf is not None:
                    leaves[value] = leaf
        return leaves

    def _problems(self) -> Iterable[EvaluationError]:
        """Compile-time errors: the parts that evaluate to Indeterminate when they apply."""
        if self.failure is not None:
            yield self.failure
        for policy in self.children:
            if policy.failure is not None:
                yield policy.failure
            yield from (rule.failure for rule in policy.children if rule.failure is not None)


def compile_policy_set(
    policy_set: PolicySet | None,
    *,
    index_threshold: int = INDEX_THRESHOLD,
    specialise: bool = True,
) -> CompiledPolicySet:
    """Compile once for many decisions. None compiles the empty set (NotApplicable).
    Never raises on bad policy data: see `CompiledPolicySet.problems`.

    `specialise=False` compiles only the general evaluator (the specialised paths
    of `pbgm.decision.flat` are tested against it). The garbage collector is paused while
    compiling: the compiled set is a large graph without cycles it need not scan.
    """
    with gc_paused():
        return CompiledPolicySet(
            policy_set or PolicySet(id=""), index_threshold, specialise=specialise
        )


def compile_policies(
    header: PolicySet,
    policies: Iterable[Policy],
    *,
    index_threshold: int = INDEX_THRESHOLD,
    specialise: bool = True,
) -> CompiledPolicySet:
    """Compile `header` (a policy set whose own policies are ignored) with `policies`,
    taken one at a time: a lazy iterable keeps only one parsed policy alive, so this is
    the lean way to load many (`pbgm.pdp.compile_documents` parses documents into it). The
    garbage collector stays paused throughout."""
    with gc_paused():
        return CompiledPolicySet(header, index_threshold, specialise=specialise, policies=policies)


_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # pauses in progress, whether the collector was enabled before


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the garbage collector for a block, from any number of threads at once;
    it is enabled again after the last one only if it was enabled before the first."""
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def _outputs_use_current_time(*groups: Iterable[ObligationExpression]) -> bool:
    return any(_mentions_current_time(e) for g in groups for o in g for e in o.attributes.values())


def _policy_uses_current_time(policy: Policy) -> bool:
    """Whether a condition or an obligation of the policy reads `environment.current_time`."""
    if _outputs_use_current_time(policy.obligations, policy.advice):
        return True
    for rule in policy.rules:
        if rule.condition is not None and _mentions_current_time(rule.condition):
            return True
        if _outputs_use_current_time(rule.obligations, rule.advice):
            return True
    return False


def _mentions_current_time(expr: Expr) -> bool:
    pending = [expr]
    while pending:
        node = pending.pop()
        if isinstance(node, Apply):
            pending += node.args
        elif isinstance(node, AttributeRef) and node.path == "environment.current_time":
            return True
    return False


def report(result: Result) -> Response:
    """The response for a policy set's result: extended Indeterminate collapsed,
    status from the error that caused an Indeterminate."""
    if result.decision == NOT_APPLICABLE and not result.errors:
        return NOT_APPLICABLE_RESPONSE
    if result.memo is not None:
        return result.memo  # type: ignore[no-any-return]
    status = STATUS_OK
    if result.decision >= INDETERMINATE_D:
        status = status_of(result.cause)
    response = Response(
        collapse(result.decision),
        status,
        result.obligations,
        result.advice,
        result.sources,
        result.errors,
    )
    result.memo = response
    return response


def status_of(error: EvaluationError | None) -> Status:
    if error is None:
        return Status("processing-error", "indeterminate")
    return Status(STATUS_CODES.get(error.code, "processing-error"), error.message)
