"""The Policy Decision Point.

`evaluate(compiled_set, request, now)` is the pure decision core: it reads no
clock, does no IO and raises on nothing but a naive `now`, so a decision can be
replayed from a log (the compiled set itself is `pbgm.decision.compiled`; its compile
functions are exported here too). `PolicyDecisionPoint` wraps it with what a service needs:
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pbgm.decision import (
    INDETERMINATE_DP,
    INDEX_THRESHOLD,
    CompiledPolicySet,
    Result,
    compile_policies,
    compile_policy_set,
    report,
)
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.model import EvaluationError, PolicySet, Request, Response, utc_now
from pbgm.pip import PolicyInformationPoint
from pbgm.policy import parse_policy, parse_policy_set

__all__ = [
    "CompiledPolicySet",
    "PolicyDecisionPoint",
    "compile_documents",
    "compile_policy_set",
    "evaluate",
    "report",
    "respond",
    "utc_now",
    "with_current_time",
]

log = logging.getLogger(__name__)


def compile_documents(
    set_document: Mapping[str, Any],
    policy_documents: Iterable[Mapping[str, Any]],
    *,
    revision: int = 0,
    index_threshold: int = INDEX_THRESHOLD,
    specialise: bool = True,
) -> CompiledPolicySet:
    """`compile_policy_set(policy_set_from_documents(set_document, policy_documents))`,
    leaner: each `pbgm/v1` document is parsed (`pbgm.policy.syntax.parse_policy`) and
    compiled in turn, so only one parsed policy is held at a time. For loading many
    policies at once. The documents are expected valid (`pbgm.policy.validate`, as the
    store keeps them); one that does not parse raises as `parse_policy` does."""
    header = parse_policy_set(set_document, (), revision=revision)
    policies = (parse_policy(document) for document in policy_documents)
    return compile_policies(
        header, policies, index_threshold=index_threshold, specialise=specialise
    )


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


def _bag(value: Mapping[str, Any] | str) -> Mapping[str, Any]:
    return {"id": value} if isinstance(value, str) else value


def with_current_time(request: Request, now: datetime) -> Request:
    environment = MappingProxyType({**request.environment, "current_time": now})
    return Request(request.subject, request.resource, request.action, environment)


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

    def is_permitted(
        self,
        *,
        subject: Mapping[str, Any] | str,
        resource: Mapping[str, Any] | str,
        action: Mapping[str, Any] | str,
        environment: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> bool:
        """True only for a Permit that carries no obligation.

        A text stands for `{"id": text}`. A Permit with obligations is False: only a
        Policy Enforcement Point that discharges them may act on it (`pbgm.pep`), so
        `is_permitted` fails closed. Use `decide` for the whole `Response`.
        """
        request = Request(
            subject=_bag(subject),
            resource=_bag(resource),
            action=_bag(action),
            environment=environment if environment is not None else {},
        )
        response = self.decide(request, now=now)
        return response.allowed and not response.obligations

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
