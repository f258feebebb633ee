"""A Policy Enforcement Point on the bus: data moves between topics only when policy permits.

Each `Route` listens on a topic filter and forwards what arrives to `destination`
(a topic prefix: the forwarded topic is the prefix followed by the source topic,
after any `rename-topic`) on behalf of `subject`, the principal that receives the
data (a service or an external platform such as KIBERNet). For every message the
relay asks the PDP::

    subject  {"id": route.subject, "groups": <from the store, or route.groups>}
    action   {"id": route.action}                     (default `subscribe`)
    resource {"topic": <source topic>, "kind": "relay", <payload fields>...}

and forwards only on Permit with every obligation discharged (`pbgm.pep`):
`drop-fields`, `keep-fields` (names or paths into nested objects, `meta.customer_id`),
`round`, `downsample` (at most one message per `min_interval_s`, aggregated by
`method`: see `pbgm.events._transform`), `rename-topic`, and `audit`. An obligation it
does not know denies. Several routes may listen on the same source filter: each runs,
in the order given.

Denials are audited in the store (`relay.deny`, with subject, decision, reason and
the deciding policies), at most once per route, topic and decision per
`audit_interval_s`, the entry counting the denials it stands for; permits with an
`audit` obligation likewise (`relay.forward`). The throttle keeps at most
`audit_max_keys` topics (more share one "other topics" entry per route, object id
`*`), and the topic goes to the details in full (the object id is cut to 255
characters). An audit that cannot be written denies the message (`audit_errors`) and
the next message tries again: nothing is forwarded unaudited. Down-sampling state is
kept for at most `max_topics` route and topic pairs. Everything is counted (`stats()`).
A message whose forwarded topic the route itself listens to is dropped (`loops`):
a relay never feeds itself. With a store, a decision point that has a policy source
(`pbgm.testing.decision_point`, `PolicyDecisionPoint(source=...)`) is refreshed when
the store revision moves (checked at most every `refresh_s`), and the subjects'
groups are read from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pbgm.bus import Bus, BusMessage, check_qos, check_topic
from pbgm.codecs import Codec, get_codec
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.events import (
    AuditThrottle,
    BoundedMap,
    Counters,
    Delivery,
    Downsampler,
    Due,
    PolicyCache,
    audit_object_id,
    flatten,
    sample_time,
    transform_handlers,
)
from pbgm.functions import match_levels, parse_topic_filter
from pbgm.model import Decision, Obligation, Request
from pbgm.pdp import utc_now
from pbgm.pep import Decider, Enforcement, PolicyEnforcementPoint
from pbgm.store.base import Store

log = logging.getLogger(__name__)

ACTOR = "pbgm-relay"
MAX_TOPICS = 10_000


@dataclass(frozen=True, slots=True)
class Route:
    """Forward `source` (a topic filter) to `destination` (a topic prefix) for `subject`."""

    source: str
    subject: str
    destination: str
    action: str = "subscribe"
    codec: str = "json"
    groups: tuple[str, ...] = ()
    qos: int = 1

    def check(self) -> Route:
        try:
            if not isinstance(self.source, str):
                raise ValueError("`source` must be a topic filter")
            parse_topic_filter(self.source)
            check_topic(self.destination)
            get_codec(self.codec)
            check_qos(self.qos)
        except (ValueError, InvalidInputError) as error:
            raise ConfigurationError(f"relay route `{self.source}`: {error}") from None
        if not self.subject:
            raise ConfigurationError(f"relay route `{self.source}` needs a subject")
        return self


class Relay:
    """Forwards data along routes when the PDP permits (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        pdp: Decider,
        routes: Iterable[Route],
        *,
        store: Store | None = None,
        actor: str = ACTOR,
        audit_interval_s: float = 60.0,
        refresh_s: float = 0.5,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        audit_max_keys: int = MAX_TOPICS,
        max_topics: int = MAX_TOPICS,
    ) -> None:
        self.bus, self.store, self.actor, self.clock = bus, store, actor, clock
        self.routes = tuple(route.check() for route in routes)
        self.policies = PolicyCache(store, pdp=pdp, refresh_s=refresh_s, monotonic=monotonic)
        self.counters = Counters()
        self._audits = AuditThrottle(
            audit_interval_s, lambda: clock().timestamp(), max_keys=audit_max_keys
        )
        self._downsamplers: BoundedMap[tuple[int, str], Downsampler] = BoundedMap(max_topics)
        self._lock = threading.Lock()
        self._listening: list[str] = []

    def start(self) -> Relay:
        """Subscribe once per source filter; a message runs every route of its filter."""
        by_source: dict[str, list[int]] = {}
        for index, route in enumerate(self.routes):
            by_source.setdefault(route.source, []).append(index)
        for source, indexes in by_source.items():
            qos = max(self.routes[i].qos for i in indexes)
            self.bus.subscribe(source, self._handler(tuple(indexes)), qos=qos)
            self._listening.append(source)
        return self

    def close(self) -> None:
        for source in self._listening:
            self.bus.unsubscribe(source)
        self._listening.clear()

    def stats(self) -> dict[str, int]:
        """received (per route), forwarded, held (down-sampled), denied, malformed, loops,
        errors, audited, audit_errors, and the evictions of bounded state."""
        out = self.counters.snapshot()
        with self._lock:
            if self._downsamplers.evicted:
                out["downsamplers_evicted"] = self._downsamplers.evicted
        if self._audits.forgotten:
            out["audit_keys_forgotten"] = self._audits.forgotten
        return out

    def _handler(self, indexes: tuple[int, ...]) -> Callable[[BusMessage], None]:
        def handle(message: BusMessage) -> None:
            for index in indexes:
                self.handle(index, message)

        return handle

    def handle(self, index: int, message: BusMessage) -> None:
        """Decide and forward one message of route `index`; never raises."""
        self.counters.bump("received")
        route = self.routes[index]
        codec = get_codec(route.codec)
        try:
            payload = codec.decode(message.payload)
        except InvalidInputError:
            self.counters.bump("malformed")
            return
        try:
            self._relay(index, route, codec, message, payload)
        except Exception:
            self.counters.bump("errors")
            log.exception("relaying `%s` failed", message.topic)

    def _relay(
        self, index: int, route: Route, codec: Codec, message: BusMessage, payload: dict[str, Any]
    ) -> None:
        now = self.clock()
        self.policies.refresh()
        request = self._request(route, message.topic, payload, now)
        delivery = Delivery()
        enforcement = self._check(request, delivery, message.topic, route, now)
        if not enforcement.allowed:
            self._denied(route, message.topic, enforcement)
            return
        fields = delivery.fields(payload)
        if delivery.min_interval_s is not None:
            due = self._downsampled(index, message.topic, payload, fields, delivery, now)
            if due is None:
                self.counters.bump("held")
                return
            fields = due
        self._forward(route, codec, delivery.topic(message.topic), fields)

    def _request(
        self, route: Route, topic: str, payload: Mapping[str, Any], now: datetime
    ) -> Request:
        groups = route.groups or self.policies.groups_of(route.subject)
        subject = {"id": route.subject, "groups": groups}
        resource = {**flatten(payload), "topic": topic, "kind": "relay"}
        return Request(subject, resource, {"id": route.action}, {"current_time": now})

    def _check(
        self, request: Request, delivery: Delivery, topic: str, route: Route, now: datetime
    ) -> Enforcement:
        handlers = transform_handlers(delivery)
        handlers["audit"] = lambda o, r: self._audit_forward(o, r, route, topic)
        decider = self.policies.decider("")
        return PolicyEnforcementPoint(decider, handlers).check(request, now=now)

    def _downsampled(
        self, index: int, topic: str, payload: Mapping[str, Any], fields: dict[str, Any],
        delivery: Delivery, now: datetime,
    ) -> dict[str, Any] | None:  # fmt: skip
        t = sample_time(payload, now.timestamp())
        with self._lock:
            sampler = self._downsamplers.setdefault((index, topic), Downsampler)
            assert delivery.min_interval_s is not None
            return sampler.offer(t, fields, delivery.min_interval_s, delivery.method)

    def _forward(self, route: Route, codec: Codec, topic: str, fields: dict[str, Any]) -> None:
        destination = route.destination.rstrip("/") + ("" if topic.startswith("/") else "/")
        target = check_topic(destination + topic)
        if match_levels(target.split("/"), parse_topic_filter(route.source).levels):
            self.counters.bump("loops")
            return
        self.bus.publish(target, codec.encode(fields), qos=route.qos)
        self.counters.bump("forwarded")

    # -- audit -------------------------------------------------------------------------

    def _denied(self, route: Route, topic: str, enforcement: Enforcement) -> None:
        decision = enforcement.response.decision
        self.counters.bump("denied")
        try:
            self._audit("relay.deny", route, topic, decision, reason=enforcement.reason,
                        policy_ids=list(enforcement.response.policy_ids))  # fmt: skip
        except Exception:
            log.exception("cannot audit a denial on `%s`", topic[:200])

    def _audit_forward(self, obligation: Obligation, _r: Request, route: Route, topic: str) -> None:
        """The `audit` obligation: raises when the entry cannot be written (deny)."""
        level = obligation.attributes.get("level", "info")
        self._audit("relay.forward", route, topic, Decision.PERMIT, level=level)

    def _audit(
        self, action: str, route: Route, topic: str, decision: Decision, **details: Any
    ) -> None:
        key = (action, route.source, route.subject, topic, decision)
        due = self._audits.due(key, (action, route.source, route.subject, "*", decision))
        if due is None:
            return
        shown = "*" if due.overflow else topic
        details.update(subject=route.subject, decision=decision.value, events=due.events)
        details.update(destination=route.destination, topic=shown)
        if due.overflow:
            details["other_topics"] = True
        if self.store is None:
            log.info("%s on `%s`: %s", action, shown[:200], details)
            return
        self._write_audit(due, action, shown, details)

    def _write_audit(self, due: Due, action: str, topic: str, details: dict[str, Any]) -> None:
        assert self.store is not None
        try:
            self.store.record_audit(
                actor=self.actor, action=action, object_type="topic",
                object_id=audit_object_id(topic), details=details,
            )  # fmt: skip
        except Exception:
            self._audits.failed(due)  # its events wait for the next entry, due at once
            self.counters.bump("audit_errors")
            raise
        self.counters.bump("audited")
