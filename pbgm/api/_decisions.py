"""`POST /api/v1/decisions`: ask pbgm's PDP, one request or a batch, in two dialects.

pbgm's own form: `{"subject": {...}, "resource": {...}, "action": {...},
"environment": {...}}`, or `{"requests": [ ... ]}` for a batch; the answer is the
`Response` as JSON (`decision`, `status`, `obligations`, `advice`, `policy_ids`,
`errors`), or `{"responses": [...]}`; one request and one answer are read and written
by `pbgm.messages`. The XACML 3.0 JSON Profile (`{"Request": ...}`) is answered in
kind (`pbgm.api._xacml`). `?policy_group=` decides against one policy group; by
default against every published policy (deny-overrides).

The server's clock is the decision time; group memberships come from the
repository (`subject.groups` when the request does not carry them). A batch is
decided against one snapshot of the policies, the one current when it arrives: the
decision points follow the repository in the background (`DecisionService`). Every
call is queued for the decision log (`pbgm.api._audit`), written off the request path.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response

from pbgm.api._audit import DecisionLog
from pbgm.api._http import actor, json_body, json_response, query
from pbgm.api._metrics import Metrics
from pbgm.api._xacml import parse_xacml, xacml_response
from pbgm.errors import InvalidInputError, Problem, StoreUnavailableError, ValidationError
from pbgm.messages import request_from_json, response_to_json
from pbgm.model import Clock, Request
from pbgm.model import Response as Decided
from pbgm.pdp import FOLLOW_EVERY_S, Follower, PolicyDecisionPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import json_strings
from pbgm.store.base import Store

MAX_CACHED_GROUPS = 64


FIRST_LOAD_WAIT_S = 10.0
"""How long a decision waits for its policy group's first load before `503
policies_loading`: within gunicorn's worker timeout (30 s)."""


class DecisionService:
    """A PDP per policy group, each following the store's change feed in the
    background (`pbgm.pdp.Follower`: one thread per process), so that a request never
    reloads: it decides on the set current when it arrives. A group's first load
    happens on that thread too (the default one when the worker starts, `start`); a
    decision arriving before it waits up to `FIRST_LOAD_WAIT_S`, then is refused with
    `503 policies_loading`.

    `reads` is the store as read during a request (`pbgm.api._cache`): its
    memberships are memoised per revision.

    An injected `pdp` answers calls without `policy_group` and is used as given
    (its owner refreshes it).
    """

    def __init__(
        self,
        store: Store,
        reads: Store,
        *,
        pdp: PolicyDecisionPoint | None,
        clock: Clock,
        every: float = FOLLOW_EVERY_S,
    ) -> None:
        self.reads = reads
        self.clock = clock
        self._store = store
        self._injected = pdp
        self._pip = PolicyInformationPoint([GroupMembershipProvider(reads.groups_of)])
        self._lock = threading.Lock()
        self._pdps: OrderedDict[str | None, PolicyDecisionPoint] = OrderedDict()
        self.follower = Follower(store, every=every)

    def start(self) -> None:
        """Load the decision point of every published policy and follow the store, in
        the background (a worker calls this when it starts; a decision otherwise)."""
        if self._injected is None:
            self._pdp(None)
        self.follower.start()

    @property
    def ready(self) -> bool:
        """Whether the decision point of every published policy has its first set."""
        return self._injected is not None or self._pdp(None).ready

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until the decision points are at the store's decision revision."""
        self.start()
        return self.follower.settle(timeout)

    def decide(self, requests: list[Request], policy_group: str | None) -> list[Decided]:
        if policy_group is None and self._injected is not None:
            return self._injected.decide_batch(requests, now=self.clock())
        pdp = self._pdp(policy_group)
        if not pdp.ready:
            self.follower.start()
            if not pdp.wait_ready(FIRST_LOAD_WAIT_S):
                raise StoreUnavailableError(
                    "the policies are still loading; retry later", code="policies_loading"
                )
        return pdp.decide_batch(requests, now=self.clock())

    def _pdp(self, policy_group: str | None) -> PolicyDecisionPoint:
        with self._lock:
            pdp = self._pdps.pop(policy_group, None)
            if pdp is None:
                pdp = PolicyDecisionPoint(
                    store=self._store, policy_group=policy_group, pip=self._pip, clock=self.clock
                )
                self.follower.add(pdp)
            self._pdps[policy_group] = pdp
            if len(self._pdps) > MAX_CACHED_GROUPS:
                _, dropped = self._pdps.popitem(last=False)
                self.follower.remove(dropped)
            return pdp


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
    if any("\x00" in s for s in json_strings(value)):
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
            decided = _decide(service, log, metrics, call.requests, group)
            body: Any = xacml_response(call, decided)
        else:
            requests, batch = parse_requests(document, max_batch=max_batch)
            decided = _decide(service, log, metrics, requests, group)
            data = [response_to_json(r) for r in decided]
            body = {"responses": data} if batch else data[0]
        metrics.decision_latency.observe(time.perf_counter() - started)
        return json_response(body, headers={"Cache-Control": "no-store"})

    return blueprint


def _decide(
    service: DecisionService,
    log: DecisionLog,
    metrics: Metrics,
    requests: list[Request],
    group: str | None,
) -> list[Decided]:
    decided = service.decide(requests, group)
    log.record(actor(), requests, decided)
    for response in decided:
        metrics.decisions.labels(str(response.decision)).inc()
    return decided
