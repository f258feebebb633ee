"""The event service: bus messages in, decisions, obligations out.

For each message on a configured subscription (`EventServiceConfig.subscriptions`):

1. the codec decodes it; a malformed payload is counted (`malformed`) and dropped, a
   topic no subscription covers (a left-over of a persistent session) is counted
   (`unknown_topic`); nothing stops the service;
2. a `Request` is built (below) and decided by the PDP of the subscription's policy
   group, and the obligations are discharged through handlers by a deny-biased
   `PolicyEnforcementPoint`: only a Permit with every obligation done counts as
   permitted;
3. measurements also feed the topic's history, from which the `service_trigger`
   policies of the group are checked; a trigger that fires is asked to the PDP as
   `subject.id = <service_id>`, `action.id = trigger`, `resource.service = <the
   service it runs>`, and on Permit its actions are discharged as obligations.

Requests. `resource` holds the payload's fields as `resource.<name>` (nested objects
as `resource.<outer>.<inner>`) and, overriding any payload field of the same name:
`topic`, `kind` and, for measurements, `device`, `time`, `frequency`,
`active_power` (MW), `rocof` (Hz/s, least-squares slope over `rocof_window_ms`) and
`delta_p` (MW, power step over `delta_p_window_ms`) when they can be computed.
`subject` is the publishing device for measurements and grid state (`device` in the
payload, else the topic level `device_level`, else the topic) with action `publish`;
for data requests it is the `sub` of the verified JWT, with its `groups` from the
store and its `scopes`, and the action `read` (or `subscribe`).
`environment` has `current_time` and the latest grid state as `grid.<name>`.

Data requests carry a JWT in the payload field `token` or the MQTT 5 user property
`authorization` (`Bearer <token>`), the data topic in `topic` and optionally
`window_s`; the answer goes to the MQTT 5 `response_topic` (with its
`correlation_data`) or the payload's `reply_to`, which must lie under
`reply_topic_prefix` (so a requester cannot make the service publish elsewhere),
echoing `correlation_id`. A missing, bad or revoked token is denied and answered
with its error code. Messages are handled on the bus's handler thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pbgm.auth import TokenVerifier
from pbgm.bus import Bus, BusMessage
from pbgm.codecs import Codec, get_codec
from pbgm.errors import ConfigurationError, InvalidInputError, PbgmError
from pbgm.functions import match_levels, parse_topic_filter
from pbgm.model import Request
from pbgm.pdp import utc_now
from pbgm.pep import Decider
from pbgm.store.base import Store, iter_published

from ._bounded import BoundedMap
from ._config import EventServiceConfig, SubscriptionConfig
from ._data_requests import DataRequests
from ._enforce import Enforcer
from ._handlers import Counters, Event, EventHandler, Obligations
from ._policies import PolicyCache
from ._samples import Sample, SignalNames, TopicHistory, flatten, sample_time
from ._services import GridService, ServiceRegistry
from ._triggers import Trigger, TriggerState

log = logging.getLogger(__name__)

_PUBLISH: Mapping[str, Any] = MappingProxyType({"id": "publish"})


class _Warnings:
    """A warning per kind at most every `interval_s`; the others go to the debug level,
    so a flood of bad messages cannot flood the log."""

    def __init__(self, monotonic: Callable[[], float], interval_s: float = 10.0) -> None:
        self._monotonic, self._interval_s = monotonic, interval_s
        self._next: dict[str, float] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        now = self._monotonic()
        if now < self._next.get(kind, 0.0):
            log.debug(message, *args)
            return
        self._next[kind] = now + self._interval_s
        log.warning(message + " (more of these within %gs: debug level)", *args, self._interval_s)


class _Route:
    def __init__(self, config: SubscriptionConfig) -> None:
        self.config = config
        self.levels = parse_topic_filter(config.topic).levels
        self.codec: Codec = get_codec(config.codec)
        self.signals = SignalNames(config.frequency_field, config.power_field)


class EventService:
    """Listens on the bus and acts on policy decisions (see the module docstring)."""

    def __init__(
        self,
        config: EventServiceConfig,
        *,
        bus: Bus,
        pdp: Decider | None = None,
        store: Store | None = None,
        verifier: TokenVerifier | None = None,
        handlers: Mapping[str, EventHandler] | None = None,
        services: Mapping[str, GridService] | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """A bad `config` (one made in code, see `EventServiceConfig.checked`) is a
        `ConfigurationError` naming the setting, here rather than at the first message."""
        config = config.checked()
        self.config, self.bus, self.verifier, self.clock = config, bus, verifier, clock
        self.policies = PolicyCache(
            store,
            pdp=pdp,
            refresh_s=config.refresh_ms / 1000,
            monotonic=monotonic,
            max_principals=config.max_topics,
        )
        self.counters = Counters()
        self._warnings = _Warnings(monotonic)
        self._routes = tuple(_Route(s) for s in config.subscriptions)
        limit = config.max_topics
        self._route_of: BoundedMap[str, tuple[_Route, ...]] = BoundedMap(limit)
        self._devices: BoundedMap[str, str] = BoundedMap(limit)
        self._watchers: BoundedMap[
            tuple[str, str], tuple[tuple[Trigger, ...], tuple[Trigger, ...]]
        ] = BoundedMap(limit)
        self._histories: BoundedMap[str, TopicHistory] = BoundedMap(limit, self._forget_topic)
        self._trigger_states: dict[str, TriggerState] = {}
        self._grid_state: Mapping[str, Any] = MappingProxyType({})
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            config.service_workers, thread_name_prefix="pbgm-grid-service"
        )
        self.obligations = Obligations(
            bus=bus,
            policies=self.policies,
            samples=self._samples_since,
            registry=ServiceRegistry(bus, services, config.services),
            executor=self._executor,
            counters=self.counters,
            settings=config,
            clock=clock,
        )
        self.enforcer = Enforcer(
            self.policies, {**self.obligations.handlers(), **(handlers or {})}, self.counters
        )
        self.data_requests = DataRequests(
            config,
            bus=bus,
            verifier=verifier,
            policies=self.policies,
            enforcer=self.enforcer,
            counters=self.counters,
            environment=self._environment,
            recent=self._recent,
        )
        self._subscribed: list[str] = []

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> EventService:
        """Check there are policies to decide with, then subscribe to every filter.

        A policy group of the subscriptions without a published policy makes every
        message of it `not_applicable`: that is logged as an error (and counted,
        `groups_without_policies`), or refused with `no_policies` when the
        configuration says `require_policies: true`.
        """
        self._check_policies()
        by_filter: dict[str, list[_Route]] = {}
        for route in self._routes:
            by_filter.setdefault(route.config.topic, []).append(route)
        for topic_filter, routes in by_filter.items():
            qos = max(r.config.qos for r in routes)
            self.bus.subscribe(topic_filter, self._handler(tuple(routes)), qos=qos)
            self._subscribed.append(topic_filter)
        return self

    def _handler(self, routes: tuple[_Route, ...]) -> Callable[[BusMessage], None]:
        """The handler of one topic filter: every subscription of that filter runs."""

        def handle(message: BusMessage) -> None:
            self.counters.bump("received")
            self._handle(message, routes)

        return handle

    def _check_policies(self) -> None:
        store = self.policies.store
        if store is None:
            return  # an explicit decision point: its owner loaded it
        groups = sorted({r.config.policy_group for r in self._routes})
        try:
            empty = [g for g in groups if next(iter_published(store, policy_group=g), None) is None]
        except Exception:
            log.warning("cannot count the policies of the store at start", exc_info=True)
            return
        if not empty:
            return
        shown = ", ".join(f"`{g}`" for g in empty)
        message = (
            f"no policies in policy group(s) {shown}: every message of their subscriptions "
            "will be not applicable; check `policies:` or `store:` of the configuration"
        )
        self.counters.bump("groups_without_policies", len(empty))
        if self.config.require_policies:
            raise ConfigurationError(message, code="no_policies")
        log.error(message)

    def close(self) -> None:
        """Unsubscribe and wait for running grid services; the bus stays open."""
        for topic_filter in self._subscribed:
            try:
                self.bus.unsubscribe(topic_filter)
            except PbgmError:
                log.debug("could not unsubscribe `%s`", topic_filter)
        self._subscribed.clear()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> EventService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the grid services started so far; False on timeout."""
        _, running = wait_futures(self.obligations.running(), timeout=timeout)
        return not running

    def stats(self) -> dict[str, int]:
        """The counters (a counter appears once it is non-zero).

        Messages: `received`, `malformed`, `unknown_topic`, `errors` (a bug, logged),
        `late` (a sample older than the newest of its topic: decided, not in the history).
        Decisions, by kind (`measurement`, `grid_state`, `data_request`, `trigger`):
        `<kind>_permitted`, `<kind>_denied`, `<kind>_not_applicable`,
        `<kind>_indeterminate`, and `obligations_failed` (a Permit not enforced).
        Data requests: `bad_token`, `invalid_request`, `no_reply_topic`, `data_replies`.
        Obligations: `triggers_fired`, `services_started`, `services_failed`,
        `data_returned`, `notifications`, `revocations`. State: `topics` (with a
        history), `services_running`.
        """
        out = self.counters.snapshot()
        with self._lock:
            out["topics"] = len(self._histories)
            if self._histories.evicted:
                out["topics_evicted"] = self._histories.evicted
        out["services_running"] = len(self.obligations.running())
        return out

    def state_sizes(self) -> dict[str, int]:
        """How many entries each table of per-topic or per-principal state holds now;
        each is bounded by `max_topics` (or a fixed bound), whatever the bus sends."""
        with self._lock:
            sizes = {
                "histories": len(self._histories),
                "routes": len(self._route_of),
                "devices": len(self._devices),
                "watchers": len(self._watchers),
                "armed": sum(len(s.armed) for s in self._trigger_states.values()),
            }
        return {**sizes, **self.policies.sizes(), **self.obligations.sizes()}

    @property
    def grid_state(self) -> Mapping[str, Any]:
        """The latest grid state, as decisions see it (`grid.<name>`)."""
        return self._grid_state

    def samples(self, topic: str) -> list[Sample]:
        """The samples held for `topic`, oldest first (none when it is not tracked)."""
        with self._lock:
            history = self._histories.peek(topic)
            return history.since(-float("inf")) if history is not None else []

    # -- one message -----------------------------------------------------------------

    def handle(self, message: BusMessage) -> None:
        """Handle one message with every subscription whose filter matches its topic;
        never raises (everything is counted)."""
        self.counters.bump("received")
        routes = self._routes_for(message.topic)
        if not routes:
            self.counters.bump("unknown_topic")
            self._warnings.warn("unknown_topic", "no subscription covers `%s`", message.topic)
            return
        self._handle(message, routes)

    def _handle(self, message: BusMessage, routes: tuple[_Route, ...]) -> None:
        for route in routes:
            try:
                payload = route.codec.decode(message.payload)
            except InvalidInputError as exc:
                self.counters.bump("malformed")
                self._warnings.warn(
                    "malformed", "malformed payload on `%s`: %s", message.topic, exc
                )
                continue
            try:
                self.policies.refresh()
                kind = route.config.kind
                if kind == "measurement":
                    self._measurement(message, payload, route)
                elif kind == "data_request":
                    self.data_requests.handle(message, payload, route.config, self.clock())
                else:
                    self._grid_state_message(message, payload, route.config)
            except Exception:
                self.counters.bump("errors")
                log.exception("handling a message on `%s` failed", message.topic)

    def _routes_for(self, topic: str) -> tuple[_Route, ...]:
        with self._lock:
            known = self._route_of.get(topic)
        if known is not None:
            return known
        levels = topic.split("/")
        found = tuple(r for r in self._routes if match_levels(levels, r.levels))
        with self._lock:
            self._route_of.set(topic, found)
        return found

    def _device(self, config: SubscriptionConfig, topic: str, payload: Mapping[str, Any]) -> str:
        """The payload's `device`, else the topic level `device_level`, else the topic."""
        device = payload.get("device")
        if isinstance(device, str) and device:
            return device
        with self._lock:
            return self._devices.setdefault(topic, lambda: _topic_device(config, topic))

    # -- measurements and grid state -------------------------------------------------

    def _measurement(self, message: BusMessage, payload: dict[str, Any], route: _Route) -> None:
        now, config, topic = self.clock(), route.config, message.topic
        t = sample_time(payload, now.timestamp())
        frequency, power = route.signals.extract(payload)
        sample = Sample(t, payload, frequency, power)
        device = self._device(config, topic, payload)
        with self._lock:
            history = self._histories.setdefault(topic, self._new_history)
            if not history.add(sample):
                self.counters.bump("late")
            resource = self._measured(topic, payload, history, sample, device)
            fired = self._fired(config, topic, history, now)
        self.obligations.forward(topic, sample)
        if config.decide:
            self._decide_published("measurement", message, resource, device, config, now, t)
        for trigger in fired:
            self._trigger(trigger, message, resource, device, config, now)

    def _measured(
        self, topic: str, payload: Mapping[str, Any], history: TopicHistory, sample: Sample,
        device: str,
    ) -> dict[str, Any]:  # fmt: skip
        resource = flatten(payload)
        resource.update(topic=topic, kind="measurement", device=device)
        resource["time"] = datetime.fromtimestamp(sample.t, UTC)
        if sample.frequency is not None:
            resource["frequency"] = sample.frequency
            rocof = history.rocof(self.config.rocof_window_ms / 1000)
            if rocof is not None:
                resource["rocof"] = rocof
        if sample.power is not None:
            resource["active_power"] = sample.power
            delta_p = history.delta_p(self.config.delta_p_window_ms / 1000)
            if delta_p is not None:
                resource["delta_p"] = delta_p
        return resource

    def _new_history(self) -> TopicHistory:
        return TopicHistory(self.config.history_s, self.config.max_samples_per_topic)

    def _forget_topic(self, topic: str, _history: TopicHistory) -> None:
        """A topic's history was evicted (called under the lock): forget it everywhere."""
        for state in self._trigger_states.values():
            state.armed.pop(topic, None)

    def _fired(
        self, config: SubscriptionConfig, topic: str, history: TopicHistory, now: datetime
    ) -> list[Trigger]:
        fired = []
        for trigger in self._watching(config.policy_group, topic):
            state = self._trigger_states.setdefault(trigger.policy_id, TriggerState())
            if state.check(trigger, topic, history, config.s_base_mw, now.timestamp()):
                fired.append(trigger)
        return fired

    def _watching(self, group: str, topic: str) -> tuple[Trigger, ...]:
        """The group's triggers watching `topic`, remembered until the group's triggers
        are reloaded (they are then another tuple)."""
        triggers = self.policies.triggers(group)
        remembered = self._watchers.get((group, topic))
        if remembered is not None and remembered[0] is triggers:
            return remembered[1]
        watching = tuple(t for t in triggers if t.watches(topic))
        self._watchers.set((group, topic), (triggers, watching))
        return watching

    def _grid_state_message(
        self, message: BusMessage, payload: dict[str, Any], config: SubscriptionConfig
    ) -> None:
        now = self.clock()
        state = {f"grid.{k}": v for k, v in flatten(payload).items()}
        with self._lock:
            self._grid_state = MappingProxyType({**self._grid_state, **state})
        if config.decide:
            resource = {**flatten(payload), "topic": message.topic, "kind": "grid_state"}
            device = self._device(config, message.topic, payload)
            t = now.timestamp()
            self._decide_published("grid_state", message, resource, device, config, now, t)

    def _decide_published(
        self, kind: str, message: BusMessage, resource: dict[str, Any], device: str,
        config: SubscriptionConfig, now: datetime, t: float,
    ) -> None:  # fmt: skip
        subject = {"id": device, "groups": self.policies.groups_of(device)}
        request = Request(subject, resource, _PUBLISH, self._environment(now))
        event = Event(kind, message.topic, message, request, t, config.policy_group, device, device)
        self.enforcer.enforce(event, now)

    def _trigger(
        self, trigger: Trigger, message: BusMessage, resource: Mapping[str, Any], device: str,
        config: SubscriptionConfig, now: datetime,
    ) -> None:  # fmt: skip
        self.counters.bump("triggers_fired")
        service_id = self.config.service_id
        groups = self.policies.groups_of(service_id)
        subject = {"id": service_id, "device": device, "groups": groups}
        resource = {**resource, "trigger": trigger.policy_id}
        if trigger.service is not None:
            resource["service"] = trigger.service
        request = Request(subject, resource, {"id": "trigger"}, self._environment(now))
        t = resource["time"].timestamp()
        event = Event("trigger", message.topic, message, request, t, config.policy_group)
        event.device, event.subject, event.trigger = device, service_id, trigger.policy_id
        self.enforcer.enforce(event, now, trigger.actions)

    # -- shared ------------------------------------------------------------------------

    def _environment(self, now: datetime) -> dict[str, Any]:
        return {**self._grid_state, "current_time": now}

    def _samples_since(
        self, wanted: Callable[[str], bool], t_start: float
    ) -> dict[str, list[Sample]]:
        """The samples at or after `t_start` of every topic `wanted` accepts."""
        with self._lock:
            return {t: h.since(t_start) for t, h in self._histories.items() if wanted(t)}

    def _recent(self, topic: str, window_s: float) -> list[Sample]:
        """The samples of `topic` within `window_s` of its newest one."""
        with self._lock:
            history = self._histories.peek(topic)
            newest = history.newest if history is not None else None
            if history is None or newest is None:
                return []
            return history.since(newest.t - window_s)


def _topic_device(config: SubscriptionConfig, topic: str) -> str:
    levels = topic.split("/")
    level = config.device_level
    if level is not None and level < len(levels) and levels[level]:
        return levels[level]
    return topic
