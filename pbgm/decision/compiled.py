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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from immutables import Map

from pbgm.decision.changes import changed_children, key_values
from pbgm.decision.combining import (
    INDETERMINATE_D,
    NOT_APPLICABLE,
    NOT_APPLICABLE_RESULT,
    Combining,
    Result,
    collapse,
)
from pbgm.decision.evaluator import (
    INDEX_THRESHOLD,
    CandidateIndex,
    combining_parts,
    compile_target,
    outputs_use_current_time,
)
from pbgm.decision.flat import LEAF_SEGMENT, FlatPolicy, compile_policy
from pbgm.decision.lazy import LazyPolicy
from pbgm.decision.membership import holds
from pbgm.decision.nested import CompiledPolicySetNode, descendants
from pbgm.model import (
    STATUS_OK,
    Decision,
    EvaluationError,
    Policy,
    PolicySet,
    Request,
    Response,
    Status,
)

NOT_APPLICABLE_RESPONSE = Response(Decision.NOT_APPLICABLE)
_NO_REQUEST = Request()

_BUILD: Any = object()
_SHARED_SLOTS = (
    "id",
    "owner",
    "index_threshold",
    "specialise",
    "target",
    "combine",
    "one_child",
    "failure",
    "on_permit",
    "on_deny",
    "nobody",
    "plain",
    "tracking",
)
"""What a changed set takes from the set it was changed from: all of it depends on the
set's own document, not on its policies."""

STATUS_CODES = {"missing_attribute": "missing-attribute"}
"""Error codes with their own status; every other error is a `processing-error`."""


class CompiledPolicySet(Combining):
    """A policy set compiled once; `evaluate` is safe to call from many threads.

    `uses_time` tells whether a decision depends on `now` at all (a validity window,
    or `environment.current_time` in a condition or obligation): when it does not,
    the decision point reads no clock.

    A compiled set never changes once built (but for what it learns about its lazy
    policies, which changes no decision): `updated` makes a new set with some policies
    added, replaced or removed, sharing everything else (`pbgm.decision.changes`).
    """

    __slots__ = (
        "header",
        "index_threshold",
        "leaves",
        "ordered",
        "problems",
        "revision",
        "single",
        "specialise",
        "target",
        "timed",
        "uses_current_time",
        "uses_time",
    )

    with_sources = True
    root = True

    def __init__(
        self,
        policy_set: PolicySet,
        index_threshold: int = INDEX_THRESHOLD,
        *,
        specialise: bool = True,
        policies: Iterable[Policy | LazyPolicy] | None = None,
    ) -> None:
        """`policies`, when given, stand for those of `policy_set` and are compiled as
        they come (each parsed policy may go once compiled); a `LazyPolicy` among them
        is kept as it is, to be compiled when a decision first reaches it."""
        children = [
            p
            if isinstance(p, LazyPolicy)
            else compile_policy(p, index_threshold, specialise=specialise)
            for p in (policy_set.policies if policies is None else policies)
        ]
        self.assemble(policy_set, tuple(children), index_threshold, specialise)

    def assemble(
        self,
        header: PolicySet,
        children: Sequence[Any],
        index_threshold: int,
        specialise: bool,
        index: Any = _BUILD,
    ) -> None:
        """Make this set from `header` (its own policies ignored) and compiled (or lazy)
        `children`, with their index (built here unless given)."""
        self.header = replace(header, policies=())
        self.id, self.owner, self.revision = header.id, None, header.revision
        self.index_threshold, self.specialise = index_threshold, specialise
        self.target = compile_target(header.target)
        self.children = children
        self.ordered = _increasing(children)
        parts = combining_parts(
            children, header.obligations, header.advice, index_threshold, ordered=self.ordered
        )
        self.setup(header.policy_combining, *parts[:2], parts[2] if index is _BUILD else index)
        reads_time = outputs_use_current_time(header.obligations, header.advice)
        self.timed = (
            sum(1 for child in children if child.windowed),
            sum(1 for child in children if child.uses_current_time) + reads_time,
        )
        self._timing()
        own = () if self.failure is None else (self.failure,)
        self.problems = (*own, *self.problems_of(children))
        self.single: tuple[Any, ...] | None = None
        self.leaves: Map[str, tuple[Any, ...]] | None = None
        if specialise and isinstance(self.index, CandidateIndex) and self.combine is not None:
            self.single = self.index.single
            if self.single is not None:
                self._share_results(children)
                if self.on_permit.fixed is not None and self.on_deny.fixed is not None:
                    self.leaves = self._leaves()

    def track(self) -> CompiledPolicySet:
        """Make this set (and the policy sets in it) list the applicable policies of each
        decision: its response's `policy_ids` are then every policy and policy set that was
        applicable (evaluated and not NotApplicable, under an applicable parent), as XACML's
        `ReturnPolicyIdList` asks, rather than the deciding policies. The set's shared and
        specialised results are given up for it; returns the set."""
        self.tracking = True
        self.single = self.leaves = None
        for node in descendants(self.children):
            if isinstance(node, CompiledPolicySetNode):
                node.tracking = True
        return self

    def _timing(self) -> None:
        windowed, current = self.timed
        self.uses_current_time = current > 0
        self.uses_time = self.uses_current_time or windowed > 0

    def updated(
        self,
        policies: Iterable[Policy | LazyPolicy] = (),
        removed: Iterable[str] = (),
        *,
        revision: int | None = None,
        header: PolicySet | None = None,
    ) -> CompiledPolicySet:
        """A new set with `policies` added (or, where their id is here, in place of the
        policy with that id) and the policies with the ids in `removed` taken out,
        stamped `revision` (default: this set's); this set is left as it was. Only the
        new policies are compiled, and the index changes only at their key values
        (`pbgm.decision.changes`). A new policy goes where the order of ids puts it: a
        set in id order (as a store gives it) stays in id order; in another set new
        policies go last. Policy ids must be unique. A `header` (the set's own document,
        its policies ignored) that differs from this set's makes the set again around
        the same compiled policies."""
        with gc_paused():
            nodes = [
                p
                if isinstance(p, LazyPolicy)
                else compile_policy(p, self.index_threshold, specialise=self.specialise)
                for p in policies
            ]
            ordered = self.ordered or _increasing(self.children)  # kept when true: O(1)
            children, gone = changed_children(self.children, ordered, nodes, removed)
            new = object.__new__(CompiledPolicySet)
            new.ordered = ordered or _increasing(children)
            own = self.header if header is None else replace(header, policies=())
            if revision is not None:
                own = replace(own, revision=revision)
            same = replace(own, revision=self.revision) == self.header
            index = None
            if same and self.index is not None and len(children) > self.index_threshold:
                index = self.index.updated(children, gone, nodes, ordered=new.ordered)  # type: ignore[attr-defined]
            if index is None:  # a new shape of index: built again, nothing compiled again
                new.assemble(own, children, self.index_threshold, self.specialise)
            else:
                new._changed_from(self, own, children, index, gone, nodes)
            return new

    def _changed_from(
        self,
        old: CompiledPolicySet,
        header: PolicySet,
        children: Sequence[Any],
        index: CandidateIndex,
        gone: list[Any],
        added: list[Any],
    ) -> None:
        """Make this set as `old` changed by `gone` and `added` (see `updated`)."""
        for name in _SHARED_SLOTS:
            setattr(self, name, getattr(old, name))
        self.header, self.revision = header, header.revision
        self.children, self.index = children, index
        windowed, current = old.timed
        windowed += sum(c.windowed for c in added) - sum(c.windowed for c in gone)
        current += sum(c.uses_current_time for c in added) - sum(c.uses_current_time for c in gone)
        self.timed = (windowed, current)
        self._timing()
        left = {child.id for child in gone}
        kept = [problem for problem in old.problems if problem.policy_id not in left]
        self.problems = (*kept, *self.problems_of(added))
        self.single = index.single if old.single is not None else None
        self.leaves = None
        if self.single is not None:
            self._share_results(added)
            if old.leaves is not None:
                with old.leaves.mutate() as leaves:
                    for value in key_values((*gone, *added)):
                        leaf = self.leaf_of(value)
                        if leaf is None:
                            leaves.pop(value, None)
                        else:
                            leaves[value] = leaf
                    self.leaves = leaves.finish()

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
                child = found[0]
                if child.__class__ is LazyPolicy:
                    child = self._learn(value, child)
                return self.finish_one(child.evaluate_keyed(request, now), request)
        return self.combined(request, now)

    def _learn(self, value: str, lazy: LazyPolicy) -> Any:
        """The compiled form of a lazy policy found alone by its key `value`, and its
        leaf kept for the next decisions when it has one. (Two decisions learning at
        once may each keep only their own leaf: the other is learnt again next time.)"""
        node = lazy.node()
        leaves = self.leaves
        if leaves is not None and isinstance(node, FlatPolicy) and value in self.single[2]:  # type: ignore[index]
            leaf = node.leaf(self._answer)
            if leaf is not None:
                self.leaves = leaves.set(value, leaf)
        return node

    def _share_results(self, children: Iterable[Any]) -> None:
        """Make, at load time, the results and responses shared by the decisions one
        bare policy (or none) makes, rather than on the first such decision."""
        assert self.nobody is not None
        shared = [*self.nobody]
        for policy in children:
            if policy.__class__ is not LazyPolicy:
                shared += [r for r in policy.plain[:NOT_APPLICABLE] if r is not None]
        for result in shared:
            if not (result.obligations or result.advice or result.errors):
                memo = self._decided_by(result)
                if memo is not None:
                    report(memo)

    def _answer(self, result: Result) -> Response:
        """The response of a leaf for a policy's `result` (the set's outputs are fixed)."""
        decided = self.finish_one(result, _NO_REQUEST)
        return decided.memo or report(decided)

    def leaf_of(self, value: Any) -> tuple[Any, ...] | None:
        """The leaf for the key `value`: its entry of the single index holds one flat
        policy (compiled), which can answer from a leaf."""
        found = self.single[2].get(value) if value.__class__ is str else None  # type: ignore[index]
        if found is None or len(found) != 1 or not isinstance(found[0], FlatPolicy):
            return None
        return found[0].leaf(self._answer)

    def _leaves(self) -> Map[str, tuple[Any, ...]]:
        leaves = {}
        for value in self.single[2]:  # type: ignore[index]
            leaf = self.leaf_of(value)
            if leaf is not None:
                leaves[value] = leaf
        return Map(leaves)

    @staticmethod
    def problems_of(children: Iterable[Any]) -> Iterable[EvaluationError]:
        """Compile-time errors of `children`: the parts that evaluate to Indeterminate
        when they apply (lazy policies report theirs when compiled)."""
        for policy in descendants(children):
            if policy.__class__ is LazyPolicy:
                continue
            if policy.failure is not None:
                yield policy.failure
            if not isinstance(policy, CompiledPolicySetNode):
                yield from (rule.failure for rule in policy.children if rule.failure is not None)


def _increasing(children: Sequence[Any]) -> bool:
    """Whether the children are in strictly increasing order of their ids."""
    return all(a.id < b.id for a, b in pairwise(children))


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
    policies: Iterable[Policy | LazyPolicy],
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
    code = STATUS_CODES.get(error.code, "processing-error")
    return Status(code, error.message, error.missing)
