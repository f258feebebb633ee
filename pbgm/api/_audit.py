"""The decision log: every decision the API serves, recorded in the audit log.

One entry per call to `POST /api/v1/decisions` (`action` `decision`, `actor` the
caller, `object_type` `decision`, `object_id` the first request's `resource.id`
or `request`), with each request (masked), its decision, status, deciding
policies, obligation and advice ids. Time is the store's (when the entry is written).

Off the request path: `record` only puts the call on a bounded queue; one background
thread per process (`LogWriter`) lets calls gather for `LINGER_S` (50 ms; less when
`BATCH` are waiting), takes up to `BATCH`, builds their entries and writes them in one
transaction (`Store.record_audit_batch`), again and again.
- What a crash can lose: the calls queued and the batch being written, at most
  `capacity + min(BATCH, capacity)` calls (10,000 + 500 by default); in practice what
  arrived during the last 50 ms and the write under way.
- Nothing is lost on a clean stop (SIGTERM to `pbgm serve`): `close` (run at exit)
  writes everything queued before the process ends.
- A slow or stalled database never grows memory without bound: when the queue is
  full, a new call is dropped and counted (`pbgm_decision_log_dropped_total`), and
  logged once per episode; the decision itself is still answered. A batch the store
  refuses is retried with a growing delay, and dropped (counted) after `RETRIES` tries.
- Metrics: queue depth, batch sizes, entries written, dropped.

Masking (`PBGM_AUDIT_MASK=subject.*,resource.location`): the value of each listed
attribute, or of every attribute of a category given as `<category>.*`, is
replaced by `***`; the attribute names stay, so the log still tells what was
asked. Administrative changes are audited by the store itself, in the same
transaction as the change.

Bounds (`bounded_entries`, a pure function a background writer can call too):
each request is kept up to `max_request` bytes of JSON (`PBGM_AUDIT_MAX_REQUEST`,
default 2048); a longer one is shortened, first by cutting texts to
`MAX_TEXT_CHARS` characters and bags to `MAX_BAG_ITEMS` items, then to its
attribute names alone, then to nothing, and the entry says so:
`"request_truncated": true` and `"request_bytes"`, the size it had. One call
records at most `MAX_CALL_BYTES` of requests; past that, entries keep their
decision without the request (also marked). The decision, status, deciding
policies, obligation and advice ids are always kept.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pbgm.model import CATEGORIES, Request, Response
from pbgm.pap import plain_json
from pbgm.policy import compact_json, thaw
from pbgm.store.base import AuditItem, Store

log = logging.getLogger(__name__)

MASKED = "***"
CUT = "..."
MAX_OBJECT_ID = 255
MAX_REQUEST_BYTES = 2048
MAX_CALL_BYTES = 65_536
MAX_TEXT_CHARS = 64
MAX_BAG_ITEMS = 8
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _short(value: Any) -> Any:
    """`value` with texts cut to `MAX_TEXT_CHARS` and lists to `MAX_BAG_ITEMS` items."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS] + CUT
    if isinstance(value, list):
        items = [_short(v) for v in value[:MAX_BAG_ITEMS]]
        return [*items, CUT] if len(value) > MAX_BAG_ITEMS else items
    if isinstance(value, dict):
        kept = list(value.items())[:MAX_BAG_ITEMS]
        return {_short(k): _short(v) for k, v in kept}
    return value


def _names_only(request: Mapping[str, Any]) -> dict[str, Any]:
    return {
        category: {_short(name): CUT for name in list(bag)[:MAX_BAG_ITEMS]}
        for category, bag in request.items()
        if isinstance(bag, Mapping)
    }


def bounded_request(request: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], int | None]:
    """`request` if its JSON fits in `max_bytes`, else a shorter form of it and the size
    it had (the caller marks the entry)."""
    kept, size, _ = _bounded(request, max_bytes)
    return kept, size


def _bounded(request: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], int | None, int]:
    """`bounded_request`, and the size of what is kept."""
    size = _size(request)
    if size <= max_bytes:
        return request, None, size
    for shorten in (_short, _names_only):
        shorter = shorten(request)
        shorter_size = _size(shorter)
        if shorter_size <= max_bytes:
            return shorter, size, shorter_size
    return {}, size, 2


def bounded_entries(
    entries: Sequence[dict[str, Any]],
    *,
    max_request: int = MAX_REQUEST_BYTES,
    max_call: int = MAX_CALL_BYTES,
) -> list[dict[str, Any]]:
    """The decision entries of one call with their requests bounded (module docstring)."""
    bounded, spent = [], 0
    for entry in entries:
        request, size, length = _bounded(entry.get("request", {}), max_request)
        if spent + length > max_call:
            request, size, length = {}, size or length, 2
        spent += length
        kept = {**entry, "request": request}
        if size is not None:
            kept.update(request_truncated=True, request_bytes=size)
        bounded.append(kept)
    return bounded


def _within_bounds(entries: Sequence[dict[str, Any]], max_request: int) -> str | None:
    """The details' JSON text (as a store writes it) when every request is certainly
    within `max_request` bytes and the call within `MAX_CALL_BYTES`, else None
    (`bounded_entries` then measures and cuts). Each entry is encoded once, and its
    text stands for its request's measure: a request is part of its entry, and
    `_size`'s separators (`", "`, `": "`) add at most one character per comma or colon
    of the compact text. The common call, a few small requests, is encoded once here
    instead of once to measure and once to store."""
    texts: list[str] = []
    spent = 0
    for entry in entries:
        try:
            text = compact_json(entry)
        except (TypeError, ValueError, RecursionError):
            return None
        bound = len(text) + text.count(",") + text.count(":")
        spent += bound
        if bound > max_request or spent > MAX_CALL_BYTES:
            return None
        texts.append(text)
    return '{"decisions":[' + ",".join(texts) + "]}"


CAPACITY = 10_000
"""Calls the queue holds before new ones are dropped."""
BATCH = 500
"""Calls written in one transaction at most."""
LINGER_S = 0.05
"""How long the writer lets calls gather before it writes them: fewer, larger
transactions (and no wake-up per call on the request path)."""
DEPTH_EVERY = 64
"""The queue's gauge is set every so many calls queued (and on each batch taken)."""
RETRIES = 5
RETRY_MAX_S = 5.0
CLOSE_TIMEOUT_S = 8.0
"""How long `close` writes at exit: within gunicorn's graceful timeout (10 s)."""

Call = tuple[str, Sequence[Request], Sequence[Response]]


class DecisionLog:
    """Writes decision entries with the configured masking, in the background."""

    def __init__(
        self,
        store: Store,
        mask: Iterable[str] = (),
        *,
        max_request: int = MAX_REQUEST_BYTES,
        capacity: int = CAPACITY,
        metrics: Any = None,
    ) -> None:
        self._store = store
        self._max_request = max_request
        self.writer = LogWriter(self, capacity=capacity, metrics=metrics)
        self._whole: set[str] = set()
        self._names: set[tuple[str, str]] = set()
        for pattern in mask:
            category, _, name = pattern.partition(".")
            if name == "*":
                self._whole.add(category)
            else:
                self._names.add((category, name))

    def masked(self, request: Request) -> dict[str, Any]:
        """The request as JSON data with the masked values replaced."""
        return {c: self._category(c, request.bag(c)) for c in CATEGORIES if request.bag(c)}

    def _category(self, category: str, bag: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: MASKED
            if category in self._whole or (category, name) in self._names
            else value
            if value.__class__ in _SCALARS
            else plain_json(thaw(value))
            for name, value in bag.items()
        }

    def record(
        self, actor: str, requests: Sequence[Request], responses: Sequence[Response]
    ) -> None:
        """Queue the call for the writer (requests and responses are immutable)."""
        self.writer.put((actor, requests, responses))

    def item(
        self, actor: str, requests: Sequence[Request], responses: Sequence[Response]
    ) -> AuditItem:
        """The audit entry of one call, its requests bounded (`bounded_entries`)."""
        entries = [self._entry(q, r) for q, r in zip(requests, responses, strict=True)]
        text = _within_bounds(entries, self._max_request)
        if text is None:
            entries = bounded_entries(entries, max_request=self._max_request)
        first = requests[0].resource.get("id") if requests else None
        object_id = (
            first if isinstance(first, str) and 0 < len(first) <= MAX_OBJECT_ID else "request"
        )
        object_id = object_id.replace("\x00", "") or "request"
        return AuditItem(actor, "decision", "decision", object_id, {"decisions": entries}, text)

    def write(self, calls: Sequence[Call]) -> None:
        """Write the entries of `calls` in one transaction."""
        self._store.record_audit_batch([self.item(*call) for call in calls])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every call queued so far is written; whether it was."""
        return self.writer.flush(timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write what is queued and stop the writer."""
        self.writer.close(timeout)

    def _entry(self, request: Request, response: Response) -> dict[str, Any]:
        return {
            "request": self.masked(request),
            "decision": str(response.decision),
            "status": response.status.code,
            "policy_ids": list(response.policy_ids),
            "obligations": [o.id for o in response.obligations],
            "advice": [a.id for a in response.advice],
        }


class LogWriter:
    """The bounded queue of a `DecisionLog` and the one thread that drains it (see the
    module docstring). The thread starts with the first call and ends with `close`, at
    the process's exit, or once nothing refers to the log any more."""

    def __init__(self, sink: DecisionLog, *, capacity: int, metrics: Any = None) -> None:
        self._sink = weakref.ref(sink)
        self.capacity = capacity
        self._queue: deque[Call] = deque()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._queued = self._written = self.dropped = 0
        self._dropping = False
        self._hurry = 0  # flushes waiting: write without lingering
        self._metrics = metrics  # its decision_log_depth is set as the queue moves

    @property
    def depth(self) -> int:
        return len(self._queue)

    def put(self, call: Call) -> None:
        with self._lock:
            if len(self._queue) >= self.capacity or self._closed:
                self._drop(1, "the decision log is full: the database writes too slowly")
                return
            self._dropping = False
            self._queue.append(call)
            self._queued += 1
            if not len(self._queue) % DEPTH_EVERY:
                self._depth()
            if len(self._queue) >= BATCH:
                self._lock.notify()  # a full batch: no need to wait for the next round
            if self._thread is None:
                self._start()

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        if self._metrics is not None:
            self._metrics.decision_log_dropped.inc(count)
        if not self._dropping:
            log.warning("%s; dropping entries (counted in pbgm_decision_log_dropped)", why)
            self._dropping = True

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=_drain, args=(weakref.ref(self),), name="pbgm-decision-log", daemon=True
        )
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def take(self, wait: float = LINGER_S) -> list[Call]:
        """Up to `BATCH` queued calls, after waiting up to `wait` seconds for more to
        gather (unless a batch is full, a flush is asked for, or the log closes)."""
        with self._lock:
            if len(self._queue) < BATCH and not self._closed and not self._hurry:
                self._lock.wait(wait)
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            self._depth()
            return batch

    def _depth(self) -> None:
        """The queue's length to its gauge (a set, not a function of the queue: the gauge
        is shared with the other workers through prometheus-client's files), as the writer
        takes a batch (every `LINGER_S` or sooner), and every `DEPTH_EVERY` calls queued
        (a stalled database shows), not on every call."""
        if self._metrics is not None:
            self._metrics.decision_log_depth.set(len(self._queue))

    def write(self, batch: list[Call]) -> None:
        """Write one batch, retrying a failing store with a growing delay; then count it
        written (or dropped, after `RETRIES` tries)."""
        delay = 0.05
        for attempt in range(1, RETRIES + 1):
            sink = self._sink()
            if sink is None:  # the log is gone: nothing to write to, nobody to wait
                with self._lock:
                    self._written += len(batch)
                    self._lock.notify_all()
                return
            try:
                sink.write(batch)
                break
            except Exception:
                log.warning(
                    "cannot write %d decision log entries (try %d)",
                    len(batch),
                    attempt,
                    exc_info=attempt == 1,
                )
                if attempt == RETRIES or self._closed:
                    with self._lock:
                        self._drop(len(batch), "the decision log cannot be written")
                        self._written += len(batch)
                        self._lock.notify_all()
                    return
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_S)
        if self._metrics is not None:
            self._metrics.decision_log_batch.observe(len(batch))
            self._metrics.decision_log_written.inc(len(batch))
        with self._lock:
            self._written += len(batch)
            self._lock.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._queued
            self._hurry += 1
            self._lock.notify_all()
            try:
                while self._written < target:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._lock.wait(left)
            finally:
                self._hurry -= 1
        return True

    def close(self, timeout: float) -> None:
        """Write everything queued (at most `timeout` seconds), then stop."""
        flushed = self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if not flushed and self._queue:
            log.warning("%d decision log entries not written at exit", len(self._queue))


def _drain(reference: weakref.ref[LogWriter]) -> None:
    """The writer thread: take a batch, write it, again; it holds its writer only while
    working, so that a log nothing refers to any more ends its thread."""
    while True:
        writer = reference()
        if writer is None:
            return
        batch = writer.take()
        if batch:
            writer.write(batch)
        elif writer._closed:
            return
        del writer


def _close_at_exit(reference: weakref.ref[LogWriter]) -> None:
    writer = reference()
    if writer is not None and writer._sink() is not None:
        writer.close(CLOSE_TIMEOUT_S)
