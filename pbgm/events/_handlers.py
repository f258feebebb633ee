"""The obligations the event service discharges, and the event they act on.

A handler takes the obligation (attributes resolved by the PDP) and the `Event`
being handled; it raises when it cannot do its part, and the enforcement point
then denies (`pbgm.pep`). Built in:

=======================  =============================================================
`return_data`            data request: answer on the reply topic (the answer is sent
                         after every obligation is discharged). Otherwise: publish the
                         samples of `topics` from `window_before_s` (default the reply
                         window) before the event to `<data_topic_prefix><recipient>`,
                         and forward new samples there for `window_after_s`
`run_service`            start grid service `service` with `parameters` on a worker
                         thread, given the event's topic window (`parameters.window_s`
                         before the event, default 10 s)
`revoke_access`          disable grant `grant_id`, or service account `principal`
                         (default: the subject), or, when `principal` is no service
                         account or `grants: true` is given, every enabled grant it
                         holds; in one transaction with its audit entry, which
                         records the triggering event (and `duration_s`: access
                         is not restored automatically)
`publish_notification`   publish `payload` plus the event under `event` on `topic`
                         (default: the configured notification topic)
`audit`                  one audit entry per subject, topic and decision per audit
                         interval, with the number of events it stands for
`rate-limit`             at most `requests_per_minute` per subject, else deny
transforming ones        `drop-fields`, `keep-fields`, `round`, `downsample`,
                         `rename-topic` (`pbgm.events._transform`)
=======================  =============================================================
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pbgm.bus import Bus, BusMessage, check_topic
from pbgm.errors import ConfigurationError, InvalidInputError, NotFoundError, PermissionDeniedError
from pbgm.functions import TopicFilter, match_levels, parse_topic_filter
from pbgm.model import Obligation, Request, Response
from pbgm.store.base import Store

from ._audit import AuditThrottle, Due, audit_object_id
from ._bounded import BoundedMap
from ._policies import PolicyCache
from ._samples import Sample
from ._services import ServiceRegistry, ServiceRun
from ._transform import TRANSFORMS, Delivery

log = logging.getLogger(__name__)

DEFAULT_SERVICE_WINDOW_S = 10.0
MAX_SERVICE_WINDOW_S = 86400.0
"""The longest `parameters.window_s` (the service_trigger schema's bound)."""


@dataclass(slots=True)
class Event:
    """One message being handled: what arrived, the request made of it, where answers go."""

    kind: str
    topic: str
    message: BusMessage
    request: Request
    t: float
    policy_group: str = ""
    device: str | None = None
    subject: str | None = None
    trigger: str | None = None
    reply_topic: str | None = None
    correlation_id: Any = None
    delivery: Delivery = field(default_factory=Delivery)
    response: Response | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for notifications, data returns and the audit log."""
        resource = self.request.resource
        out = {
            "kind": self.kind,
            "topic": self.topic,
            "time": datetime.fromtimestamp(self.t, UTC).isoformat().replace("+00:00", "Z"),
            "device": self.device,
            "subject": self.subject,
            "trigger": self.trigger,
            "policy_ids": list(self.response.policy_ids) if self.response else [],
            "rocof": resource.get("rocof"),
            "delta_p": resource.get("delta_p"),
        }
        return {k: v for k, v in out.items() if v is not None}


EventHandler = Callable[[Obligation, Event], object]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
MAX_FORWARDS = 1_000
MAX_RATE_SUBJECTS = 10_000


def encode(data: Mapping[str, Any]) -> bytes:
    """Compact JSON; a non-finite number raises `unencodable_payload` (nothing
    non-finite leaves pbgm), and the obligation that wanted to send it fails."""
    try:
        return _ENCODER.encode(data).encode()
    except ValueError as error:
        raise InvalidInputError(
            f"cannot encode the payload as JSON: {error}", code="unencodable_payload"
        ) from None


class Counters:
    """Thread-safe counters for `stats()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True, slots=True)
class _Forward:
    filters: tuple[TopicFilter, ...]
    destination: str
    until: float


class Obligations:
    """The built-in obligation handlers, sharing the service's bus, store and history."""

    def __init__(
        self,
        *,
        bus: Bus,
        policies: PolicyCache,
        samples: Callable[[Callable[[str], bool], float], dict[str, list[Sample]]],
        registry: ServiceRegistry,
        executor: Executor,
        counters: Counters,
        settings: Any,
        clock: Callable[[], datetime],
    ) -> None:
        self.bus, self.policies, self.samples = bus, policies, samples
        self.registry, self.executor, self.counters = registry, executor, counters
        self.settings, self.clock = settings, clock
        self.actor = settings.service_id
        self._audits = AuditThrottle(
            settings.audit_interval_s, lambda: clock().timestamp(), max_keys=settings.max_topics
        )
        self._requests: BoundedMap[str, deque[float]] = BoundedMap(MAX_RATE_SUBJECTS)
        self._forwards: deque[_Forward] = deque(maxlen=MAX_FORWARDS)
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()

    @property
    def store(self) -> Store | None:
        return self.policies.store

    def sizes(self) -> dict[str, int]:
        """Entries held per table (each bounded)."""
        with self._lock:
            return {
                "audit_keys": len(self._audits),
                "rate_subjects": len(self._requests),
                "forwards": len(self._forwards),
            }

    def handlers(self) -> dict[str, EventHandler]:
        built_in: dict[str, EventHandler] = {
            "return_data": self.return_data,
            "run_service": self.run_service,
            "revoke_access": self.revoke_access,
            "publish_notification": self.publish_notification,
            "audit": self.audit,
            "rate-limit": self.rate_limit,
        }
        for name, apply in TRANSFORMS.items():
            built_in[name] = _on_delivery(apply)
        return built_in

    # -- data ----------------------------------------------------------------------

    def return_data(self, obligation: Obligation, event: Event) -> None:
        if event.kind == "data_request":
            return  # the answer itself is the enforced action
        attributes = obligation.attributes
        recipient = attributes.get("recipient") or event.subject
        if not isinstance(recipient, str) or not recipient:
            raise InvalidInputError("`return_data` needs a `recipient`")
        filters = tuple(parse_topic_filter(t) for t in attributes.get("topics") or [event.topic])
        destination = check_topic(f"{self.settings.data_topic_prefix}{recipient}")
        before = float(attributes.get("window_before_s", self.settings.reply_window_s))
        found = self.samples(lambda topic: _matches(topic, filters), event.t - before)
        data = {topic: [s.as_json() for s in samples] for topic, samples in found.items()}
        self.bus.publish(destination, encode({"event": event.describe(), "data": data}))
        after = float(attributes.get("window_after_s", 0))
        if after > 0:
            with self._lock:
                if len(self._forwards) == MAX_FORWARDS:
                    self.counters.bump("forwards_evicted")
                self._forwards.append(_Forward(filters, destination, event.t + after))
        self.counters.bump("data_returned")

    def forward(self, topic: str, sample: Sample) -> None:
        """Send a new sample to the recipients still within their `window_after_s`."""
        if not self._forwards:
            return
        with self._lock:
            live = [f for f in self._forwards if sample.t <= f.until]
            if len(live) != len(self._forwards):
                self._forwards = deque(live, maxlen=MAX_FORWARDS)
            targets = [f.destination for f in live if _matches(topic, f.filters)]
        for destination in targets:
            self.bus.publish(destination, encode({"topic": topic, "sample": sample.as_json()}))

    # -- services ------------------------------------------------------------------

    def run_service(self, obligation: Obligation, event: Event) -> None:
        attributes = obligation.attributes
        name = attributes.get("service")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("`run_service` needs a `service`")
        service = self.registry.get(name)
        parameters = dict(attributes.get("parameters") or {})
        window_s = parameters.get("window_s", DEFAULT_SERVICE_WINDOW_S)
        if isinstance(window_s, bool) or not isinstance(window_s, int | float):
            window_s = -1.0  # refused below, as a negative one
        if not 0 <= window_s <= MAX_SERVICE_WINDOW_S:  # NaN too
            raise InvalidInputError(
                f"`run_service`: `parameters.window_s` must be seconds from 0 to"
                f" {MAX_SERVICE_WINDOW_S:g}, not `{parameters.get('window_s')}`"
            )
        found = self.samples(lambda topic: topic == event.topic, event.t - window_s)
        window = tuple(found.get(event.topic, ()))
        timeout = attributes.get("timeout_s")
        run = ServiceRun(name, parameters, event.topic, event.t, window, event.trigger, timeout)
        future = self.executor.submit(self._run, service, run)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        self.counters.bump("services_started")

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def running(self) -> list[Future[None]]:
        """The grid service runs not finished yet."""
        with self._lock:
            return list(self._pending)

    def _run(self, service: Callable[[ServiceRun], object], run: ServiceRun) -> None:
        try:
            service(run)
        except Exception:
            log.exception("grid service `%s` failed", run.service)
            self.counters.bump("services_failed")

    # -- access --------------------------------------------------------------------

    def revoke_access(self, obligation: Obligation, event: Event) -> None:
        store = self.store
        if store is None:
            raise ConfigurationError("`revoke_access` needs a policy store")
        principal = obligation.attributes.get("principal") or event.subject
        details = {"principal": principal, "event": event.describe()}
        if "duration_s" in obligation.attributes:  # recorded; restoring is an operator's act
            details["duration_s"] = obligation.attributes["duration_s"]
        with store.atomic() as view:  # the revocation and its audit entry, or neither
            revoked = self._revoke(view, obligation.attributes, principal)
            for object_type, object_id in revoked:
                view.record_audit(
                    actor=self.actor,
                    action="events.revoke_access",
                    object_type=object_type,
                    object_id=object_id,
                    details=details,
                )
        self.policies.invalidate()
        self.counters.bump("revocations", len(revoked))

    def _revoke(
        self, store: Store, attributes: Mapping[str, Any], principal: Any
    ) -> list[tuple[str, str]]:
        """Disable what the attributes name; the (object type, id) of each."""
        grant_id = attributes.get("grant_id")
        if isinstance(grant_id, int) and not isinstance(grant_id, bool):
            store.set_grant_enabled(grant_id, False, actor=self.actor)
            return [("grant", str(grant_id))]
        if not isinstance(principal, str) or not principal:
            raise InvalidInputError("`revoke_access` needs a `principal` or a `grant_id`")
        if principal == self.actor:
            raise InvalidInputError("the event service does not revoke its own access")
        if attributes.get("grants") is not True and _is_service_account(store, principal):
            store.set_service_account_enabled(principal, False, actor=self.actor)
            return [("service_account", principal)]
        ids = [g.id for g in store.list_grants(principal=principal) if g.enabled and g.id]
        for number in ids:
            store.set_grant_enabled(number, False, actor=self.actor)
        if not ids:
            raise NotFoundError(f"`{principal}` holds no enabled grant")
        return [("grant", str(number)) for number in ids]

    def rate_limit(self, obligation: Obligation, event: Event) -> None:
        limit = obligation.attributes.get("requests_per_minute")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidInputError("`rate-limit` needs a positive `requests_per_minute`")
        now = self.clock().timestamp()
        with self._lock:
            recent = self._requests.setdefault(event.subject or event.topic, deque)
            while recent and recent[0] <= now - 60:
                recent.popleft()
            if len(recent) >= limit:
                raise PermissionDeniedError("rate limit reached")
            recent.append(now)

    # -- telling ---------------------------------------------------------------------

    def publish_notification(self, obligation: Obligation, event: Event) -> None:
        attributes = obligation.attributes
        topic = check_topic(attributes.get("topic") or self.settings.notification_topic)
        payload = dict(attributes.get("payload") or {})
        payload["event"] = event.describe()
        self.bus.publish(topic, encode(payload), qos=int(attributes.get("qos", 1)))
        self.counters.bump("notifications")

    def audit(self, obligation: Obligation, event: Event) -> None:
        """One entry per subject, topic and decision per interval; a failed write
        raises (the event is then not permitted) and is retried by the next event."""
        response = event.response
        decision = response.decision.value if response else ""
        subject = event.subject or event.device
        due = self._audits.due((subject, event.topic, decision), (subject, "*", decision))
        if due is None:
            return
        topic = "*" if due.overflow else event.topic
        details = {
            "event": event.describe(),
            "decision": decision,
            "events": due.events,
            "level": obligation.attributes.get("level", "info"),
            "topic": topic,
        }
        if due.overflow:
            details["other_topics"] = True
        if self.store is None:
            log.info("audit: %s on `%s`: %s", decision, topic, details)
            return
        self._write_audit(due, f"events.{event.kind}", audit_object_id(topic), details)

    def _write_audit(self, due: Due, action: str, object_id: str, details: Any) -> None:
        assert self.store is not None
        try:
            self.store.record_audit(
                actor=self.actor,
                action=action,
                object_type="topic",
                object_id=object_id,
                details=details,
            )
        except Exception:
            self._audits.failed(due)
            self.counters.bump("audit_errors")
            raise


def _is_service_account(store: Store, principal: str) -> bool:
    try:
        store.get_service_account(principal)
    except NotFoundError:
        return False
    return True


def _on_delivery(apply: Callable[[Obligation, Delivery], None]) -> EventHandler:
    """A transforming obligation, recorded on the event's delivery."""

    def handle(obligation: Obligation, event: Event) -> None:
        apply(obligation, event.delivery)

    return handle


def _matches(topic: str, filters: Iterable[TopicFilter]) -> bool:
    levels = topic.split("/")
    return any(match_levels(levels, f.levels) for f in filters)
