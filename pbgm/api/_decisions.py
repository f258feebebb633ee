"""`POST /api/v1/decisions`: ask pbgm's PDP, one request or a batch, in two dialects.

pbgm's own form: `{"subject": {...}, "resource": {...}, "action": {...},
"environment": {...}}`, or `{"requests": [ ... ]}` for a batch; the answer is the
`Response` as JSON (`decision`, `status`, `obligations`, `advice`, `policy_ids`,
`errors`), or `{"responses": [...]}`; one request and one answer are read and written
by `pbgm.messages`. The XACML 3.0 JSON Profile (`{"Request": ...}`) is answered in
kind (`pbgm.api._xacml`).

Which policies decide: a caller decides only against policy groups it may read,
that is, groups on which it holds a `read` (or `write`, `admin`) grant; a decision
shows what the group's policies say (obligations, policy ids, errors), so it needs
the grant that reading them needs. `?policy_group=G` decides against G, and is
`404 not_found` when the caller holds no such grant, exactly as when G does not
exist. Without it, the published policies of every group the caller may read are
combined with deny-overrides; policies of other groups never decide, so their ids
and rules never show in `policy_ids` or `errors`. A grant on `*` does not count:
as for fetching policies, only a grant on the group itself does. An injected
`pdp` (`create_app(pdp=...)`, for embedding) is the embedder's choice and answers
every caller with `decisions:write` as it is.

The server's clock is the decision time; group memberships come from the
repository (`subject.groups` when the request does not carry them). A batch is
decided against one snapshot of the policies, the one current when it arrives: the
decision points follow the repository in the background (`DecisionService`). Every
call is queued for the decision log (`pbgm.api._audit`), written off the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response

from pbgm.access import AccessPoint, Principal
from pbgm.api._audit import DecisionLog
from pbgm.api._cache import RevisionReads
from pbgm.api._http import (
    body_escaped,
    json_body,
    json_response,
    plain_json_response,
    principal,
    query,
)
from pbgm.api._metrics import BATCH, SINGLE, Metrics
from pbgm.api._xacml import parse_xacml, xacml_response
from pbgm.auth import SCOPE_DECISIONS_WRITE
from pbgm.errors import (
    InvalidInputError,
    NotFoundError,
    PbgmError,
    Problem,
    StoreUnavailableError,
    ValidationError,
)
from pbgm.messages import request_from_json, response_to_json
from pbgm.model import Clock, Request
from pbgm.model import Response as Decided
from pbgm.pdp import FOLLOW_EVERY_S, Follower, PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import json_strings
from pbgm.store.base import Revisions, Store

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
MAX_CACHED_GROUPS = 64
MAX_REMEMBERED_CALLERS = 10_000
Groups = str | frozenset[str]
"""What a PDP decides against: one policy group, or the union of several."""


FIRST_LOAD_WAIT_S = 10.0
"""How long a decision waits for its policy group's first load before `503
policies_loading`: within gunicorn's worker timeout (30 s)."""


class DecisionService:
    """A PDP per policy group, or per set of groups a caller may read, each following
    the store's change feed in the background (`pbgm.pdp.Follower`: one thread per
    process), so that a request never reloads: it decides on the set current when it
    arrives. A decision point's first load happens on that thread too: `start` (when a
    worker starts) loads those of the service accounts that may decide, and a decision
    arriving before its set is loaded waits up to `FIRST_LOAD_WAIT_S`, then is refused
    with `503 policies_loading`.

    `reads` is the store as read during a request (`pbgm.api._cache`): its revision is
    the request's, its memberships memoised per revision. `access` answers which groups
    a caller may read (module docstring).

    An injected `pdp` answers calls without `policy_group` and is used as given
    (its owner refreshes it).
    """

    def __init__(
        self,
        store: Store,
        reads: Store,
        access: AccessPoint,
        *,
        pdp: PolicyDecisionPoint | None,
        clock: Clock,
        every: float = FOLLOW_EVERY_S,
    ) -> None:
        self._store = store
        self.reads = reads
        self.access = access
        self.clock = clock
        self._injected = pdp
        self._pip = PolicyInformationPoint([GroupMembershipProvider(reads.groups_of)])
        self._lock = threading.Lock()
        self._pdps: OrderedDict[Groups, PolicyDecisionPoint] = OrderedDict()
        self._readable: tuple[tuple[int, int], dict[Principal, frozenset[str]]] = ((-1, -1), {})
        self._preloaded: list[PolicyDecisionPoint] | None = None
        self.follower = _Follower(store, every=every)

    def start(self, *, share_revisions: bool = False) -> None:
        """Follow the store; the first time, also load in the background the decision
        points of the callers known then (each enabled service account with
        `decisions:write`), which readiness waits for. With `share_revisions` (a served
        worker), requests take the revisions the follower reads instead of a query
        each (`pbgm.api._cache`)."""
        if share_revisions and isinstance(self.reads, RevisionReads):
            self.follower.reads = self.reads
        self.follower.start()
        if self._preloaded is None:
            callers = () if self._injected is not None else self._deciders()
            self._preloaded = [self._pdp(self.groups_for(c, None)) for c in callers]

    def _deciders(self) -> list[Principal]:
        try:
            accounts = self._store.list_service_accounts()
        except PbgmError as error:  # the store is down: decision points load on demand
            log.warning("decision points not preloaded: %s", error)
            return []
        return [
            Principal(a.client_id, "service", tuple(self._store.groups_of(a.client_id)))
            for a in accounts
            if a.enabled and SCOPE_DECISIONS_WRITE in a.scopes
        ][:MAX_CACHED_GROUPS]

    @property
    def ready(self) -> bool:
        """Whether the decision points `start` loads have their first set (those made
        later, for a caller that appears later, make only that caller wait)."""
        return all(pdp.ready for pdp in self._preloaded or ())

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until `ready`; whether it is."""
        deadline = time.monotonic() + timeout
        return all(
            pdp.wait_ready(max(0.0, deadline - time.monotonic())) for pdp in self._preloaded or ()
        )

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until the decision points are at the store's decision revision."""
        self.follower.start()
        return self.follower.settle(timeout)

    def decide(
        self, requests: list[Request], policy_group: str | None, caller: Principal
    ) -> list[Decided]:
        if policy_group is None and self._injected is not None:
            return self._injected.decide_batch(requests, now=self.clock())
        pdp = self._pdp(self.groups_for(caller, policy_group))
        if not pdp.ready:
            self.follower.start()
            if not pdp.wait_ready(FIRST_LOAD_WAIT_S):
                raise StoreUnavailableError(
                    "the policies are still loading; retry later", code="policies_loading"
                )
        return pdp.decide_batch(requests, now=self.clock())

    def groups_for(self, caller: Principal, policy_group: str | None) -> Groups:
        """The group (or groups) `caller` decides against; `NotFoundError` when it
        names one it may not read."""
        readable = self.readable_groups(caller)
        if policy_group is None:
            return readable
        if policy_group not in readable:
            raise NotFoundError(f"policy group `{policy_group}` not found")
        return policy_group

    def readable_groups(self, caller: Principal) -> frozenset[str]:
        """The policy groups `caller` holds a read grant on, remembered while the groups
        (the decision revision) and the grants (the access revision) stay as they are: a
        change of a policy keeps what was found."""
        revisions = self.reads.revisions()
        revision = (revisions.decisions, revisions.access)
        with self._lock:
            seen, known = self._readable
            if seen != revision or len(known) >= MAX_REMEMBERED_CALLERS:
                known = {}
                self._readable = (revision, known)
            found = known.get(caller)
        if found is None:
            found = frozenset(
                group.id
                for group in self.reads.list_policy_groups()
                if self.access.allowed(caller, "read", {"policy_group": group.id})
            )
            with self._lock:
                known[caller] = found
        return found

    def _pdp(self, groups: Groups) -> PolicyDecisionPoint:
        with self._lock:
            pdp = self._pdps.pop(groups, None)
            if pdp is None:
                pdp = PolicyDecisionPoint(
                    store=self._store, policy_group=groups, pip=self._pip, clock=self.clock
                )
                self.follower.add(pdp)
            self._pdps[groups] = pdp
            if len(self._pdps) > MAX_CACHED_GROUPS:
                _, dropped = self._pdps.popitem(last=False)
                self.follower.remove(dropped)
            return pdp


class _Follower(Follower):
    """The decision points' follower, handing the revisions it reads each tick to the
    request caches (`RevisionReads.followed`) once `reads` is set."""

    def __init__(self, store: Store, *, every: float) -> None:
        super().__init__(store, every=every)
        self.reads: RevisionReads | None = None

    def revisions(self) -> Revisions:
        reads = self.reads
        if reads is None:
            return super().revisions()
        writes, read_at = reads.writes, time.monotonic()
        revisions = super().revisions()
        reads.followed(revisions, read_at=read_at, writes=writes)
        return revisions


# --- pbgm's request form ---------------------------------------------------------------


def parse_requests(document: Any, *, max_batch: int) -> tuple[list[Request], bool]:
    """The requests of a pbgm-form body, and whether it was a batch."""
    if not isinstance(document, Mapping) or "requests" not in document:
        return [request_from_json(document)], False
    items = document["requests"]
    problems = [Problem(f"$.{k}", "unknown_member", f"unknown member `{k}`") for k in document]
    problems = [p for p in problems if p.path != "$.requests"]
    if not isinstance(items, list) or not items:
        problems.append(Problem("$.requests", "invalid_type", "a non-empty array of requests"))
    elif len(items) > max_batch:
        problems.append(
            Problem("$.requests", "batch_too_large", f"{len(items)} requests, at most {max_batch}")
        )
    if problems:
        raise ValidationError(problems)
    requests: list[Request] = []
    found: list[Problem] = []
    for index, item in enumerate(items):
        try:
            requests.append(request_from_json(item, f"$.requests[{index}]"))
        except ValidationError as error:
            found.extend(error.problems)
    if found:
        raise ValidationError(found)
    return requests, True


def _reject_nul(value: Any) -> None:
    if body_escaped() and any("\x00" in s for s in json_strings(value)):
        raise InvalidInputError("the request contains a NUL character", code="invalid_request")


# --- the endpoint --------------------------------------------------------------------------


def decisions_blueprint(
    service: DecisionService, log: DecisionLog, metrics: Metrics, *, max_batch: int
) -> Blueprint:
    blueprint = Blueprint("decisions", __name__, url_prefix="/api/v1")

    @blueprint.post("/decisions", endpoint="decide")
    def decide() -> Response:
        group = query(["policy_group"]).get("policy_group")
        document = json_body()
        _reject_nul(document)
        started = time.perf_counter()
        if isinstance(document, Mapping) and "Request" in document:
            call = parse_xacml(document, max_batch=max_batch)
            kind = BATCH if len(call.requests) > 1 else SINGLE
            decided = _decide(service, log, metrics, call.requests, group, kind)
            body = xacml_response(call, decided)
            metrics.labelled(metrics.decision_latency, kind).observe(time.perf_counter() - started)
            return json_response(body, headers=NO_STORE)
        requests, batch = parse_requests(document, max_batch=max_batch)
        kind = BATCH if batch else SINGLE
        decided = _decide(service, log, metrics, requests, group, kind)
        data = [response_to_json(r) for r in decided]
        body = {"responses": data} if batch else data[0]
        metrics.labelled(metrics.decision_latency, kind).observe(time.perf_counter() - started)
        return plain_json_response(body, headers=NO_STORE)

    return blueprint


def _decide(
    service: DecisionService,
    log: DecisionLog,
    metrics: Metrics,
    requests: list[Request],
    group: str | None,
    kind: str,
) -> list[Decided]:
    caller = principal()
    decided = service.decide(requests, group, caller)
    log.record(caller.id, requests, decided)
    if kind == BATCH:
        metrics.batch_size.observe(len(requests))
    for response in decided:
        metrics.labelled(metrics.decisions, str(response.decision), kind).inc()
    return decided
