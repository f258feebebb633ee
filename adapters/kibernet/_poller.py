"""`KibernetPoller`: reads the data points of a `data_access` policy and publishes them.

See the package docstring (`adapters.kibernet`) for what a cycle does.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import CollectorRegistry

from adapters.kibernet._plan import DEFAULT_SECRETS_DIR, Plan, Point
from adapters.kibernet._read import BadAnswer, Reading, read_answer
from adapters.rest import RestClient, RestError
from pbgm.bus import Bus
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError, InvalidInputError, PbgmError
from pbgm.events import (
    AuditThrottle,
    Counters,
    Delivery,
    Downsampler,
    PolicyCache,
    audit_object_id,
    transform_handlers,
)
from pbgm.model import Decision, Obligation, Request
from pbgm.ops.metrics import counter, gauge
from pbgm.pep import Decider, Enforcement, PolicyEnforcementPoint
from pbgm.policy import format_datetime
from pbgm.store.base import Store

__all__ = ["ACTOR", "MASK", "KibernetPoller", "PointStatus"]

log = logging.getLogger("adapters.kibernet")

ACTOR = "pbgm-kibernet"
ACTION = "poll"
TOKEN_CHUNK = 100
MASK = "***"
JSON = get_codec("json")
OUTCOMES = (
    "published",
    "held",
    "unchanged",
    "denied",
    "obligation_refused",
    "rate_limited",
    "failed",
    "refused_answer",
    "unencodable",
)


@dataclass
class PointStatus:
    """What a poller knows of one data point: the last value it published (after the
    obligations), that value's origin time, and the failure in force, if any."""

    value: Any = None
    t: float | None = None
    failure: str | None = None
    failing_since: float | None = None
    downsampler: Downsampler = field(default_factory=Downsampler)

    def age_s(self, now: float) -> float | None:
        return None if self.t is None else round(max(0.0, now - self.t), 3)


@dataclass
class _Permit:
    """What the obligations of one permit ask: the transforms, masks, a tighter rate."""

    delivery: Delivery = field(default_factory=Delivery)
    mask: set[str] = field(default_factory=set)
    requests_per_minute: int | None = None


class KibernetPoller:
    """Polls one `data_access` policy's data points through the PDP; see the package doc."""

    def __init__(
        self,
        bus: Bus,
        pdp: Decider,
        *,
        subject: str,
        groups: Iterable[str] = (),
        store: Store | None = None,
        secrets_dir: Path = DEFAULT_SECRETS_DIR,
        audit_interval_s: float = 60.0,
        refresh_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not subject:
            raise ConfigurationError("the poller needs the `subject` it reads for")
        self.bus, self.store, self.subject = bus, store, subject
        self.groups = tuple(groups)
        self.secrets_dir = Path(secrets_dir)
        self.clock = clock
        self.policies = PolicyCache(store, pdp=pdp, refresh_s=refresh_s)
        self.counters = Counters()
        self._audits = AuditThrottle(audit_interval_s, clock)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._cycle = threading.Lock()
        self._plan: Plan | None = None
        self._clients: dict[str, tuple[str, RestClient]] = {}
        self._retired: list[RestClient] = []
        self._points: dict[tuple[str, str, str, str], PointStatus] = {}
        self._paused_until: dict[str, float] = {}
        self._rebuild: set[str] = set()
        self._budget: dict[str, int] = {}  # tokens taken for this cycle, per endpoint
        self._left: dict[str, int] = {}  # data points still to read this cycle
        self._stale_shown = False
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._reads = counter(
            "pbgm_kibernet_reads_total",
            "Data point reads of the KIBERNet poller, by endpoint and outcome",
            labelnames=("endpoint", "outcome"),
            registry=registry,
        )
        self._stale_gauge = gauge(
            "pbgm_kibernet_stale_points",
            "Data points whose last good value is stale",
            mode="livesum",
            registry=registry,
        )

    # -- configuration -------------------------------------------------------------------

    @property
    def plan(self) -> Plan | None:
        return self._plan

    def apply(self, document: Mapping[str, Any]) -> None:
        """Take a `data_access` policy: endpoints, data points and period change at once,
        without a restart. A policy the poller cannot follow raises (`ConfigurationError`)
        and the last good plan stays in force."""
        try:
            plan = Plan.from_document(document, self.secrets_dir)
            clients = self._clients_for(plan)
        except PbgmError as error:
            self.counters.bump("config_refused")
            log.warning("data_access policy `%s` refused: %s", document.get("id"), error.message)
            raise
        with self._lock:
            old, self._plan, self._clients = self._clients, plan, clients
            kept = {id(c) for _, c in clients.values()}
            self._retired += [c for _, c in old.values() if id(c) not in kept]
            wanted = {_key(p) for p in plan.points}
            self._points = {k: v for k, v in self._points.items() if k in wanted}
        self.counters.bump("config_applied")
        names = ", ".join(f"`{n}`" for n in plan.endpoints)
        log.info(
            "polling %d data point(s) of %s every %g s (policy `%s` version %s)",
            len(plan.points), names, plan.interval_s, plan.policy_id, plan.version,
        )  # fmt: skip
        self._wake.set()

    def _clients_for(self, plan: Plan) -> dict[str, tuple[str, RestClient]]:
        """A client per endpoint: the running one when its settings are unchanged."""
        made: list[RestClient] = []
        clients = {}
        try:
            for name, endpoint in plan.endpoints.items():
                key = json.dumps(endpoint.settings, sort_keys=True, default=str)
                running = self._clients.get(name)
                if running is not None and running[0] == key:
                    clients[name] = running
                    continue
                client = RestClient(endpoint.endpoint())
                made.append(client)
                clients[name] = (key, client)
        except BaseException:
            for client in made:
                client.close()
            raise
        return clients

    def _rebuilt(self, plan: Plan) -> dict[str, tuple[str, RestClient]]:
        """New clients for the endpoints that refused the credentials: a rotated secret
        (file or environment) is taken without a restart."""
        with self._lock:
            names, self._rebuild = self._rebuild, set()
        rebuilt = {}
        for name in names:
            running = self._clients.get(name)
            if running is None or name not in plan.endpoints:
                continue
            try:
                client = RestClient(plan.endpoints[name].endpoint())
            except PbgmError as error:
                log.warning("endpoint `%s`: cannot read its credentials: %s", name, error.message)
                continue
            with self._lock:
                if self._clients.get(name) is running:
                    self._clients[name] = (running[0], client)
                    self._retired.append(running[1])
                    rebuilt[name] = (running[0], client)
                else:
                    self._retired.append(client)
        return rebuilt

    # -- the background loop -------------------------------------------------------------

    def start(self) -> KibernetPoller:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, name="kibernet-poller", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        with self._lock:
            clients = [c for _, c in self._clients.values()] + self._retired
            self._clients, self._retired = {}, []
        for client in clients:
            client.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:
                self.counters.bump("errors")
                log.exception("a polling cycle failed")
            plan = self._plan
            period = 1.0 if plan is None else plan.interval_s + random.uniform(0, plan.jitter_s)
            self._wake.wait(max(0.0, started + period - time.monotonic()))
            self._wake.clear()

    # -- one cycle -----------------------------------------------------------------------

    def poll_once(self) -> dict[str, int]:
        """Read every data point of the plan once, publish what may be published; the
        outcome counts of this cycle."""
        with self._cycle:
            with self._lock:
                plan, clients = self._plan, dict(self._clients)
                retired, self._retired = self._retired, []
            for client in retired:
                client.close()
            outcomes: dict[str, int] = {}
            if plan is None:
                return outcomes
            clients.update(self._rebuilt(plan))
            self.policies.refresh()
            now = self.clock()
            moment = datetime.fromtimestamp(now, UTC)
            outbox = _Outbox()
            self._budget = {}
            self._left = {}
            for point in plan.points:
                self._left[point.endpoint] = self._left.get(point.endpoint, 0) + 1
            # Every read of the cycle is decided first, at the cycle's moment, in one loop
            # (the same decisions as one by one; together, the PDP stays warm in the
            # CPU's caches instead of being evicted by each HTTP exchange).
            decided = [(point, *self._decide(plan, point, moment)) for point in plan.points]
            for point, permit, enforcement in decided:
                client = clients[point.endpoint][1]
                outcome = self._read(plan, point, permit, enforcement, client, outbox, now)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                self.counters.bump(outcome)
                self._reads.labels(point.endpoint, outcome).inc()
            outcomes["unencodable"] = outcomes.get("unencodable", 0) + self._publish(outbox)
            self._status(plan, now)
            self.counters.bump("cycles")
            return {k: v for k, v in outcomes.items() if v}

    def _read(
        self,
        plan: Plan,
        point: Point,
        permit: _Permit,
        enforcement: Enforcement,
        client: RestClient,
        outbox: _Outbox,
        now: float,
    ) -> str:
        status = self._status_of(point)
        self._left[point.endpoint] -= 1
        if not enforcement.allowed:
            return self._denied(plan, point, enforcement)
        if time.monotonic() < self._paused_until.get(point.endpoint, 0.0):
            self._failed(point, status, "peer_busy", "the peer asked to wait (Retry-After)", now)
            return "rate_limited"
        if not self._take_token(plan, point, permit):
            self._failed(point, status, "rate_limited", "the endpoint's rate limit is reached", now)
            return "rate_limited"
        try:
            reading = self._fetch(plan, point, client, status, now)
        except RestError as error:
            if error.code == "peer_busy" and error.retry_after:
                self._paused_until[point.endpoint] = time.monotonic() + error.retry_after
            if error.code == "peer_auth_failed":
                self._rebuild.add(point.endpoint)  # the secret is read again next cycle
            self._failed(point, status, error.code, error.message, now)
            return "refused_answer" if error.code == "peer_bad_response" else "failed"
        except BadAnswer as bad:
            self._failed(point, status, bad.code, f"{point.resource_path}: {bad.reason}", now)
            return "refused_answer" if bad.code == "peer_bad_response" else "failed"
        self._recovered(point, status)
        if status.t is not None and reading.t <= status.t:
            return "unchanged"  # the peer has nothing newer: nothing is published again
        fields = permit.delivery.fields(reading.fields)
        for name in permit.mask:
            if name in fields:
                fields[name] = MASK
        if permit.delivery.min_interval_s is not None:
            due = status.downsampler.offer(
                reading.t, fields, permit.delivery.min_interval_s, permit.delivery.method
            )
            status.t = reading.t
            if due is None:
                return "held"
            fields = due
        status.value, status.t = fields.get("value"), reading.t
        outbox.add(point, permit.delivery.topic(point.topic), fields, reading)
        return "published"

    def _fetch(
        self, plan: Plan, point: Point, client: RestClient, status: PointStatus, now: float
    ) -> Reading:
        params: dict[str, str] | None = None
        if point.query:
            since = status.t if status.t is not None else now - plan.interval_s
            values = {"{id}": point.id, "{since}": _iso(since), "{now}": _iso(now)}
            params = {key: _fill(template, values) for key, template in point.query}
        path = point.resource_path
        _, body, _ = client.call("GET", path, params=params)
        return read_answer(client.decode(body, path), point)

    # -- decisions -----------------------------------------------------------------------

    def _decide(self, plan: Plan, point: Point, moment: datetime) -> tuple[_Permit, Enforcement]:
        """The decision on reading `point` now, and what its obligations ask."""
        permit = _Permit()
        groups = self.groups or self.policies.groups_of(self.subject)
        resource = {
            "kind": "kibernet",
            "endpoint": point.endpoint,
            "data_point": point.name,
            "point_id": point.id,
            "path": point.resource_path,
            "topic": point.topic,
            "policy_id": plan.policy_id,
        }
        request = Request(
            {"id": self.subject, "groups": groups},
            resource,
            {"id": ACTION},
            {"current_time": moment},
        )
        handlers = transform_handlers(permit.delivery)
        handlers["mask-fields"] = lambda o, _r: _mask(o, permit)
        handlers["rate-limit"] = lambda o, _r: _rate(o, permit)
        handlers["audit"] = lambda o, _r: self._audit("kibernet.read", point, Decision.PERMIT)
        pep = PolicyEnforcementPoint(self.policies.decider(""), handlers)
        return permit, pep.check(request, now=moment)

    def _denied(self, plan: Plan, point: Point, enforcement: Enforcement) -> str:
        decision = enforcement.response.decision
        outcome = "denied" if decision is not Decision.PERMIT else "obligation_refused"
        try:
            self._audit(
                "kibernet.deny", point, decision, reason=enforcement.reason,
                policy_ids=list(enforcement.response.policy_ids),
            )  # fmt: skip
        except Exception:
            log.exception("cannot audit a denied read of `%s`", point.name)
        return outcome

    def _take_token(self, plan: Plan, point: Point, permit: _Permit) -> bool:
        """One request more to the endpoint within its rate limits (the policy's, and the
        tighter one a `rate-limit` obligation asks for). The endpoint's tokens are taken
        from the limiter in chunks of at most `TOKEN_CHUNK` (one limiter call per chunk,
        not per read); at most a chunk is left unused at the end of a cycle."""
        name = point.endpoint
        if self._budget.get(name, 0) <= 0:
            wanted = min(TOKEN_CHUNK, self._left.get(name, 0) + 1)  # this one and the rest
            self._budget[name] = self._reserve(plan, name, wanted)
        if self._budget[name] <= 0:
            return False
        if permit.requests_per_minute:
            item = RateLimitItemPerMinute(permit.requests_per_minute)
            if not self._limiter.hit(item, f"{plan.policy_id}/{name}", self.subject):
                return False
        self._budget[name] -= 1
        return True

    def _reserve(self, plan: Plan, name: str, wanted: int) -> int:
        endpoint = plan.endpoints[name]
        items: list[RateLimitItem] = []
        if endpoint.requests_per_minute:
            items.append(RateLimitItemPerMinute(endpoint.requests_per_minute))
        if endpoint.burst:
            items.append(RateLimitItemPerSecond(endpoint.burst))
        key = f"{plan.policy_id}/{name}"
        granted = wanted
        for item in items:
            remaining = self._limiter.get_window_stats(item, key, "endpoint").remaining
            granted = min(granted, max(0, int(remaining)))
        if granted > 0:
            for item in items:
                self._limiter.hit(item, key, "endpoint", cost=granted)
        return granted

    # -- staleness -----------------------------------------------------------------------

    def _status_of(self, point: Point) -> PointStatus:
        with self._lock:
            return self._points.setdefault(_key(point), PointStatus())

    def _failed(
        self, point: Point, status: PointStatus, code: str, message: str, now: float
    ) -> None:
        if status.failure != code:
            age = status.age_s(now)
            held = (
                "no good value yet"
                if age is None
                else f"the last good value ({age} s old) is stale"
            )
            log.warning(
                "data point `%s` of `%s`: %s (%s); %s",
                point.name, point.endpoint, message, code, held,
            )  # fmt: skip
        if status.failure is None:
            status.failing_since = now
        status.failure = code

    def _recovered(self, point: Point, status: PointStatus) -> None:
        if status.failure is not None:
            log.info("data point `%s` of `%s` answers again", point.name, point.endpoint)
        status.failure, status.failing_since = None, None

    def stale(self) -> dict[str, dict[str, Any]]:
        """The data points failing now, each with its last good value and that value's
        age (seconds since its origin time), or none when there never was one."""
        now = self.clock()
        plan = self._plan
        out: dict[str, dict[str, Any]] = {}
        if plan is None:
            return out
        with self._lock:
            for point in plan.points:
                status = self._points.get(_key(point))
                if status is None or status.failure is None:
                    continue
                entry: dict[str, Any] = {"topic": point.topic, "reason": status.failure}
                if status.t is not None:
                    entry.update(value=status.value, time=_iso(status.t), age_s=status.age_s(now))
                out[point.name] = entry
        return out

    def _status(self, plan: Plan, now: float) -> None:
        """Publish the stale data points (and once more when none is stale any more)."""
        stale = self.stale()
        self._stale_gauge.set(len(stale))
        if not stale and not self._stale_shown:
            return
        self._stale_shown = bool(stale)
        message = {
            "created": round(now * 1000),
            "policy_id": plan.policy_id,
            "stale": stale,
        }
        try:
            self.bus.publish(plan.status_topic, JSON.encode(message), qos=1)
        except PbgmError as error:
            log.warning("cannot publish the stale data points: %s", error.message)

    # -- publishing ----------------------------------------------------------------------

    def _publish(self, outbox: _Outbox) -> int:
        failed = 0
        for (topic, fmt), payload in outbox.messages():
            try:
                data = get_codec(fmt).encode(payload)
            except InvalidInputError as error:
                failed += 1
                log.warning(
                    "a reading for `%s` cannot be sent as %s: %s", topic, fmt, error.message
                )
                continue
            try:
                self.bus.publish(topic, data, qos=1)
                self.counters.bump("messages")
            except PbgmError as error:
                failed += 1
                log.warning("cannot publish on `%s`: %s", topic, error.message)
        return failed

    # -- audit ---------------------------------------------------------------------------

    def _audit(self, action: str, point: Point, decision: Decision, **details: Any) -> None:
        key = (action, point.endpoint, point.name, decision)
        due = self._audits.due(key)
        if due is None:
            return
        details.update(
            subject=self.subject, decision=decision.value, events=due.events,
            endpoint=point.endpoint, data_point=point.name, path=point.resource_path,
            topic=point.topic,
        )  # fmt: skip
        if self.store is None:
            log.info("%s `%s`: %s", action, point.name, details)
            return
        try:
            self.store.record_audit(
                actor=ACTOR, action=action, object_type="data_point",
                object_id=audit_object_id(f"{point.endpoint}/{point.name}"), details=details,
            )  # fmt: skip
        except Exception:
            self._audits.failed(due)
            self.counters.bump("audit_errors")
            raise
        self.counters.bump("audited")

    def stats(self) -> dict[str, int]:
        return self.counters.snapshot()


class _Outbox:
    """The messages of one cycle: per topic and format (`json.edgeflex` and `sogno_v4`
    readings of one topic go out together), in the order they were read."""

    def __init__(self) -> None:
        self._time_value: list[tuple[str, dict[str, Any]]] = []
        self._edgeflex: dict[str, dict[str, Any]] = {}
        self._sogno: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, point: Point, topic: str, fields: Mapping[str, Any], reading: Reading) -> None:
        if point.format == "time_value":
            self._time_value.append((topic, dict(fields)))
            return
        if "value" not in fields:
            return  # the value itself was dropped by an obligation
        ms = round(reading.t * 1000)
        if point.format == "json.edgeflex":
            message = self._edgeflex.setdefault(topic, {"created": ms})
            message[point.signal] = fields["value"]
            message["created"] = min(message["created"], ms)
            return
        device = point.sogno["device"]
        message = self._sogno.setdefault(
            (topic, device), {"device": device, "readings": [], "t": ms}
        )
        message["t"] = min(message["t"], ms)
        message["readings"].append(
            {
                "component": point.sogno["component"],
                "measurand": point.sogno["measurand"],
                "phase": point.sogno["phase"],
                "data": fields["value"],
            }
        )

    def messages(self) -> Iterable[tuple[tuple[str, str], dict[str, Any]]]:
        for topic, fields in self._time_value:
            yield (topic, "time_value"), fields
        for topic, message in self._edgeflex.items():
            yield (topic, "json.edgeflex"), message
        for (topic, _), message in self._sogno.items():
            t = message.pop("t")
            yield (topic, "sogno_v4"), {**message, "timestamp": _iso(t / 1000)}


def _key(point: Point) -> tuple[str, str, str, str]:
    return (point.name, point.endpoint, point.resource_path, point.topic)


def _iso(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, UTC))


def _fill(template: str, values: Mapping[str, str]) -> str:
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


def _mask(obligation: Obligation, permit: _Permit) -> None:
    names = obligation.attributes.get("fields")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise InvalidInputError("obligation `mask-fields`: `fields` must be a list of names")
    permit.mask |= set(names)


def _rate(obligation: Obligation, permit: _Permit) -> None:
    value = obligation.attributes.get("requests_per_minute")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("obligation `rate-limit`: `requests_per_minute` must be >= 1")
    permit.requests_per_minute = min(value, permit.requests_per_minute or value)
