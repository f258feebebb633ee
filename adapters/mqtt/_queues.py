"""The two queues of `MqttBus` and its counters.

- `Outbox`: publishes waiting for a connection, bounded. When full, the policy decides:
  `drop_oldest` (default: the freshest measurements and set-points are the useful ones),
  `drop_newest`, or `raise` (`BusQueueFullError`). Every drop is counted.
- `Dispatcher`: received messages waiting for the handler thread, bounded, served by
  ONE worker thread so a slow handler never blocks paho's network loop. When full, the
  newest message is dropped and counted (`dropped_inbound`); blocking instead would stall
  keep-alives and acknowledgements for every subscription. The hand-over is a deque
  (appends and pops are atomic) and the network thread signals the worker only when it
  waits for work: under load the two threads share no lock and no wake-up per message.

Acknowledgements (`ack_after_handling`, on by default): a QoS 1/2 message is
acknowledged to the broker only once its handlers have run (after each batch, in the
order received, with the handlers' publishes handed to paho first), not when paho
reads it. A process killed with messages in its queue has not acknowledged them, so a
persistent session gets them again: at least once, never lost in the queue. A message
dropped because the queue is full, or matched by no subscription, is acknowledged
(and counted), lest it block the broker's in-flight window.

What a persistent session kept: after a (re)connection the broker delivers at once
what it queued while the client was away, often before the process has made its
subscriptions (it connects first, as `open_mqtt_bus` does). For `hold_s` seconds after
each connection a message that matches no subscription is therefore held (bounded by
the inbound queue size, counted `held_early`) and handed to each subscription made
meanwhile that matches it; what nobody claimed when the window closes is dropped and
counted `unmatched`.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pbgm.bus import BusMessage, BusQueueFullError, Subscription, deliver

log = logging.getLogger("adapters.mqtt")

COUNTERS = (
    "received",
    "published",
    "dropped_full_queue",
    "dropped_inbound",
    "handler_errors",
    "malformed",
    "unmatched",
    "reconnects",
    "connection_attempts",
    "subscribe_refused",
    "held_early",
    "routed_by_filter",
)
_CACHE_LIMIT = 4096
BATCH = 32
WARN_EVERY_S = 10.0
_NO_NUMBERS: tuple[int, ...] = ()
MAX_SUBSCRIPTION_ID = 268435455
_LOGGED_TOPICS_LIMIT = 256
_ALIAS_LIMIT = 4096
HOLD_S = 10.0


class Counters:
    """Thread-safe named counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTERS, 0)

    def bump(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class Throttle:
    """Warnings of one kind at most every `WARN_EVERY_S` seconds; the rest at debug level."""

    def __init__(self) -> None:
        self._quiet_until = 0.0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            log.debug(message, *args)
            return
        self._quiet_until = now + WARN_EVERY_S
        log.warning(f"{message} (more within {WARN_EVERY_S:g} s: counted, not logged)", *args)


@dataclass(frozen=True, slots=True)
class Pending:
    """A publish waiting for the connection (`properties` already in paho's form)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Any


class Outbox:
    """A bounded FIFO of pending publishes with a drop policy; not thread-safe by itself
    (the bus holds its publish lock around it)."""

    def __init__(self, size: int, policy: str) -> None:
        self._items: deque[Pending] = deque()
        self._size = size
        self._policy = policy

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Pending) -> int:
        """Queue `item`; returns how many messages were dropped (0 or 1)."""
        if len(self._items) < self._size:
            self._items.append(item)
            return 0
        if self._policy == "raise":
            raise BusQueueFullError(
                f"the publish queue is full ({self._size} messages) while disconnected; "
                f"`{item.topic}` not sent"
            )
        if self._policy == "drop_oldest":
            self._items.popleft()
            self._items.append(item)
        return 1

    def take_all(self) -> list[Pending]:
        items = list(self._items)
        self._items.clear()
        return items


_STOP = object()


@dataclass(frozen=True, slots=True)
class _Replay:
    """Worker item: hand the held messages to a subscription just made."""

    subscription: Subscription


class _Held:
    __slots__ = ("claimed", "message", "numbers")

    def __init__(self, message: BusMessage, numbers: tuple[int, ...]) -> None:
        self.message, self.numbers, self.claimed = message, numbers, False


def subscription_number(topic_filter: str) -> int:
    """The MQTT 5 subscription identifier of a filter: the same in every run, so the
    messages a persistent session queued under an earlier run's identifiers still
    name the subscription of the same filter."""
    return zlib.crc32(topic_filter.encode("utf-8", "surrogatepass")) % MAX_SUBSCRIPTION_ID + 1


class Dispatcher:
    """Hands received messages to the matching handlers on one worker thread.

    Each subscription gets a number, sent to MQTT 5 brokers as its subscription
    identifier: a v5 broker sends one copy of a message per matching subscription, each
    copy naming its subscription, so each handler gets exactly one. The number is
    derived from the filter (`subscription_number`, the next free one on a collision),
    so a restarted process gives its filters the numbers its persistent session knows.
    A message whose numbers name none of this run's subscriptions (the filter set
    changed) goes by topic filter instead (`routed_by_filter`; an identifier so
    resolved is remembered); the filter must match in any case. Without identifiers
    (MQTT 3.1.1, where the broker sends one copy per client) a message goes to every
    handler whose filter matches its topic.
    """

    def __init__(
        self,
        counters: Counters,
        size: int,
        name: str,
        after_batch: Callable[[], None] | None = None,
        hold_s: float = HOLD_S,
        acknowledge: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self._counters = counters
        self._acknowledge = acknowledge
        self._acks: list[Any] = []
        self._size = size
        self._after_batch = after_batch
        self._hold_s = hold_s
        self._hold_until = 0.0
        self._held: deque[_Held] = deque()
        self._items: deque[Any] = deque()
        self._wake = threading.Event()
        self._waiting = False
        self._full = Throttle()
        self._lock = threading.Lock()
        self._subscriptions: dict[str, tuple[int, Subscription]] = {}
        self._by_id: dict[int, Subscription] = {}
        self._aliases: dict[int, Subscription] = {}
        self._cache: dict[tuple[str, tuple[int, ...]], tuple[tuple[Subscription, ...], bool]] = {}
        self._logged_topics: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # subscriptions -------------------------------------------------------------------

    def add(self, subscription: Subscription) -> int:
        """Register (or replace) the subscription of its filter; returns its number.
        Messages held since the last connection that match it are handed to it."""
        with self._lock:
            self._drop(subscription.text)
            number = subscription_number(subscription.text)
            while number in self._by_id:
                number = number % MAX_SUBSCRIPTION_ID + 1
            self._subscriptions[subscription.text] = (number, subscription)
            self._by_id[number] = subscription
            self._aliases.clear()
            self._cache.clear()
        if self._held:
            self._items.append(_Replay(subscription))
            if self._waiting:
                self._wake.set()
        return number

    def hold_from_now(self) -> None:
        """A connection was made: hold unmatched messages for the next `hold_s` s."""
        self._hold_until = time.monotonic() + self._hold_s

    @property
    def held(self) -> int:
        """Messages held now, waiting for a subscription."""
        return len(self._held)

    def remove(self, topic_filter: str) -> bool:
        with self._lock:
            self._cache.clear()
            return self._drop(topic_filter)

    def _drop(self, topic_filter: str) -> bool:
        entry = self._subscriptions.pop(topic_filter, None)
        if entry is not None:
            self._by_id.pop(entry[0], None)
        return entry is not None

    def subscriptions(self) -> list[tuple[int, Subscription]]:
        with self._lock:
            return list(self._subscriptions.values())

    # the worker ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def ident(self) -> int | None:
        """The worker thread's identifier (handlers run on it)."""
        return self._thread.ident

    def offer(
        self, message: BusMessage, numbers: tuple[int, ...] = _NO_NUMBERS, ack: Any = None
    ) -> None:
        """Queue a received message without blocking; count it if the queue is full.
        `ack` is what to acknowledge once it is handled (None: nothing)."""
        if len(self._items) >= self._size:
            self._counters.bump("dropped_inbound")
            self._full.warn("inbound queue full: message on `%s` dropped", message.topic)
            if ack is not None and self._acknowledge is not None:
                self._acknowledge([ack])
            return
        self._items.append((message, numbers, ack))
        if self._waiting:
            self._wake.set()

    def stop(self, timeout: float) -> None:
        """Let the worker finish what is queued (within `timeout`) and end."""
        if not self._thread.is_alive():
            return
        self._items.append(_STOP)
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("handler thread still busy at close; queued messages dropped")

    def _run(self) -> None:
        items, handled = self._items, 0
        while True:
            try:
                item = items.popleft()
            except IndexError:
                if handled:
                    self._batch_done()
                    handled = 0
                self._wait()
                continue
            if item is _STOP:
                items.clear()
                if handled:
                    self._batch_done()
                self._expire(force=True)
                return
            if isinstance(item, _Replay):
                self._replay(item.subscription)
                continue
            message, numbers, ack = item
            self._dispatch(message, numbers)
            if ack is not None:
                self._acks.append(ack)
            handled += 1
            if handled == BATCH:
                self._batch_done()
                handled = 0

    def _batch_done(self) -> None:
        """The handlers' publishes go to paho, then the batch is acknowledged."""
        try:
            if self._after_batch is not None:
                self._after_batch()
        except Exception:  # the worker must survive a bug here
            log.exception("after a batch of messages")
        if self._acks and self._acknowledge is not None:
            acks, self._acks = self._acks, []
            try:
                self._acknowledge(acks)
            except Exception:
                log.exception("acknowledging a batch of messages")

    def _wait(self) -> None:
        """Sleep until `offer` signals (or the hold window closes while messages are
        held). `_waiting` is set before the queue is looked at again, so a message
        offered in between is either seen here or signalled."""
        self._waiting = True
        self._wake.clear()
        if not self._items:
            if self._held:
                self._wake.wait(max(0.0, self._hold_until - time.monotonic()) + 0.01)
            else:
                self._wake.wait()
        self._waiting = False
        self._expire()

    def _dispatch(self, message: BusMessage, numbers: tuple[int, ...]) -> None:
        known = self._cache.get((message.topic, numbers))
        targets, by_filter = known if known is not None else self._targets(message.topic, numbers)
        if by_filter:
            self._counters.bump("routed_by_filter")
        if not targets:
            self._hold(message, numbers)
            return
        for subscription in targets:
            failure = deliver(message, subscription.handler)
            if failure:
                self._counters.bump(failure)

    def _targets(
        self, topic: str, numbers: tuple[int, ...]
    ) -> tuple[tuple[Subscription, ...], bool]:
        """The subscriptions a message goes to, remembered per topic and numbers (under
        the lock, so a subscription change never leaves a stale answer behind).

        A v5 broker names the subscriptions; a number left in a persistent session by an
        earlier run may name one of ours by chance, so the filter must match too. Without
        numbers, every subscription whose filter matches; so too when the numbers name
        none of ours (returned True then: routed by filter)."""
        with self._lock:
            targets: tuple[Subscription, ...] = ()
            if numbers:
                found = (self._by_id.get(n) or self._aliases.get(n) for n in numbers)
                targets = tuple(s for s in found if s is not None and s.matches(topic))
            by_filter = False
            if not targets:
                subscriptions = self._subscriptions.values()
                targets = tuple(s for _, s in subscriptions if s.matches(topic))
                by_filter = bool(numbers and targets)
                if by_filter and len(targets) == 1 and len(self._aliases) < _ALIAS_LIMIT:
                    self._aliases.update(dict.fromkeys(numbers, targets[0]))
                    by_filter = True
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache = {}
            self._cache[(topic, numbers)] = (targets, by_filter)
            return targets, by_filter

    # held messages (see the module docstring) ----------------------------------------

    def _hold(self, message: BusMessage, numbers: tuple[int, ...]) -> None:
        if time.monotonic() < self._hold_until and len(self._held) < self._size:
            self._held.append(_Held(message, numbers))
            self._counters.bump("held_early")
            return
        self._unmatched(message.topic)

    def _replay(self, subscription: Subscription) -> None:
        """Hand the held messages that match `subscription` to it (once each)."""
        self._expire()
        with self._lock:
            number = self._subscriptions.get(subscription.text, (0, None))[0]
            ours = set(self._by_id)
        for held in list(self._held):
            if not subscription.matches(held.message.topic):
                continue
            named = [n for n in held.numbers if n in ours]
            if named and number not in named:
                continue  # a copy the broker made for another of our subscriptions
            held.claimed = True
            failure = deliver(held.message, subscription.handler)
            if failure:
                self._counters.bump(failure)

    def _expire(self, *, force: bool = False) -> None:
        """Drop the held messages once the window is over; count the unclaimed ones."""
        if not self._held or (not force and time.monotonic() < self._hold_until):
            return
        while self._held:
            held = self._held.popleft()
            if not held.claimed:
                self._unmatched(held.message.topic)

    def _unmatched(self, topic: str) -> None:
        self._counters.bump("unmatched")
        if topic in self._logged_topics or len(self._logged_topics) >= _LOGGED_TOPICS_LIMIT:
            log.debug("message on `%s` matches no subscription", topic)
            return
        self._logged_topics.add(topic)
        log.warning("message on `%s` matches no subscription; ignored", topic)
