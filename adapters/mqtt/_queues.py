"""The two queues of `MqttBus` and its counters.

- `Outbox`: publishes waiting for a connection, bounded. When full, the policy decides:
  `drop_oldest` (default: the freshest measurements and set-points are the useful ones),
  `drop_newest`, or `raise` (`BusQueueFullError`). Every drop is counted.
- `Dispatcher`: received messages waiting for the handler thread, bounded, served by
  ONE worker thread so a slow handler never blocks paho's network loop. When full, the
  newest message is dropped and counted (`dropped_inbound`); blocking instead would stall
  keep-alives and acknowledgements for every subscription.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections import deque
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

    def __init__(self, counters: Counters, size: int, name: str) -> None:
        self._counters = counters
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self._subscriptions: dict[str, tuple[int, Subscription]] = {}
        self._by_id: dict[int, Subscription] = {}
        self._next_id = random.randint(1, MAX_SUBSCRIPTION_ID)  # unlikely to meet old runs
        self._cache: dict[str, tuple[Subscription, ...]] = {}
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

    def offer(self, message: BusMessage, numbers: tuple[int, ...] = ()) -> None:
        """Queue a received message without blocking; count it if the queue is full."""
        try:
            self._queue.put_nowait((message, numbers))
        except queue.Full:
            self._counters.bump("dropped_inbound")
            log.warning("inbound queue full: message on `%s` dropped", message.topic)

    def stop(self, timeout: float) -> None:
        """Let the worker finish what is queued (within `timeout`) and end."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("handler thread still busy at close; queued messages dropped")
            return
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._dispatch(*item)

    def _dispatch(self, message: BusMessage, numbers: tuple[int, ...]) -> None:
        if numbers:
            targets = self._by_number(numbers, message.topic)
        else:
            targets = self._by_topic(message.topic)
        if not targets:
            self._unmatched(message.topic)
            return
        for subscription in targets:
            failure = deliver(message, subscription.handler)
            if failure:
                self._counters.bump(failure)

    def _by_number(self, numbers: tuple[int, ...], topic: str) -> tuple[Subscription, ...]:
        """The subscriptions a v5 broker named; a number left in a persistent session by
        an earlier run may name one of ours by chance, so the filter must match too."""
        with self._lock:
            found = (self._by_id.get(n) for n in numbers)
            return tuple(s for s in found if s is not None and s.matches(topic))

    def _by_topic(self, topic: str) -> tuple[Subscription, ...]:
        with self._lock:
            cached = self._cache.get(topic)
            if cached is None:
                subscriptions = self._subscriptions.values()
                cached = tuple(s for _, s in subscriptions if s.matches(topic))
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[topic] = cached
            return cached

    def _unmatched(self, topic: str) -> None:
        self._counters.bump("unmatched")
        if topic in self._logged_topics or len(self._logged_topics) >= _LOGGED_TOPICS_LIMIT:
            log.debug("message on `%s` matches no subscription", topic)
            return
        self._logged_topics.add(topic)
        log.warning("message on `%s` matches no subscription; ignored", topic)
