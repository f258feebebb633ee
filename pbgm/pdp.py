"""The Policy Decision Point.

`evaluate(compiled_set, request, now)` is the pure decision core: it reads no
clock, does no IO and raises on nothing but a naive `now`, so a decision can be
replayed from a log (the compiled set itself is `pbgm.decision.compiled`; its compile
functions are exported here too). `PolicyDecisionPoint` wraps it with what a service needs:
a compiled policy set swapped atomically on reload, an optional Policy
Information Point, and a clock.

Following a store: `PolicyDecisionPoint(store=..., policy_group=...)` loads the
store's published policies lazily (indexed by their target at once, each compiled
when a decision first reaches it: `pbgm.decision.lazy`) and `sync()` applies only what
the store's change feed says changed since (`CompiledPolicySet.updated`). A `Follower`
is the one thread per process that syncs decision points in the background, so that
no request ever waits for a reload: decisions go on against the current set while
the next one is prepared, and see it whole once it is swapped in.

Time: `now` decides the validity windows of policies, and reaches conditions as
the request attribute `environment.current_time` unless the request carries one.

Default deny: an absent or empty policy set, or a request no policy applies to,
is `NotApplicable`. The PDP reports it as such; `Response.allowed` is False and
the Policy Enforcement Point (`pbgm.pep`) denies it, as it denies Indeterminate.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
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
from pbgm.decision.compiled import gc_paused
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.model import EvaluationError, PolicyGroup, PolicySet, Request, Response, utc_now
from pbgm.pap import ALL_POLICIES
from pbgm.pip import PolicyInformationPoint
from pbgm.policy import parse_policy, parse_policy_set
from pbgm.policy.published import lazy_policies
from pbgm.store.base import PublishedSet, Revisions, Store

__all__ = [
    "CompiledPolicySet",
    "Follower",
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
    return request.with_bag("environment", environment)


# --- following a store -----------------------------------------------------------------


Groups = str | frozenset[str] | None
"""What a decision point following a store decides with: the published policies of one
policy group, of a set of groups (combined with deny-overrides), or of every group."""


def policy_set_header(policy_group: Groups, group: PolicyGroup | None) -> PolicySet:
    """The policy set a decision point of `policy_group` decides with (its policies
    aside): the group's algorithm, or deny-overrides over several groups or all."""
    if policy_group is None:
        return PolicySet(id=ALL_POLICIES, description="every published policy")
    if isinstance(policy_group, frozenset):
        names = ", ".join(sorted(policy_group))
        return PolicySet(id=ALL_POLICIES, description=f"the published policies of {names}")
    group = group or PolicyGroup(policy_group)
    return PolicySet(group.id, (), group.policy_combining, description=group.description)


def read_published(store: Store, policy_group: Groups, since: int | None) -> PublishedSet:
    """`store.read_published` for one group or all. For a set of groups, what changed
    since `since` is one read of what changed in any group (one transaction, however
    many groups), kept to the set's groups: a policy that moved out of them is removed.
    A whole set (`since` None, or a gap in the feed) is each group's read merged, a
    policy that moved between them in the set; the revision is the oldest of the reads
    (a later sync reads what changed after it again; applying a change twice changes
    nothing)."""
    if not isinstance(policy_group, frozenset):
        return store.read_published(policy_group, since=since)
    if not policy_group:
        return PublishedSet(store.revisions().decisions, True, None, ())
    if since is not None:  # what changed in any group, in one read, kept to these groups
        read = store.read_published(None, since=since)
        if not read.full:
            ours = tuple(p for p in read.policies if p.policy_group in policy_group)
            removed = read.removed | {p.id for p in read.policies} - {p.id for p in ours}
            return PublishedSet(read.revision, False, None, ours, frozenset(removed))
    reads = [store.read_published(group) for group in sorted(policy_group)]
    policies = {p.id: p for read in reads for p in read.policies}
    removed = frozenset().union(*(read.removed for read in reads)) - policies.keys()
    revision = min(read.revision for read in reads)
    return PublishedSet(revision, True, None, tuple(policies.values()), removed)


# --- the service -------------------------------------------------------------------


class PolicyDecisionPoint:
    """Decides requests against the current compiled policy set.

    Thread-safe: deciders read one reference to an immutable compiled set; `load`,
    `refresh` and `sync` prepare the next set first and then swap that reference, so
    readers never see a half-built set and never wait. With a `source` (or a `store`)
    and no initial set, the first decision loads once (if that fails the empty set,
    which denies, stays until `refresh`); a service rather loads in the background
    (`Follower`) and waits for `ready`.

    `store` and `policy_group`: follow that store's published policies of the group (of
    a frozenset of groups, of every group when None) through its change feed (`sync`).
    """

    def __init__(
        self,
        policy_set: PolicySet | None = None,
        *,
        source: Callable[[], PolicySet] | None = None,
        store: Store | None = None,
        policy_group: Groups = None,
        pip: PolicyInformationPoint | None = None,
        clock: Callable[[], datetime] = utc_now,
        index_threshold: int = INDEX_THRESHOLD,
    ) -> None:
        self._source, self._pip, self._clock = source, pip, clock
        self._store, self.policy_group = store, policy_group
        self._index_threshold = index_threshold
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loaded = policy_set is not None
        self._tried_source = False
        self._compiled = compile_policy_set(policy_set, index_threshold=index_threshold)
        if self._loaded:
            self._ready.set()

    @property
    def revision(self) -> int | None:
        """The revision of the compiled set (for a decision point following a store, the
        store's decision revision); None before anything was loaded."""
        return self._compiled.revision if self._loaded else None

    @property
    def compiled(self) -> CompiledPolicySet:
        return self._compiled

    @property
    def ready(self) -> bool:
        """Whether a set was loaded (from the start, by `load`, `refresh` or `sync`)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until `ready`, at most `timeout` seconds; whether it is."""
        return self._ready.wait(timeout)

    def load(self, policy_set: PolicySet) -> None:
        """Compile `policy_set` and make it current in one reference assignment."""
        self._install(compile_policy_set(policy_set, index_threshold=self._index_threshold))

    def _install(self, compiled: CompiledPolicySet) -> None:
        for problem in compiled.problems:
            log.warning("policy set %r: %s", compiled.id, problem.message)
        self._compiled, self._loaded = compiled, True
        self._ready.set()

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
        compiled one; for a decision point following a store, `sync`. True when a
        new set was loaded. Errors of the source are raised and the current set is kept."""
        if self._store is not None:
            return self.sync()
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

    def sync(self) -> bool:
        """Bring the set up to the store's published policies: nothing but one read of the
        store's revisions when its decision revision is the compiled one; else only what
        the change feed says changed (`CompiledPolicySet.updated`), or everything, lazily
        (`lazy_policies`), when the feed does not reach back that far. True when the set
        changed. Errors of the store are raised and the current set is kept."""
        if self._store is None:
            raise ConfigurationError("this decision point follows no store")
        with self._lock, gc_paused():  # a large graph of new objects, without cycles
            since = self._compiled.revision if self._loaded else None
            if since is not None and self._store.revisions().decisions == since:
                return False
            read = read_published(self._store, self.policy_group, since)
            header = replace(
                policy_set_header(self.policy_group, read.group), revision=read.revision
            )
            nodes = lazy_policies(read.policies, index_threshold=self._index_threshold)
            if read.full or not self._loaded:
                compiled = compile_policies(header, nodes, index_threshold=self._index_threshold)
            else:
                compiled = self._compiled.updated(nodes, read.removed, header=header)
            self._install(compiled)
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
        if not self._loaded and not self._tried_source and (self._source or self._store):
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


# --- the thread that follows ----------------------------------------------------------------

FOLLOW_EVERY_S = 0.05
"""How often a `Follower` reads the store's revisions: a change reaches decisions within
about this long (plus the time to apply it)."""
BACKOFF_MAX_S = 5.0
LISTEN_WAIT_S = 1.0
"""The longest a listening thread waits at once (it ends this soon after its follower)."""
LISTEN_RETRY_S = 5.0


class Follower:
    """The one thread of a process that keeps its decision points following a store.

    Every `every` seconds it reads the store's revisions (one cheap query) and syncs
    the decision points whose revision differs, each from the change feed
    (`PolicyDecisionPoint.sync`); a decision point just added is loaded at once. A
    failing store is retried with a growing delay (up to 5 s) and logged once per
    outage; the decision points keep their sets meanwhile. The thread ends with `stop`,
    or by itself once nothing refers to the follower any more.

    With `listen` (the default) and a store that announces its changes
    (`listen_decisions`: `SqlStore` on PostgreSQL, `pbgm.store.sql.listen`), a second
    thread listens for them and wakes the follower at once, so a change committed
    anywhere reaches decisions in the time it takes to apply it, not after the next
    poll. Polling goes on beside it: a listener that fails (logged once, tried again
    every 5 s) or a missed announcement only makes a change wait for the next poll.
    """

    def __init__(self, store: Store, *, every: float = FOLLOW_EVERY_S, listen: bool = True) -> None:
        # never 0: a follower that does not wait between ticks spins on the store
        self.store, self.every, self.listen = store, max(every, 0.005), listen
        self.listening = False
        """Whether the listening thread is connected and listening now."""
        self._points: list[PolicyDecisionPoint] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def add(self, pdp: PolicyDecisionPoint) -> PolicyDecisionPoint:
        """Follow `pdp` too (it must follow this follower's store); it is loaded at once."""
        with self._lock:
            if pdp not in self._points:
                self._points.append(pdp)
        self._wake.set()
        return pdp

    def remove(self, pdp: PolicyDecisionPoint) -> None:
        with self._lock:
            if pdp in self._points:
                self._points.remove(pdp)

    def start(self) -> None:
        """Start the thread (again after `stop`); nothing happens if it runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=_follow, args=(weakref.ref(self),), name="pbgm-follower", daemon=True
            )
            self._thread.start()
            if self.listen and callable(getattr(self.store, "listen_decisions", None)):
                listening = threading.Thread(
                    target=_listen, args=(weakref.ref(self),), name="pbgm-listener", daemon=True
                )
                listening.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def tick(self) -> float:
        """Sync what is behind, once; the delay until the next tick."""
        try:
            revision = self.revisions().decisions
        except Exception:
            return self._failed()
        with self._lock:
            points = list(self._points)
        for pdp in points:
            if pdp.revision == revision:
                continue
            try:
                pdp.sync()
            except Exception:
                return self._failed()
        if self.failures:
            log.warning("the policy store answers again; decision points follow it")
        self.failures = 0
        return self.every

    def revisions(self) -> Revisions:
        """The store's revisions, read once per tick (a subclass may pass them on)."""
        return self.store.revisions()

    def _failed(self) -> float:
        if not self.failures:
            log.warning("cannot follow the policy store; retrying", exc_info=True)
        self.failures += 1
        return min(self.every * 2.0**self.failures, BACKOFF_MAX_S)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every decision point is at the store's decision revision (for tests
        and tools); whether they are."""
        deadline = time.monotonic() + timeout
        while True:
            revision = self.store.revisions().decisions
            with self._lock:
                behind = [p for p in self._points if p.revision != revision]
            if not behind:
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(min(self.every, 0.01))


def _follow(reference: weakref.ref[Follower]) -> None:
    """The thread's loop; it holds its follower only while ticking."""
    while True:
        follower = reference()
        if follower is None or follower._stopping.is_set():
            return
        delay = follower.tick()
        wake, stopping = follower._wake, follower._stopping
        del follower
        woken = wake.wait(delay)
        if woken:
            wake.clear()
        if stopping.is_set():
            return


def _listen(reference: weakref.ref[Follower]) -> None:
    """The listening thread's loop (see `Follower`): wakes the follower on each change
    announced; ends with the follower's thread (within `LISTEN_WAIT_S`)."""
    follower = reference()
    if follower is None:
        return
    store, wake, stopping = follower.store, follower._wake, follower._stopping
    del follower
    listener, failed = None, False
    try:
        while not stopping.is_set() and reference() is not None:
            try:
                if listener is None:
                    listener = store.listen_decisions()  # type: ignore[attr-defined]
                    if listener is None:
                        return  # this store announces nothing: polling alone
                    _set_listening(reference, True)
                    wake.set()  # a change may have come before it listened
                    if failed:
                        log.warning("listening to the policy store's changes again")
                    failed = False
                if listener.wait(LISTEN_WAIT_S):
                    wake.set()
            except Exception as error:
                if not failed:  # the type only: a driver's message may name the server
                    log.warning(
                        "cannot listen to the policy store's changes (%s); polling them",
                        type(error).__name__,
                    )
                failed = True
                _set_listening(reference, False)
                _closed(listener)
                listener = None
                stopping.wait(LISTEN_RETRY_S)
    finally:
        _set_listening(reference, False)
        _closed(listener)


def _set_listening(reference: weakref.ref[Follower], listening: bool) -> None:
    follower = reference()
    if follower is not None:
        follower.listening = listening


def _closed(listener: Any) -> None:
    if listener is not None:
        try:
            listener.close()
        except Exception:
            log.debug("closing the store's listener failed", exc_info=True)
