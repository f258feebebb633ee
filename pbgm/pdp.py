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

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

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
from pbgm.evaluator import INDEX_THRESHOLD, CompiledPolicy, combining_parts, compile_target
from pbgm.model import (
    Apply,
    AttributeRef,
    Decision,
    EvaluationError,
    Expr,
    ObligationExpression,
    PolicySet,
    Request,
    Response,
    Status,
)
from pbgm.pip import PolicyInformationPoint

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The default clock (the decision core itself never reads a clock)."""
    return datetime.now(UTC)


NOT_APPLICABLE_RESPONSE = Response(Decision.NOT_APPLICABLE)

STATUS_CODES = {"missing_attribute": "missing-attribute"}
"""Error codes with their own status; every other error is a `processing-error`."""


class CompiledPolicySet(Combining):
    """A policy set compiled once; `evaluate` is safe to call from many threads."""

    with_sources = True
    owner = None

    def __init__(self, policy_set: PolicySet, index_threshold: int = INDEX_THRESHOLD) -> None:
        self.id = policy_set.id
        self.revision = policy_set.revision
        self.target = compile_target(policy_set.target)
        self.children = tuple(CompiledPolicy(p, index_threshold) for p in policy_set.policies)
        parts = combining_parts(
            self.children, policy_set.obligations, policy_set.advice, index_threshold
        )
        self.setup(policy_set.policy_combining, *parts)
        self.uses_current_time = _uses_current_time(policy_set)
        self.problems = tuple(self._problems())

    def __len__(self) -> int:
        return len(self.children)

    def evaluate(self, request: Request, now: datetime) -> Result:
        if self.target is not None and not self.target(request):
            return NOT_APPLICABLE_RESULT
        return self.combined(request, now)

    def _problems(self) -> Iterable[EvaluationError]:
        """Compile-time errors: the parts that evaluate to Indeterminate when they apply."""
        if self.failure is not None:
            yield self.failure
        for policy in self.children:
            if policy.failure is not None:
                yield policy.failure
            yield from (rule.failure for rule in policy.children if rule.failure is not None)


def compile_policy_set(
    policy_set: PolicySet | None, *, index_threshold: int = INDEX_THRESHOLD
) -> CompiledPolicySet:
    """Compile once for many decisions. None compiles the empty set (NotApplicable).
    Never raises on bad policy data: see `CompiledPolicySet.problems`."""
    return CompiledPolicySet(policy_set or PolicySet(id=""), index_threshold)


def _uses_current_time(policy_set: PolicySet) -> bool:
    expressions: list[Expr] = []
    outputs: list[ObligationExpression] = [*policy_set.obligations, *policy_set.advice]
    for policy in policy_set.policies:
        outputs += [*policy.obligations, *policy.advice]
        for rule in policy.rules:
            outputs += [*rule.obligations, *rule.advice]
            expressions += [rule.condition] if rule.condition is not None else []
    expressions += [e for o in outputs for e in o.attributes.values()]
    return any(_mentions_current_time(e) for e in expressions)


def _mentions_current_time(expr: Expr) -> bool:
    if isinstance(expr, AttributeRef):
        return expr.category == "environment" and expr.name == "current_time"
    return isinstance(expr, Apply) and any(_mentions_current_time(a) for a in expr.args)


# --- the pure core ---------------------------------------------------------------


def evaluate(compiled: CompiledPolicySet, request: Request, now: datetime) -> Response:
    """Decide `request` against `compiled` at the moment `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise InvalidInputError("`now` must be timezone-aware")
    if compiled.uses_current_time and request.environment.get("current_time") is None:
        request = with_current_time(request, now)
    try:
        result = compiled.evaluate(request, now)
    except Exception:  # fail closed: a bug is Indeterminate, never an exception to the caller
        log.exception("policy set %r crashed while deciding", compiled.id)
        error = EvaluationError("processing_error", "evaluation failed unexpectedly")
        result = Result(INDETERMINATE_DP, compiled.id, errors=(error,), cause=error)
    return report(result)


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
    status = Status()
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
        compiled = compile_policy_set(policy_set, index_threshold=self._index_threshold)
        for problem in compiled.problems:
            log.warning("policy set %r: %s", compiled.id, problem.message)
        self._compiled, self._loaded = compiled, True

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
        compiled = self._current()
        return self._decide(compiled, request, self._clock() if now is None else now)

    def decide_batch(
        self, requests: Iterable[Request], *, now: datetime | None = None
    ) -> list[Response]:
        """Decide several requests against one snapshot of the policy set and one `now`."""
        compiled = self._current()
        moment = self._clock() if now is None else now
        return [self._decide(compiled, request, moment) for request in requests]

    def _current(self) -> CompiledPolicySet:
        if not self._loaded and self._source is not None and not self._tried_source:
            self._tried_source = True
            try:
                self.refresh()
            except Exception:
                log.exception("could not load the policy set; deciding with none (deny)")
        return self._compiled

    def _decide(self, compiled: CompiledPolicySet, request: Request, now: datetime) -> Response:
        if self._pip is None:
            return evaluate(compiled, request, now)
        request, errors = self._pip.resolve(request)
        response = evaluate(compiled, request, now)
        if not errors:
            return response
        return replace(response, errors=(*errors, *response.errors))
