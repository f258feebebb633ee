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
"""

from __future__ import annotations

import logging
import random
import threading
import time
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
)
_CACHE_LIMIT = 4096
BATCH = 32
WARN_EVERY_S = 10.0
_NO_NUMBERS: tuple[int, ...] = ()
MAX_SUBSCRIPTION_ID = 268435455
_LOGGED_TOPICS_LIMIT = 256


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


class Dispatcher:
    """Hands received messages to the matching handlers on one worker thread.

    Each subscription gets a number, sent to MQTT 5 brokers as its subscription
    identifier: a v5 broker sends one copy of a message per matching subscription, each
    copy naming its subscription, so each handler gets exactly one. Numbers start at a
    random point, so those a persistent session kept from an earlier run rarely collide
    with the new ones (a collision is caught by matching the filter too). Without identifiers
    (MQTT 3.1.1, where the broker sends one copy per client) a message goes to every
    handler whose filter matches its topic.
    """

    def __init__(
        self,
        counters: Counters,
        size: int,
        name: str,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self._counters = counters
        self._size = size
        self._after_batch = after_batch
        self._items: deque[Any] = deque()
        self._wake = threading.Event()
        self._waiting = False
        self._full = Throttle()
        self._lock = threading.Lock()
        self._subscriptions: dict[str, tuple[int, Subscription]] = {}
        self._by_id: dict[int, Subscription] = {}
        self._next_id = random.randint(1, MAX_SUBSCRIPTION_ID)  # unlikely to meet old runs
        self._cache: dict[tuple[str, tuple[int, ...]], tuple[Subscription, ...]] = {}
        self._logged_topics: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # subscriptions -------------------------------------------------------------------

    def add(self, subscription: Subscription) -> int:
        """Register (or replace) the subscription of its filter; returns its number."""
        with self._lock:
            self._drop(subscription.text)
            number, self._next_id = self._next_id, self._next_id % MAX_SUBSCRIPTION_ID + 1
            self._subscriptions[subscription.text] = (number, subscription)
            self._by_id[number] = subscription
            self._cache.clear()
            return number

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

    def offer(self, message: BusMessage, numbers: tuple[int, ...] = _NO_NUMBERS) -> None:
        """Queue a received message without blocking; count it if the queue is full."""
        if len(self._items) >= self._size:
            self._counters.bump("dropped_inbound")
            self._full.warn("inbound queue full: message on `%s` dropped", message.topic)
            return
        self._items.append((message, numbers))
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
                return
            self._dispatch(*item)
            handled += 1
            if handled == BATCH:
                self._batch_done()
                handled = 0

    def _batch_done(self) -> None:
        if self._after_batch is None:
            return
        try:
            self._after_batch()
        except Exception:  # the worker must survive a bug here
            log.exception("after a batch of messages")

    def _wait(self) -> None:
        """Sleep until `offer` signals. `_waiting` is set before the queue is looked at
        again, so a message offered in between is either seen here or signalled."""
        self._waiting = True
        self._wake.clear()
        if not self._items:
            self._wake.wait()
        self._waiting = False

    def _dispatch(self, message: BusMessage, numbers: tuple[int, ...]) -> None:
        targets = self._cache.get((message.topic, numbers))
        if targets is None:
            targets = self._targets(message.topic, numbers)
        if not targets:
            self._unmatched(message.topic)
            return
        for subscription in targets:
            failure = deliver(message, subscription.handler)
            if failure:
                self._counters.bump(failure)

    def _targets(self, topic: str, numbers: tuple[int, ...]) -> tuple[Subscription, ...]:
        """The subscriptions a message goes to, remembered per topic and numbers (under
        the lock, so a subscription change never leaves a stale answer behind).

        A v5 broker names the subscriptions; a number left in a persistent session by an
        earlier run may name one of ours by chance, so the filter must match too. Without
        numbers, every subscription whose filter matches."""
        with self._lock:
            if numbers:
                found = (self._by_id.get(n) for n in numbers)
                targets = tuple(s for s in found if s is not None and s.matches(topic))
            else:
                subscriptions = self._subscriptions.values()
                targets = tuple(s for _, s in subscriptions if s.matches(topic))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache = {}
            self._cache[(topic, numbers)] = targets
            return targets

    def _unmatched(self, topic: str) -> None:
        self._counters.bump("unmatched")
        if topic in self._logged_topics or len(self._logged_topics) >= _LOGGED_TOPICS_LIMIT:
            log.debug("message on `%s` matches no subscription", topic)
            return
        self._logged_topics.add(topic)
        log.warning("message on `%s` matches no subscription; ignored", topic)
