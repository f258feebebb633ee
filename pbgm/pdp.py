"""The Policy Decision Point.

`evaluate(compiled_set, request, now)` is the pure decision core: it reads no
clock, does no IO and raises on nothing but a naive `now`, so a decision can be
replayed from a log. `PolicyDecisionPoint` wraps it with what a service needs:
a compiled policy set swapped atomically on reload, an optional Policy
Information Point, and a clock.

Time: `now` decides the validity windows of policies, and reaches conditions as
the request attribute `environment.current_time` unless the request carries one.

Default deny: an absent or empty policy set, or a request no policy applies to,
is `NotApplicable`. The PDP reports it as such; `Response.allowed` is False and
the Policy Enforcement Point (`pbgm.pep`) denies it, as it denies Indeterminate.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pbgm._flat import LEAF_SEGMENT, FlatPolicy, compile_policy
from pbgm._membership import holds
from pbgm.combining import (
    INDETERMINATE_D,
    INDETERMINATE_DP,
    NOT_APPLICABLE,
    NOT_APPLICABLE_RESULT,
    Combining,
    Result,
    collapse,
)
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.evaluator import INDEX_THRESHOLD, CandidateIndex, combining_parts, compile_target
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
from pbgm.pip import PolicyInformationPoint
from pbgm.syntax import parse_policy, parse_policy_set

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The default clock (the decision core itself never reads a clock)."""
    return datetime.now(UTC)


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
        key selects (`pbgm._flat`) when there is one, else from `evaluate`."""
        leaves = self.leaves
        if leaves is not None and (self.target is None or self.target(request)):
            value = self.single[0](request).get(self.single[1])  # type: ignore[index]
            if value.__class__ is str:
                leaf = leaves.get(value)
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
        result = self.evaluate(request, now)
        response = result.memo
        return response if response is not None else report(result)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESULT
        single = self.single
        if single is not None:  # one candidate found by its key: the specialised path
            value = single[0](request).get(single[1])
            if value.__class__ is str:
                found = single[2].get(value, single[3])
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
    of `pbgm._flat` are tested against it). The garbage collector is paused while
    compiling: the compiled set is a large graph without cycles it need not scan.
    """
    with gc_paused():
        return CompiledPolicySet(
            policy_set or PolicySet(id=""), index_threshold, specialise=specialise
        )


def compile_documents(
    set_document: Mapping[str, Any],
    policy_documents: Iterable[Mapping[str, Any]],
    *,
    revision: int = 0,
    index_threshold: int = INDEX_THRESHOLD,
    specialise: bool = True,
) -> CompiledPolicySet:
    """`compile_policy_set(policy_set_from_documents(set_document, policy_documents))`,
    leaner: each `pbgm/v1` document is parsed (`pbgm.syntax.parse_policy`) and compiled
    in turn, so only one parsed policy is held at a time, and the garbage collector
    stays paused throughout. For loading many policies at once. The documents are
    expected valid (`pbgm.validate`, as the store keeps them); one that does not
    parse raises as `parse_policy` does."""
    header = parse_policy_set(set_document, (), revision=revision)
    with gc_paused():
        policies = (parse_policy(document) for document in policy_documents)
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


# --- the pure core ---------------------------------------------------------------


def evaluate(compiled: CompiledPolicySet, request: Request, now: datetime) -> Response:
    """Decide `request` against `compiled` at the moment `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise InvalidInputError("`now` must be timezone-aware")
    return respond(compiled, request, now)


def respond(compiled: CompiledPolicySet, request: Request, now: datetime | None) -> Response:
    """`evaluate` without checking `now`, which may be None when the set does not use time."""
    if compiled.uses_current_time and request.environment.get("current_time") is None:
        request = with_current_time(request, now)  # type: ignore[arg-type]
    try:
        return compiled.respond(request, now)  # type: ignore[arg-type]
    except Exception:
        return _crashed(compiled)


def _crashed(compiled: CompiledPolicySet) -> Response:
    """Fail closed: a bug is Indeterminate, never an exception to the caller."""
    log.exception("policy set %r crashed while deciding", compiled.id)
    error = EvaluationError("processing_error", "evaluation failed unexpectedly")
    return report(Result(INDETERMINATE_DP, compiled.id, errors=(error,), cause=error))


def with_current_time(request: Request, now: datetime) -> Request:
    environment = MappingProxyType({**request.environment, "current_time": now})
    return Request(request.subject, request.resource, request.action, environment)


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


# --- the service -------------------------------------------------------------------


class PolicyDecisionPoint:
    """Decides requests against the current compiled policy set.

    Thread-safe: deciders read one reference to an immutable compiled set; `load`
    compiles first and then swaps that reference, so readers never see a half-built
    set. With a `source` and no initial set, the first decision loads from the
    source once (if that fails the empty set, which denies, stays until `refresh`).
    """

    def __init__(
        self,
        policy_set: PolicySet | None = None,
        *,
        source: Callable[[], PolicySet] | None = None,
        pip: PolicyInformationPoint | None = None,
        clock: Callable[[], datetime] = utc_now,
        index_threshold: int = INDEX_THRESHOLD,
    ) -> None:
        self._source, self._pip, self._clock = source, pip, clock
        self._index_threshold = index_threshold
        self._lock = threading.Lock()
        self._loaded = policy_set is not None
        self._tried_source = False
        self._compiled = compile_policy_set(policy_set, index_threshold=index_threshold)

    @property
    def revision(self) -> int | None:
        """The revision of the compiled set; None before anything was loaded."""
        return self._compiled.revision if self._loaded else None

    @property
    def compiled(self) -> CompiledPolicySet:
        return self._compiled

    def load(self, policy_set: PolicySet) -> None:
        """Compile `policy_set` and make it current in one reference assignment."""
        self._install(compile_policy_set(policy_set, index_threshold=self._index_threshold))

    def _install(self, compiled: CompiledPolicySet) -> None:
        for problem in compiled.problems:
            log.warning("policy set %r: %s", compiled.id, problem.message)
        self._compiled, self._loaded = compiled, True

    def load_documents(
        self,
        set_document: Mapping[str, Any],
        policy_documents: Iterable[Mapping[str, Any]],
        *,
        revision: int = 0,
    ) -> None:
        """`load` for `pbgm/v1` documents, parsed and compiled one at a time
        (`compile_documents`): the lean way to load many policies. A document that
        does not parse raises, and the current set stays."""
        compiled = compile_documents(
            set_document,
            policy_documents,
            revision=revision,
            index_threshold=self._index_threshold,
        )
        self._install(compiled)

    def refresh(self, revision: int | None = None) -> bool:
        """Reload from the source unless `revision` (or the source's set) is the
        compiled one. True when a new set was loaded. Errors of the source are
        raised and the current set is kept."""
        if self._source is None:
            raise ConfigurationError("no policy source configured for this decision point")
        with self._lock:
            if revision is not None and self._loaded and revision == self._compiled.revision:
                return False
            policy_set = self._source()
            if self._loaded and policy_set.revision == self._compiled.revision:
                return False
            self.load(policy_set)
            return True

    def decide(self, request: Request, *, now: datetime | None = None) -> Response:
        """Decide `request` at `now`, by default the clock's time, which is read only
        when the policy set uses time (validity windows, `environment.current_time`)."""
        compiled = self._compiled if self._loaded else self._current()
        if now is None and self._pip is None and not compiled.uses_time:
            try:  # the common case, straight (`respond` without its checks)
                return compiled.respond(request, None)  # type: ignore[arg-type]
            except Exception:
                return _crashed(compiled)
        return self._decide(compiled, request, now)

    def decide_batch(
        self, requests: Iterable[Request], *, now: datetime | None = None
    ) -> list[Response]:
        """Decide several requests against one snapshot of the policy set and one `now`
        (the clock read at most once)."""
        compiled = self._compiled if self._loaded else self._current()
        if now is None and compiled.uses_time:
            now = self._clock()
        return [self._decide(compiled, request, now) for request in requests]

    def _current(self) -> CompiledPolicySet:
        if not self._loaded and self._source is not None and not self._tried_source:
            self._tried_source = True
            try:
                self.refresh()
            except Exception:
                log.exception("could not load the policy set; deciding with none (deny)")
        return self._compiled

    def _answer(
        self, compiled: CompiledPolicySet, request: Request, now: datetime | None
    ) -> Response:
        if now is not None:
            return evaluate(compiled, request, now)
        if compiled.uses_time:
            return evaluate(compiled, request, self._clock())
        return respond(compiled, request, None)

    def _decide(
        self, compiled: CompiledPolicySet, request: Request, now: datetime | None
    ) -> Response:
        if self._pip is None:
            return self._answer(compiled, request, now)
        request, errors = self._pip.resolve(request)
        response = self._answer(compiled, request, now)
        if not errors:
            return response
        return replace(response, errors=(*errors, *response.errors))
