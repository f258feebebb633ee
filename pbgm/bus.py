"""The data bus as pbgm sees it: a Protocol, one message type and an in-process bus.

pbgm never imports an MQTT library. Services in pbgm (event service, loader, relay)
talk to a `Bus`; the MQTT implementation lives in `adapters.mqtt` and is found at run
time through the entry-point group `pbgm.bus` (or a `factory` named in the config), so
the core stays free of paho.

Semantics shared by every implementation:

- Topic filters follow MQTT 3.1.1/5 (`+` one level, `#` the rest); subscribing the
  same filter again replaces its handler, as MQTT replaces a subscription.
- A message matching several filters is handed to each matching handler.
- A handler that raises is logged and counted (`handler_errors`); one that raises
  `InvalidInputError` with code `malformed_payload` is counted as `malformed`. Neither
  stops the bus.
- `properties` carries MQTT 5 properties by their snake_case names:
  `response_topic` (str), `correlation_data` (bytes), `content_type` (str),
  `message_expiry_interval` (int, seconds) and `user_properties` (a tuple of
  `(name, value)` pairs; a mapping is accepted on publish). Over MQTT 3.1.1 they are
  dropped.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from pbgm.errors import ConfigurationError, InvalidInputError, PbgmError
from pbgm.functions import TopicFilter, match_levels, parse_topic_filter

__all__ = [
    "BUS_ENTRY_POINT_GROUP",
    "Bus",
    "BusClosedError",
    "BusConnectionError",
    "BusMessage",
    "BusQueueFullError",
    "Handler",
    "MemoryBus",
    "Subscription",
    "check_qos",
    "check_topic",
    "open_bus",
]

log = logging.getLogger(__name__)

BUS_ENTRY_POINT_GROUP = "pbgm.bus"
MAX_TOPIC_BYTES = 65535


def _no_properties() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One message as delivered to a handler (or as published)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Mapping[str, Any] = field(default_factory=_no_properties)


Handler = Callable[[BusMessage], None]


@runtime_checkable
class Bus(Protocol):
    """A publish/subscribe bus: MQTT in production, `MemoryBus` in process."""

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Mapping[str, Any] | None = None,
    ) -> None: ...

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None: ...

    def unsubscribe(self, topic_filter: str) -> None: ...

    def close(self) -> None: ...


class BusClosedError(PbgmError):
    """The bus was closed; nothing more can be published or subscribed."""

    code = "bus_closed"


class BusConnectionError(PbgmError):
    """The bus cannot be reached or refused us; implementations refine the `code`
    (for MQTT: `mqtt_auth_failed`, `mqtt_tls_failed`, `mqtt_unreachable`)."""

    code = "bus_unavailable"


class BusQueueFullError(PbgmError):
    """A publish found the bounded queue of a disconnected bus full (policy `raise`)."""

    code = "bus_queue_full"


# --- checks shared by the implementations --------------------------------------------


def check_topic(topic: Any) -> str:
    """A topic name to publish on: non-empty, no wildcard, no NUL, at most 65535 bytes."""
    if not isinstance(topic, str) or not topic:
        raise InvalidInputError("a topic name must be a non-empty string", code="invalid_topic")
    if "+" in topic or "#" in topic or "\0" in topic:
        raise InvalidInputError(
            f"topic `{topic}` must not contain `+`, `#` or NUL", code="invalid_topic"
        )
    if len(topic.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
        raise InvalidInputError("a topic name is at most 65535 bytes", code="invalid_topic")
    return topic


def check_qos(qos: Any) -> int:
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise InvalidInputError(f"qos `{qos}` must be 0, 1 or 2", code="invalid_qos")
    return int(qos)


def check_properties(properties: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The known MQTT 5 properties, checked; `correlation_data` as bytes and
    `user_properties` as a tuple of `(name, value)` string pairs."""
    if not properties:
        return _no_properties()
    out: dict[str, Any] = {}
    for name, value in properties.items():
        check = _PROPERTY_CHECKS.get(name)
        if check is None:
            raise _bad_property(f"unknown message property `{name}`")
        if value is not None:
            out[name] = check(value)
    return MappingProxyType(out)


def _bad_property(message: str) -> InvalidInputError:
    return InvalidInputError(message, code="invalid_message_property")


def _text_property(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad_property("`response_topic` and `content_type` must be non-empty strings")
    return value


def _bytes_property(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if not isinstance(value, bytes | bytearray):
        raise _bad_property("`correlation_data` must be bytes or a string")
    return bytes(value)


def _interval_property(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise _bad_property("`message_expiry_interval` must be whole seconds (0 to 2^32-1)")
    return value


def _pairs_property(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    try:
        out = tuple((k, v) for k, v in pairs)
    except (TypeError, ValueError):
        raise _bad_property("`user_properties` must be a mapping or (name, value) pairs") from None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in out):
        raise _bad_property("`user_properties` names and values must be strings")
    return out


_PROPERTY_CHECKS: dict[str, Callable[[Any], Any]] = {
    "response_topic": lambda v: check_topic(_text_property(v)),
    "correlation_data": _bytes_property,
    "content_type": _text_property,
    "message_expiry_interval": _interval_property,
    "user_properties": _pairs_property,
}


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter, parsed once, with its handler and requested QoS."""

    text: str
    parsed: TopicFilter
    handler: Handler
    qos: int

    @classmethod
    def make(cls, topic_filter: Any, handler: Handler, qos: Any) -> Subscription:
        if not callable(handler):
            raise InvalidInputError(
                "a subscription needs a callable handler", code="invalid_handler"
            )
        if not isinstance(topic_filter, str):
            raise InvalidInputError("a topic filter must be a string", code="invalid_topic_filter")
        try:
            parsed = parse_topic_filter(_unshared(topic_filter))
        except ValueError as exc:
            raise InvalidInputError(str(exc), code="invalid_topic_filter") from None
        return cls(topic_filter, parsed, handler, check_qos(qos))

    def matches(self, topic: str) -> bool:
        return match_levels(topic.split("/"), self.parsed.levels)


def _unshared(topic_filter: str) -> str:
    """`$share/<group>/<filter>` matches like `<filter>` (MQTT 5 shared subscriptions)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3 and parts[1] and parts[2]:
            return parts[2]
    return topic_filter


def deliver(message: BusMessage, handler: Handler) -> str | None:
    """Call one handler; log what it raises, never let it escape.

    Returns the counter to bump on failure (`malformed` or `handler_errors`), else None.
    """
    try:
        handler(message)
    except InvalidInputError as exc:
        if exc.code == "malformed_payload":
            log.warning("malformed payload on `%s`: %s", message.topic, exc.message)
            return "malformed"
        log.exception("handler for `%s` failed", message.topic)
        return "handler_errors"
    except Exception:
        log.exception("handler for `%s` failed", message.topic)
        return "handler_errors"
    return None


# --- the in-process bus --------------------------------------------------------------


class MemoryBus:
    """An in-process bus with MQTT topic matching and synchronous delivery.

    `publish` calls the matching handlers in the publishing thread before it returns,
    in subscription order. Retained messages are kept per topic and handed to a new
    subscriber at once; an empty retained payload clears the topic. Delivered QoS is
    the lower of the published and the subscribed QoS. Thread-safe; handlers run
    outside the lock, so a handler may publish or subscribe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._retained: dict[str, BusMessage] = {}
        self._counters = dict.fromkeys(
            ("published", "received", "handler_errors", "malformed", "unmatched"), 0
        )
        self._closed = False

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        message = BusMessage(
            check_topic(topic), bytes(payload), check_qos(qos), retain, check_properties(properties)
        )
        with self._lock:
            self._check_open()
            self._counters["published"] += 1
            if retain:
                self._retain(message)
            targets = [s for s in self._subscriptions.values() if s.matches(topic)]
            if not targets:
                self._counters["unmatched"] += 1
        for subscription in targets:
            self._deliver(message, subscription, retain=False)

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        subscription = Subscription.make(topic_filter, handler, qos)
        with self._lock:
            self._check_open()
            self._subscriptions[subscription.text] = subscription
            retained = [m for t, m in self._retained.items() if subscription.matches(t)]
        for message in retained:
            self._deliver(message, subscription, retain=True)

    def unsubscribe(self, topic_filter: str) -> None:
        with self._lock:
            self._subscriptions.pop(topic_filter, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._subscriptions.clear()

    def stats(self) -> dict[str, int]:
        """Counters: published, received (deliveries), handler_errors, malformed, unmatched."""
        with self._lock:
            return dict(self._counters)

    def _retain(self, message: BusMessage) -> None:
        if message.payload:
            self._retained[message.topic] = message
        else:
            self._retained.pop(message.topic, None)

    def _deliver(self, message: BusMessage, subscription: Subscription, *, retain: bool) -> None:
        qos = min(message.qos, subscription.qos)
        delivered = BusMessage(message.topic, message.payload, qos, retain, message.properties)
        failure = deliver(delivered, subscription.handler)
        with self._lock:
            self._counters["received"] += 1
            if failure:
                self._counters[failure] += 1

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the bus is closed")


# --- opening a bus from configuration -----------------------------------------------


def open_bus(config: Mapping[str, Any]) -> Bus:
    """A bus from a config mapping: `{"kind": "memory"}`, `{"kind": "mqtt", ...}`
    (resolved through the `pbgm.bus` entry-point group) or
    `{"factory": "package.module:function", ...}`.

    The factory receives the config without `kind` and `factory`.
    """
    if not isinstance(config, Mapping):
        raise ConfigurationError("the bus configuration must be a mapping")
    rest = {k: v for k, v in config.items() if k not in ("kind", "factory")}
    if config.get("factory") is not None:
        factory: Callable[[Mapping[str, Any]], Bus] = load_factory(config["factory"], "bus")
        return factory(rest)
    kind = config.get("kind", "memory")
    if kind == "memory":
        return MemoryBus()
    return _entry_point_factory(kind)(rest)


def load_factory(spec: Any, what: str) -> Callable[..., Any]:
    """The `package.module:function` that `spec` names, imported; `what` says whose
    factory it is in error messages (buses here, grid services in `pbgm.events`)."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigurationError(f"{what} factory `{spec}` must read `package.module:function`")
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        raise ConfigurationError(f"{what} factory `{spec}` cannot be imported") from None
    if not callable(factory):
        raise ConfigurationError(f"{what} factory `{spec}` is not callable")
    return factory  # type: ignore[no-any-return]


def _entry_point_factory(kind: Any) -> Callable[[Mapping[str, Any]], Bus]:
    found = entry_points(group=BUS_ENTRY_POINT_GROUP, name=str(kind))
    for entry_point in found:
        return entry_point.load()  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"no bus implementation named `{kind}`: install the package that provides it "
        "or name a `factory`"
    )
