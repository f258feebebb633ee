"""`MqttBus`: the `pbgm.bus.Bus` protocol over paho-mqtt 2.x.

Threads: paho's network thread (`loop_start`) reads and writes the socket and calls the
callbacks below; they never run a handler, they only queue the message for the ONE
handler thread of the `Dispatcher`. Publishing is safe from any thread, handlers included.
What handlers publish while connected is handed to paho after their batch of messages
(when the inbound queue runs empty, or every `BATCH` messages), in order: paho wakes
its network thread once per publish from another thread, and a batch lets that thread
write several messages per wake-up. Such a publish that finds paho's queue full is
dropped and counted (`dropped_full_queue`) even under `queue_policy: raise`.

Connection life: `connect(timeout)` starts the network thread and waits for the first
CONNACK. paho reconnects after a loss; before each retry the delay is reset to an
exponential back-off with jitter (`min_delay` doubling up to `max_delay`, each delay drawn
from its upper half) so that many clients do not return in step. Bad credentials, TLS
failures and other fatal refusals stop the client at once (no retry storm) and are kept
in `failure`; `connect` raises them. Every (re)connection resubscribes every filter, then
flushes the publishes queued while disconnected, in order.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from adapters.mqtt._errors import (
    BrokerTlsError,
    BrokerUnreachableError,
    connect_failure,
    is_tls_failure,
    refusal,
)
from adapters.mqtt._paho import (
    MAX_PAYLOAD_BYTES,
    NO_PROPERTIES,
    capture_logger,
    close_abandoned_sockets,
    make_client,
    no_delay,
    publish_properties,
    received_properties,
)
from adapters.mqtt._queues import Counters, Dispatcher, Outbox, Pending, Throttle
from adapters.mqtt._settings import MqttSettings
from pbgm.bus import (
    BusClosedError,
    BusConnectionError,
    BusMessage,
    BusQueueFullError,
    Handler,
    Subscription,
    check_properties,
    check_qos,
    check_topic,
)
from pbgm.errors import ConfigurationError, InvalidInputError

log = logging.getLogger("adapters.mqtt")


class MqttBus:
    """A `pbgm.bus.Bus` on an MQTT broker; see the module docstring for its threads."""

    def __init__(self, settings: MqttSettings, *, client: mqtt.Client | None = None) -> None:
        settings = settings.checked()  # made in code: refused here as its config would be
        self.settings = settings
        self._v5 = settings.protocol == "5"
        self._manual_ack = settings.ack_after_handling
        self._client = client if client is not None else make_client(settings)
        self._counters = Counters()
        self._deferred: list[Pending] = []
        self._dropped = Throttle()
        self._dispatcher = Dispatcher(
            self._counters,
            settings.inbound_queue_size,
            f"pbgm-mqtt-{settings.client_id}",
            after_batch=self._send_deferred,
            hold_s=settings.hold_unmatched_s,
            acknowledge=self._acknowledge if settings.ack_after_handling else None,
        )
        self._outbox = Outbox(settings.queue_size, settings.queue_policy)
        self._lock = threading.Condition(threading.RLock())
        self._connected = self._started = self._closed = self._acked = self._ever = False
        self._failure: BusConnectionError | None = None
        self._last_error: BusConnectionError | None = None
        self._tls_error: BaseException | None = None
        self._attempt = 0
        self._subscribe_mids: dict[int, str] = {}
        self._rng = random.Random()
        self._configure(self._client)
        self._dispatcher.start()
        self._handler_thread = self._dispatcher.ident

    # --- the Bus protocol -------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        """Send when connected (from a handler: after its batch), else keep in the bounded
        queue (see `queue_policy`)."""
        data = bytes(payload)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise InvalidInputError("an MQTT payload is at most 256 MB", code="invalid_payload")
        paho_properties = None
        if properties and self._v5:
            paho_properties = publish_properties(check_properties(properties))
        item = Pending(check_topic(topic), data, check_qos(qos), bool(retain), paho_properties)
        with self._lock:
            self._check_open()
            if not self._connected:
                self._enqueue(item)
            elif threading.get_ident() == self._handler_thread:
                self._deferred.append(item)
            else:
                self._send(item)

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        """Route messages matching `topic_filter` to `handler` (on the handler thread)."""
        subscription = Subscription.make(topic_filter, handler, qos)
        with self._lock:
            self._check_open()
            number = self._dispatcher.add(subscription)
            if self._connected:
                self._send_subscribe(number, subscription)

    def unsubscribe(self, topic_filter: str) -> None:
        with self._lock:
            if self._dispatcher.remove(topic_filter) and self._connected:
                self._client.unsubscribe(topic_filter)

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect, let the handler thread finish what it holds, stop. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._send_deferred()
            self._closed = True
            unsent = len(self._outbox)
        if unsent:
            log.warning("closing with %d unsent message(s) in the queue; dropped", unsent)
        self._stop_network()
        self._dispatcher.stop(timeout)

    # --- beyond the protocol ----------------------------------------------------------

    def connect(self, timeout: float | None = 10.0) -> None:
        """Connect and wait for the broker's acceptance.

        Publishing and subscribing work before it (and after a fatal failure): messages
        wait in the bounded queue, subscriptions are made on connection.

        Raises `mqtt_auth_failed`, `mqtt_tls_failed` or `mqtt_refused` as soon as the
        broker or the handshake says so, and `mqtt_unreachable` when `timeout` seconds
        pass without a connection (retrying meanwhile). After a raise the client is
        stopped; `connect` may be called again.
        """
        with self._lock:
            self._check_open()
            if not self._started:
                self._start()
            self._lock.wait_for(
                lambda: self._connected or self._failure is not None or self._closed, timeout
            )
            if self._connected:
                return
            failure = self._failure or self._unreachable(timeout)
        self._stop_network()
        raise failure

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until connected (after a loss, say); False on timeout or failure."""
        with self._lock:
            return (
                self._lock.wait_for(
                    lambda: self._connected or self._failure is not None or self._closed, timeout
                )
                and self._connected
            )

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def failure(self) -> BusConnectionError | None:
        """The fatal error that stopped the client, if any."""
        return self._failure

    def stats(self) -> dict[str, int]:
        """Counters since creation, plus `queued` (now waiting) and `connected` (0/1)."""
        out = self._counters.snapshot()
        with self._lock:
            out["queued"] = len(self._outbox)
            out["connected"] = int(self._connected)
        out["held"] = self._dispatcher.held
        return out

    # --- start and stop ---------------------------------------------------------------

    def _configure(self, client: mqtt.Client) -> None:
        settings = self.settings
        client.enable_logger(capture_logger(settings.client_id, self._on_socket_error))
        client.suppress_exceptions = True  # a bug in a callback must not end the network thread
        client.connect_timeout = settings.connect_timeout
        client.max_inflight_messages_set(settings.max_inflight)
        client.max_queued_messages_set(settings.queue_size)
        client.reconnect_delay_set(settings.min_delay, settings.max_delay)  # type: ignore[arg-type]
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(self._ssl_context())
        client.on_socket_open = no_delay
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _ssl_context(self) -> Any:
        try:
            return self.settings.ssl_context()
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load the TLS files: {exc}") from None

    def _start(self) -> None:
        settings = self.settings
        self._failure = self._last_error = None
        self._attempt = 0
        self._started = True
        properties = None
        clean_start: Any = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self._v5:
            clean_start = not settings.persistent_session
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = (
                settings.session_expiry if settings.persistent_session else 0
            )
        self._client.connect_async(
            settings.host, settings.port, settings.keepalive,
            clean_start=clean_start, properties=properties,
        )  # fmt: skip
        self._client.loop_start()

    def _stop_network(self) -> None:
        """Disconnect and join paho's thread; never under the lock (callbacks take it)."""
        with self._lock:
            self._started = self._connected = False
        self._client.disconnect()
        self._client.loop_stop()

    def _unreachable(self, timeout: float | None) -> BusConnectionError:
        last = self._last_error.message if self._last_error else "no answer"
        return BrokerUnreachableError(
            f"broker `{self.settings.address}` not connected within {timeout} s: {last}"
        )

    def _fail(self, error: BusConnectionError) -> None:
        """A fatal failure, seen on paho's thread: stop retrying, keep the error."""
        with self._lock:
            self._failure = error
            self._connected = False
            self._lock.notify_all()
        log.error("%s (%s); not retrying", error.message, error.code)
        self._client.disconnect()
        self._client.loop_stop()

    def _schedule_retry(self) -> None:
        """Set paho's next reconnect delay: exponential back-off, upper-half jitter."""
        base = min(self.settings.max_delay, self.settings.min_delay * 2 ** min(self._attempt, 30))
        delay = base / 2 + self._rng.uniform(0, base / 2)
        self._attempt += 1
        self._client.reconnect_delay_set(delay, delay)

    # --- paho callbacks (paho's network thread) ----------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._counters.bump("connection_attempts")
        self._acked = False
        self._tls_error = None

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            error = refusal(self.settings.address, reason.value, reason.getName())
            if not isinstance(error, BrokerUnreachableError):
                self._fail(error)
                return
            self._last_error = error
            self._schedule_retry()
            return
        self._acked = True
        self._attempt = 0
        self._dispatcher.hold_from_now()  # what the session kept may precede our SUBSCRIBEs
        with self._lock:
            if self._ever:
                self._counters.bump("reconnects")
            self._ever = True
            self._subscribe_mids.clear()
            for number, subscription in self._dispatcher.subscriptions():
                self._send_subscribe(number, subscription)
            self._flush()
            self._connected = True
            self._lock.notify_all()
        present = getattr(flags, "session_present", False)
        log.info("connected to `%s` (session present: %s)", self.settings.address, present)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        exception = sys.exception()
        close_abandoned_sockets(exception)
        error = connect_failure(self.settings.address, exception)
        if isinstance(error, BrokerTlsError):
            self._fail(error)
            return
        self._last_error = error
        log.warning("%s; retrying", error.message)
        self._schedule_retry()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._lock:
            self._connected = False
            if self._failure is not None or not self._started:
                return
        if not self._acked and is_tls_failure(self._tls_error):
            self._fail(connect_failure(self.settings.address, self._tls_error))
            return
        self._last_error = BrokerUnreachableError(f"connection lost ({reason})")
        log.warning("disconnected from `%s` (%s); reconnecting", self.settings.address, reason)
        self._schedule_retry()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._counters.bump("received")
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._counters.bump("malformed")
            return
        properties = received_properties(message.properties) if self._v5 else NO_PROPERTIES
        numbers = getattr(message.properties, "SubscriptionIdentifier", None)
        ack = (message.mid, message.qos) if self._manual_ack and message.qos else None
        self._dispatcher.offer(
            BusMessage(
                topic, bytes(message.payload), message.qos, bool(message.retain), properties
            ),
            tuple(numbers) if numbers else (),
            ack,
        )

    def _acknowledge(self, acks: list[tuple[int, int]]) -> None:
        """Acknowledge handled messages (the handler thread, after a batch)."""
        client = self._client
        for mid, qos in acks:
            client.ack(mid, qos)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any], props: Any
    ) -> None:
        topic_filter = self._subscribe_mids.pop(mid, "?")
        for reason in reasons:
            if reason.is_failure:
                self._counters.bump("subscribe_refused")
                log.error("broker refused the subscription `%s`: %s", topic_filter, reason)

    def _on_socket_error(self, error: BaseException) -> None:
        """A socket error paho logged (the TLS alert of a rejected client certificate)."""
        if is_tls_failure(error):
            self._tls_error = error

    # --- sending (under the lock) -----------------------------------------------------

    def _send(self, item: Pending, *, raising: bool = True) -> None:
        info = self._client.publish(
            item.topic, item.payload, item.qos, item.retain, properties=item.properties
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and item.qos > 0
        ):  # paho keeps QoS 1/2 messages for the next connection itself
            self._counters.bump("published")
        elif info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            self._enqueue(item)
        else:
            self._counters.bump("dropped_full_queue")
            self._dropped.warn(
                "publish on `%s` dropped: %s", item.topic, mqtt.error_string(info.rc)
            )
            if raising and self.settings.queue_policy == "raise":
                raise BusQueueFullError(f"the in-flight window is full; `{item.topic}` not sent")

    def _send_deferred(self) -> None:
        """Hand the handlers' publishes of the last batch to paho (after the dispatcher's
        batch, and at close)."""
        if not self._deferred:
            return
        with self._lock:
            items, self._deferred = self._deferred, []
            for item in items:
                if self._connected:
                    self._send(item, raising=False)
                else:
                    self._enqueue(item, raising=False)

    def _flush(self) -> None:
        """Send what was queued while disconnected, oldest first."""
        for item in self._outbox.take_all():
            self._send(item, raising=False)

    def _enqueue(self, item: Pending, *, raising: bool = True) -> None:
        try:
            dropped = self._outbox.put(item)
        except BusQueueFullError:
            self._counters.bump("dropped_full_queue")
            if raising:
                raise
            return
        if dropped:
            self._counters.bump("dropped_full_queue")

    def _send_subscribe(self, number: int, subscription: Subscription) -> None:
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = number
        result, mid = self._client.subscribe(
            subscription.text, qos=subscription.qos, properties=properties
        )
        if result == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
            self._subscribe_mids[mid] = subscription.text

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError("the MQTT bus is closed")
