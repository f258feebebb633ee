"""Bounded state: a least-recently-used map, so no table grows with what the bus sends.

Every table the event service and the relay keep per topic, device, subject or key is
fed by messages, and a publisher chooses those names: 124,000 distinct topics once took
an unbounded table from 60 to 575 MB in 30 s. `BoundedMap` keeps at most `limit`
entries; using an entry (`get`, `set`) makes it the most recent, and adding one to a
full map evicts the least recently used, which is counted (`evicted`) so that a flood
shows in the service's counters rather than in its memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """At most `limit` entries, least recently used evicted first; not thread-safe (the
    owner holds its own lock). `on_evict(key, value)` is told of each eviction."""

    __slots__ = ("_items", "evicted", "limit", "on_evict")

    def __init__(self, limit: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("a bounded map holds at least one entry")
        self.limit = limit
        self.on_evict = on_evict
        self.evicted = 0
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._items))

    def get(self, key: K) -> V | None:
        """The value of `key` (now the most recent), or None."""
        items = self._items
        value = items.get(key)
        if value is not None:
            items.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The value of `key` without making it recent."""
        return self._items.get(key)

    def set(self, key: K, value: V) -> None:
        items = self._items
        items[key] = value
        items.move_to_end(key)
        while len(items) > self.limit:
            old_key, old_value = items.popitem(last=False)
            self.evicted += 1
            if self.on_evict is not None:
                self.on_evict(old_key, old_value)

    def setdefault(self, key: K, build: Callable[[], V]) -> V:
        """The value of `key`, built and added (evicting if full) when absent."""
        value = self.get(key)
        if value is None:
            value = build()
            self.set(key, value)
        return value

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def oldest(self) -> tuple[K, V] | None:
        """The least recently used entry, left in place."""
        for key, value in self._items.items():
            return key, value
        return None

    def items(self) -> list[tuple[K, V]]:
        return list(self._items.items())

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()
