"""`PolicyLoader`: keeps a service's policies current, validated, and available offline.

Runs in a background thread (`start()`, `stop()`), or on demand (`refresh_now()`).

- **Poll**: every policy is fetched with `If-None-Match` at the refresh interval,
  with jitter so that a fleet of services does not poll in step. `304` confirms
  the copy held (its age restarts); `200` brings a new one.
- **Push**: with a bus and a notifications topic, a change notice
  (`{"revision", "policy_ids", "policy_groups", "asset_ids"}`, published by the
  server after each administrative change) wakes the loader to refresh the
  policies it names at once; a notice naming nothing refreshes every policy. A
  notice whose `previous` revision (where its change started) is beyond the highest
  revision of the notices heard so far shows a gap: a notice lost, or a change made
  beside the API (the CLI), so every policy is refreshed then too.
  Polling stays as the fallback. The bus handler only records the names: no HTTP
  on the bus thread.
- **Validate before delivering**: a new document must pass
  `pbgm.policy.validate.validate_policy_document` and be the policy that was asked for;
  otherwise it is refused (logged once per content, counted) and the last good
  copy stays in force.
- **Last good copy**: each accepted copy is written to the disk cache; at start
  the cached copies are delivered at once (`source="cache"`), so a service has its
  policies even when pbgm cannot be reached, and the age of what it holds is
  reported (`status()`, `get()`).
- **Backoff**: when the server is unreachable (or refuses the credentials) the
  whole cycle stops and is retried after an exponentially growing, jittered delay
  up to `backoff_max_s`; never a tight loop. Push notices do not shorten it.

Sinks: a callback named in `deliver_to` receives a `LoadedPolicy` on the loader's
thread (keep it quick; an exception is logged and counted, and the delivery is
retried on the next cycle); an `mqtt_topic` receives the `LoadedPolicy` as JSON,
retained by default, through the bus. A sink is called when the content it holds
changes, not on every poll.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pbgm.bus import Bus, BusMessage
from pbgm.errors import AuthenticationError, ConfigurationError, InvalidInputError, PbgmError
from pbgm.loader._cache import DiskCache, GoodCopy
from pbgm.loader._client import Fetched, PolicyClient, ServerUnavailableError
from pbgm.loader._config import Delivery, LoaderConfig, PolicySpec, validated_config
from pbgm.loader._slot import LoadedPolicy, PolicyState, Slot, accept
from pbgm.model import Clock, utc_now
from pbgm.policy import load_document

log = logging.getLogger("pbgm.loader")

Sink = Callable[[LoadedPolicy], None]
MAX_NOTICE_BYTES = 65_536


class PolicyLoader:
    """Fetches, validates, caches and delivers the policies named in a `LoaderConfig`.

    The configuration is checked first (`validated_config`), whether it was read from a
    file or made in code: a bad one is a `LoaderConfigError` here, not a failure later
    in the polling thread. `config` is the configuration as read.
    """

    def __init__(
        self,
        config: LoaderConfig,
        *,
        sinks: Mapping[str, Sink] | None = None,
        bus: Bus | None = None,
        clock: Clock = utc_now,
        client: PolicyClient | None = None,
    ) -> None:
        self.config = config = validated_config(config)
        self._sinks = dict(sinks or {})
        self._bus = bus
        self._clock = clock
        self._client = client or PolicyClient(config, clock=clock)
        self._cache = DiskCache(config.cache_dir)
        self._slots = {spec.name: Slot(spec) for spec in config.policies}
        self._check_sinks()
        self._cycle_lock = threading.RLock()  # one refresh cycle at a time
        self._state = threading.RLock()  # the slots; held briefly, never across I/O
        self._pending: set[str] = set()
        self._heard: int | None = None  # the highest revision of a notice heard
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache_loaded = False
        self._failures = 0
        self._retry_at = 0.0

    def _check_sinks(self) -> None:
        for spec in self.config.policies:
            target = spec.deliver_to
            if target is None:
                continue
            if target.callback is not None and target.callback not in self._sinks:
                raise ConfigurationError(
                    f"policy `{spec.name}` is delivered to `{target.callback}`, "
                    "which is not a callback given to the loader"
                )
            if target.mqtt_topic is not None and self._bus is None:
                raise ConfigurationError(
                    f"policy `{spec.name}` is delivered on a bus topic but no bus was given"
                )
        if self.config.notifications_topic and self._bus is None:
            raise ConfigurationError("change notifications need a bus: configure `bus`")

    # --- public API -------------------------------------------------------------------

    def start(self) -> None:
        """Deliver the cached copies, subscribe to change notices, start polling."""
        if self._thread is not None:
            raise ConfigurationError("the loader is already started")
        self.load_cache()
        if self._bus is not None and self.config.notifications_topic:
            self._bus.subscribe(self.config.notifications_topic, self._on_notice, qos=1)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="pbgm-loader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and listening; the bus itself is left open (it is the caller's)."""
        if self._bus is not None and self.config.notifications_topic:
            try:
                self._bus.unsubscribe(self.config.notifications_topic)
            except PbgmError as error:
                log.warning("cannot unsubscribe from change notices: %s", error.message)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> PolicyLoader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refresh_now(self, names: Iterable[str] | None = None) -> dict[str, PolicyState]:
        """Fetch the named policies (default all) now, whatever the schedule; their states."""
        chosen = list(self._slots) if names is None else list(names)
        unknown = [n for n in chosen if n not in self._slots]
        if unknown:
            raise InvalidInputError(f"no policy named `{unknown[0]}` in the configuration")
        with self._cycle_lock:
            self.load_cache()
            self._refresh(chosen)
        return self.status()

    def get(self, name: str) -> LoadedPolicy | None:
        """The copy in force for `name` (with its age now), or None if there is none.

        Never waits for a fetch in progress: a service may call it in its control loop.
        """
        with self._state:
            return self._slots[name].loaded(self._clock())

    def status(self) -> dict[str, PolicyState]:
        """Per policy: state, source, version, age, last error and counters."""
        with self._state:
            now = self._clock()
            return {name: slot.state_at(now) for name, slot in self._slots.items()}

    def load_cache(self) -> None:
        """Take the cached copies (once) and deliver them; done by `start()` itself."""
        with self._cycle_lock:
            if self._cache_loaded:
                return
            self._cache_loaded = True
            for slot in self._slots.values():
                copy = self._cache.read(slot.spec)
                if copy is None:
                    continue
                with self._state:
                    if slot.good is not None:
                        continue
                    slot.good = copy
                log.info("policy `%s`: version %s from the cache", slot.spec.name, copy.version)
                self._deliver(slot)

    # --- the background thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._cycle()
            except Exception:  # a bug must not silently end the loader: log, back off, go on
                log.exception("loader cycle failed")
                self._retry_at = time.monotonic() + self.config.backoff_max_s
            self._wake.wait(self._sleep_time())
            self._wake.clear()

    def _cycle(self) -> None:
        now = time.monotonic()
        with self._pending_lock:
            pushed, self._pending = self._pending, set()
        if now < self._retry_at:
            with self._pending_lock:
                self._pending |= pushed  # kept for when the backoff ends
            return
        with self._state:
            due = [n for n, slot in self._slots.items() if slot.due_at <= now or n in pushed]
        if due:
            with self._cycle_lock:
                self._refresh(due)

    def _sleep_time(self) -> float:
        now = time.monotonic()
        with self._state:
            wake_at = min((slot.due_at for slot in self._slots.values()), default=now + 60)
        return max(0.05, max(wake_at, self._retry_at) - now)

    def _on_notice(self, message: BusMessage) -> None:
        try:
            notice = load_document(
                message.payload, source="change notice", max_bytes=MAX_NOTICE_BYTES
            )
        except PbgmError as error:
            raise InvalidInputError(error.message, code="malformed_payload") from None
        if not isinstance(notice, dict):
            raise InvalidInputError("a change notice must be an object", code="malformed_payload")
        names = self._affected(notice)
        if self._gap(notice):
            names = set(self._slots)
        log.debug("change notice (revision %s) for %s", notice.get("revision"), sorted(names))
        if names:
            with self._pending_lock:
                self._pending |= names
            self._wake.set()

    def _gap(self, notice: Mapping[str, Any]) -> bool:
        """Whether changes happened between the notices heard so far and this one (module
        docstring); notices of concurrent changes may come out of order, which at worst
        refreshes everything once more."""
        revision, previous = _revision(notice.get("revision")), _revision(notice.get("previous"))
        if revision is None:
            return False
        with self._pending_lock:
            heard, self._heard = self._heard, max(self._heard or 0, revision)
        if heard is None or previous is None or previous <= heard:
            return False
        log.info(
            "change notices missed (revisions %d to %d): refreshing every policy",
            heard + 1, previous,
        )  # fmt: skip
        return True

    def _affected(self, notice: Mapping[str, Any]) -> set[str]:
        named = {key: _strings(notice.get(key)) for key in ("policy_ids", "policy_groups")}
        named["asset_ids"] = _strings(notice.get("asset_ids"))
        if not any(named.values()):
            return set(self._slots)
        return {name for name, slot in self._slots.items() if slot.named_by(**named)}

    # --- one refresh cycle ---------------------------------------------------------------

    def _refresh(self, names: list[str]) -> None:
        for index, name in enumerate(names):
            slot = self._slots[name]
            try:
                self._refresh_one(slot)
            except (ServerUnavailableError, AuthenticationError) as error:
                self._back_off(error, [self._slots[n] for n in names[index:]])
                return
        self._failures = 0
        self._retry_at = 0.0

    def _refresh_one(self, slot: Slot) -> None:
        now = self._clock()
        with self._state:
            slot.attempted(now)
            held = slot.good.etag if slot.good is not None else None
        try:
            fetched = self._client.fetch(slot.spec, held)
        except (ServerUnavailableError, AuthenticationError):
            raise
        except PbgmError as error:
            with self._state:
                slot.failed(error, "failed")
                self._schedule(slot)
            log.warning("policy `%s`: %s (%s)", slot.spec.name, error.message, error.code)
            return
        with self._state:
            self._schedule(slot)
            kept = self._take(slot, fetched, now)
        if kept is not None:
            self._cache.write(slot.spec, kept)
        self._deliver(slot)  # a new copy, or one whose delivery failed before

    def _take(self, slot: Slot, fetched: Fetched, now: datetime) -> GoodCopy | None:
        """Record what the server answered; the copy to write to the cache, if any."""
        if fetched.not_modified and slot.good is not None:
            slot.not_modified(now)
            return slot.good
        try:
            copy = accept(slot.spec, fetched, now)
        except PbgmError as error:
            self._reject(slot, error, fetched.etag)
            return None
        before = slot.good
        slot.accepted(copy)
        if before is None or before.etag != copy.etag:
            old = before.version if before is not None else "none"
            log.info("policy `%s` changed: version %s -> %s", slot.spec.name, old, copy.version)
        return copy

    def _reject(self, slot: Slot, error: PbgmError, etag: str | None) -> None:
        first_time = slot.rejected(error, etag)
        if first_time:
            log.warning(
                "policy `%s`: update refused, keeping version %s: %s",
                slot.spec.name,
                slot.good.version if slot.good is not None else "none",
                error.message,
            )

    def _schedule(self, slot: Slot) -> None:
        spread = 1 + random.uniform(-self.config.jitter, self.config.jitter)
        slot.due_at = time.monotonic() + self.config.refresh_interval_s * spread

    def _back_off(self, error: PbgmError, slots: list[Slot]) -> None:
        self._failures += 1
        base = self.config.backoff_initial_s * 2 ** min(self._failures - 1, 30)
        delay = min(self.config.backoff_max_s, base) * random.uniform(0.5, 1.0)
        delay = max(delay, min(0.1, self.config.backoff_initial_s))
        self._retry_at = time.monotonic() + delay
        with self._state:
            for slot in slots:
                slot.failed(error, "unreachable")
                slot.due_at = self._retry_at
            held = [s.spec.name for s in self._slots.values() if s.good is not None]
            empty = [s.spec.name for s in self._slots.values() if s.good is None]
        log.warning(
            "pbgm server unusable (%s: %s); %s; retry in %.1f s",
            error.code,
            error.message,
            _serving(held, empty),
            delay,
        )

    # --- delivery -----------------------------------------------------------------------

    def _deliver(self, slot: Slot) -> None:
        """Hand the copy in force to the sink, unless it already has it; sinks run unlocked."""
        with self._state:
            if slot.good is None or slot.delivered_etag == slot.good.etag:
                return
            loaded, etag = slot.loaded(self._clock()), slot.good.etag
        target = slot.spec.deliver_to
        if target is not None and loaded is not None:
            try:
                self._send(target, loaded)
            except Exception:
                with self._state:
                    slot.count("delivery_errors")
                log.exception("policy `%s`: delivery failed, retried next cycle", slot.spec.name)
                return
            with self._state:
                slot.count("delivered")
        with self._state:
            slot.delivered_etag = etag

    def _send(self, target: Delivery, loaded: LoadedPolicy) -> None:
        if target.callback is not None:
            self._sinks[target.callback](loaded)
        if target.mqtt_topic is not None:
            assert self._bus is not None
            payload = loaded.to_json()
            self._bus.publish(target.mqtt_topic, payload, qos=target.qos, retain=target.retain)


def _serving(held: list[str], empty: list[str]) -> str:
    """What a service has meanwhile: the cached copies, and those it lacks."""
    parts = []
    if held:
        parts.append("serving the cached copies of " + ", ".join(f"`{n}`" for n in held))
    for name in empty:
        parts.append(f"no copy of `{name}` to serve (nothing usable in the cache)")
    return "; ".join(parts)


def _strings(value: Any) -> set[str]:
    if not isinstance(value, list):
        return set()
    return {item for item in value if isinstance(item, str)}


def _revision(value: Any) -> int | None:
    """A notice's revision number, or None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


__all__ = ["LoadedPolicy", "PolicyLoader", "PolicySpec", "PolicyState", "Sink"]
