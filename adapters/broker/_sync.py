"""`BrokerSync`: the broker's access control kept equal to what the repository says.

A thread checks the repository revision every `refresh_s` (0.2 s by default: one cheap
query) and wakes at once on a change notice when a bus and a topic are given (the API
publishes one after each administrative change, `pbgm.api._notify`). When the revision
moved, a policy becomes valid or expires, or `recheck_s` passed (so a broker whose
state was lost or edited by hand is put right), it reads the repository, compiles the
plan (`compile_plan`) and has the broker apply it. A plan equal to the last one applied
is not sent again, except at the periodic recheck, which applies it in any case (the
broker side reads its state first and changes only what differs).

A failed apply (broker unreachable, a command refused) is logged, counted and retried
with a growing delay (up to `recheck_s`); the broker keeps enforcing the last plan it
was given meanwhile, which fails closed for everything that plan did not grant.
Counters: `stats()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters._rules import seconds
from adapters.broker._config import (
    named_grants,
    notices_filter,
    relay_prefix,
    relay_principal,
)
from adapters.broker._control import Applied, BrokerAccessControl
from adapters.broker._directory import read_directory
from adapters.broker._plan import AccessPlan, NamedGrants, compile_plan
from pbgm.bus import Bus, BusMessage
from pbgm.errors import ConfigurationError, PbgmError
from pbgm.model import utc_now
from pbgm.store.base import Store

log = logging.getLogger("adapters.broker")

COUNTERS = ("syncs", "plans_applied", "commands", "errors", "conflicts", "notices")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSettings:
    """How the plan is made: each principal's broker password (required:
    `broker_password` under the broker secret), the relay principal and prefix, and
    the grants the settings give by name."""

    password: Callable[[str], str] = field(repr=False)
    relay_principal: str = "pbgm-relay"
    relay_prefix: str = "pbgm/relay/"
    named: Mapping[str, NamedGrants] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Read as the configuration's `relay` and `principals` are (the same functions
        of `adapters.broker._config`), so settings made in code are refused with a
        `ConfigurationError` naming the field, here, rather than made into commands the
        broker refuses (or grants it should not give) at every sync. `named` is kept as
        read (principals as text, topic filters as tuples)."""
        if not callable(self.password):
            raise ConfigurationError("`password` must be a function of the principal's id")
        relay_principal(self.relay_principal, "relay_principal")
        relay_prefix(self.relay_prefix, "relay_prefix")
        named = named_grants(self.named, "named")
        if named != self.named:
            object.__setattr__(self, "named", named)  # frozen: set once, here


class BrokerSync:
    """Keeps a `BrokerAccessControl` equal to the plan of a repository."""

    def __init__(
        self,
        store: Store,
        control: BrokerAccessControl,
        settings: PlanSettings,
        *,
        refresh_s: float = 0.2,
        recheck_s: float = 60.0,
        bus: Bus | None = None,
        notices_topic: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store, self.control, self.settings = store, control, settings
        self.refresh_s, self.recheck_s = (
            seconds(refresh_s, "refresh_s"),
            seconds(recheck_s, "recheck_s"),
        )
        self.clock = clock
        self._bus = bus
        self._notices_topic = notices_filter(notices_topic, "notices_topic")
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._revision: int | None = None
        self._plan: AccessPlan | None = None
        self._due_at = 0.0  # monotonic: a validity boundary or the periodic recheck
        self._retry_at = 0.0
        self._failures = 0

    # --- running ------------------------------------------------------------------------

    def sync(self, *, force: bool = False) -> Applied | None:
        """Compile and apply now if anything changed (always with `force`); what the
        broker did, or None when nothing had to be sent."""
        now = time.monotonic()
        revision = self.store.revision()
        due = force or revision != self._revision or now >= self._due_at
        if not due:
            return None
        moment = self.clock()
        snapshot = read_directory(self.store, moment)
        plan = self.plan_of(snapshot.directory, moment)
        recheck = force or now >= self._due_at
        self._bump("syncs")
        if plan == self._plan and not recheck:
            self._revision = snapshot.revision
            return None
        applied = self.control.apply(plan)
        self._bump("commands", applied.commands)
        self._bump("conflicts", len(applied.conflicts))
        if not applied.ok:
            self._bump("errors", len(applied.errors))
            raise _Failed(f"{len(applied.errors)} command(s) refused: {applied.errors[0]}")
        self._bump("plans_applied")
        self._plan, self._revision = plan, snapshot.revision
        self._due_at = now + min(self.recheck_s, snapshot.valid_for_s + 0.05)
        if applied.commands:
            log.info("broker access control updated (revision %s, %d command(s))",
                     snapshot.revision, applied.commands)  # fmt: skip
        return applied

    def plan_of(self, directory: Any, moment: datetime) -> AccessPlan:
        settings = self.settings
        return compile_plan(
            directory,
            relay_principal=settings.relay_principal,
            relay_prefix=settings.relay_prefix,
            named=settings.named,
            password=settings.password,
            now=moment,
        )

    def start(self) -> BrokerSync:
        """Sync at once, then keep syncing on a thread until `stop`."""
        if self._bus is not None and self._notices_topic:
            self._bus.subscribe(self._notices_topic, self._on_notice, qos=1)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="pbgm-broker-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._bus is not None and self._notices_topic:
            try:
                self._bus.unsubscribe(self._notices_topic)
            except PbgmError:
                log.debug("could not unsubscribe from the change notices")
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def stats(self) -> dict[str, int]:
        """syncs, plans_applied, commands, errors, conflicts, notices; and `revision`
        (the repository revision last applied, -1 before the first)."""
        with self._lock:
            out = dict(self._counters)
        out["revision"] = self._revision if self._revision is not None else -1
        return out

    def _run(self) -> None:
        while not self._stopping.is_set():
            if time.monotonic() >= self._retry_at:
                self._attempt()
            self._wake.wait(self.refresh_s)
            self._wake.clear()

    def _attempt(self) -> None:
        try:
            self.sync()
        except Exception as error:  # the broker or the store failed: retry later
            self._failures += 1
            delay = min(self.recheck_s, 0.5 * 2 ** min(self._failures - 1, 10))
            self._retry_at = time.monotonic() + delay
            if not isinstance(error, _Failed):  # refused commands are counted already
                self._bump("errors")
            log.warning("broker sync failed (%s); retry in %.1f s", error, delay)
            return
        self._failures = 0
        self._retry_at = 0.0

    def _on_notice(self, message: BusMessage) -> None:
        self._bump("notices")
        self._wake.set()

    def _bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counters[name] += by


class _Failed(PbgmError):
    """The broker refused commands of a plan (counted already)."""

    code = "broker_sync_failed"
