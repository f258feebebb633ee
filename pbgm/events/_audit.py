"""Audit entries for bus traffic: throttled per key, bounded in keys, and never lost quietly.

A bus carries thousands of messages a second; one audit row each would drown the audit
log, so `AuditThrottle` lets one entry per key (subject, topic, decision) through per
interval and counts the events it stands for. A publisher chooses topic names, so the
keys are bounded too (`max_keys`): a key whose interval is over is forgotten to make
room (the events it still held go to its overflow entry), and while every kept key is
within its interval a new key's events are counted under the caller's overflow key (one
entry per interval for "any other topic"). At most `max_keys` + the overflow keys'
entries are written per interval, whatever the topics.

When writing an entry fails the caller gives it back (`failed`): its events are pending
again and the key is due at once, so the next message tries again rather than passing
unaudited for an interval. `audit_object_id` turns a topic of any length into an audit
object id that fits the repository's 255 characters (the topic itself goes to the
details).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._bounded import BoundedMap

MAX_OBJECT_ID = 255
DEFAULT_MAX_KEYS = 10_000
OVERFLOW = ("*",)


@dataclass(frozen=True, slots=True)
class Due:
    """An entry to write now: its key (the overflow key for "other topics") and the
    number of events it stands for."""

    key: Any
    events: int
    overflow: bool = False


class _Entry:
    __slots__ = ("last", "overflow_key", "pending")

    def __init__(self, overflow_key: Any) -> None:
        self.last: float | None = None
        self.pending = 0
        self.overflow_key = overflow_key


class AuditThrottle:
    """At most one audit entry per key per interval, at most `max_keys` keys (see the
    module docstring). Thread-safe."""

    def __init__(
        self,
        interval_s: float,
        clock: Callable[[], float],
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._interval_s, self._clock = interval_s, clock
        self._lock = threading.Lock()
        self._entries: BoundedMap[Any, _Entry] = BoundedMap(max_keys)
        self._overflow: dict[Any, _Entry] = {}
        self.max_keys = max_keys
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._overflow)

    def due(self, key: Any, overflow_key: Any = OVERFLOW) -> Due | None:
        """The entry to write for one more event of `key`, or None within the interval."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self.max_keys and not self._forget_one(now):
                    overflow = self._overflow.setdefault(overflow_key, _Entry(overflow_key))
                    return self._count(overflow_key, overflow, now, overflow=True)
                entry = _Entry(overflow_key)
                self._entries.set(key, entry)
            return self._count(key, entry, now, overflow=False)

    def failed(self, due: Due) -> None:
        """Writing `due` failed: its events are pending again, and the key due at once."""
        with self._lock:
            entry = self._overflow.get(due.key) if due.overflow else self._entries.peek(due.key)
            if entry is not None:
                entry.last = None
                entry.pending += due.events

    def _count(self, key: Any, entry: _Entry, now: float, *, overflow: bool) -> Due | None:
        if entry.last is not None and now < entry.last + self._interval_s:
            entry.pending += 1
            return None
        events, entry.last, entry.pending = entry.pending + 1, now, 0
        return Due(key, events, overflow)

    def _forget_one(self, now: float) -> bool:
        """Make room by forgetting the least recently used key if its interval is over."""
        oldest = self._entries.oldest()
        if oldest is None:
            return True
        key, entry = oldest
        if entry.last is not None and now < entry.last + self._interval_s:
            return False
        self._entries.pop(key)
        self.forgotten += 1
        if entry.pending:
            spill = self._overflow.setdefault(entry.overflow_key, _Entry(entry.overflow_key))
            spill.pending += entry.pending
        return True


def audit_object_id(topic: str) -> str:
    """`topic` as an audit object id: itself when it fits, else its start and a digest."""
    if len(topic) <= MAX_OBJECT_ID:
        return topic
    digest = hashlib.sha256(topic.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{topic[: MAX_OBJECT_ID - 20]}...#{digest}"
