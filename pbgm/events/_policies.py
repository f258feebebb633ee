"""The event service's view of the repository: decision points, triggers, principals.

Deciding thousands of events a second leaves no room for a database round trip per
event. Each policy group has a `PolicyDecisionPoint` that follows the store's change
feed (`pbgm.pdp`), and its `service_trigger` policies are kept as triggers the same
way: one background thread (`Follower`, every `refresh_s`) applies only what changed
(a changed trigger policy is read again, a removed one dropped); everything of a group
is read again only when the feed has a gap (`reloads` counts those reads). Message
handling never waits for it: a message is decided on the set current when it arrives,
and sees the next one whole once it is swapped in. A group's first load happens when a
message first needs it. Principals' groups and whether their account is enabled are
remembered until the access revision moves, which `refresh` (per message, at most
every `refresh_s`) and the follower check. A store that fails keeps the last sets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pbgm.auth import Claims, bind_to_account
from pbgm.errors import ConfigurationError, NotFoundError
from pbgm.pdp import FOLLOW_EVERY_S, Follower, PolicyDecisionPoint
from pbgm.pep import Decider
from pbgm.policy import parse_policy
from pbgm.policy.published import unpack
from pbgm.store.base import Revisions, ServiceAccount, Store

from ._bounded import BoundedMap
from ._triggers import Trigger, trigger_of

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PRINCIPALS = 10_000  # principals named by messages (devices, token subjects)
TRIGGER_TYPE = "service_trigger"


class _Group:
    """One policy group: its decision point and its triggers, with the decision revision
    the triggers are at (None: never read)."""

    def __init__(self, pdp: PolicyDecisionPoint) -> None:
        self.pdp = pdp
        self.by_id: dict[str, Trigger] = {}
        self.triggers: tuple[Trigger, ...] = ()
        self.revision: int | None = None


class PolicyCache:
    """Decision points and triggers per policy group following the store's change feed,
    and principal facts (module docstring).

    With an explicit `pdp`, that decision point decides for every group; if it has a
    policy source (`PolicyDecisionPoint(source=...)`) it is refreshed when the store's
    decision revision moves. Triggers still come from the store, if there is one.
    """

    def __init__(
        self,
        store: Store | None,
        *,
        pdp: Decider | None = None,
        refresh_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
        max_principals: int = MAX_PRINCIPALS,
    ) -> None:
        if store is None and pdp is None:
            raise ConfigurationError("the event service needs a policy store or a decision point")
        self.store, self._pdp = store, pdp
        self._refresh_s, self._monotonic = refresh_s, monotonic
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = {}
        self._groups_of: BoundedMap[str, tuple[str, ...]] = BoundedMap(max_principals)
        self._enabled: BoundedMap[str, bool] = BoundedMap(max_principals)
        self._accounts: BoundedMap[str, ServiceAccount | None] = BoundedMap(max_principals)
        self._seen: Revisions | None = None
        self._explicit_at: int | None = None
        self._next_check = 0.0
        self._follow_lock = threading.Lock()  # one thread brings triggers up at a time
        self.reloads = 0
        """Full reads of a group's triggers: its first load, or a gap in the change feed."""
        # `refresh_s` 0 means "look at every message"; the thread still waits between
        # ticks (a follower that never waits spins and takes the interpreter from the
        # messages it serves)
        every = max(refresh_s, FOLLOW_EVERY_S)
        self.follower = _Follower(self, store, every=every) if store is not None else None

    @property
    def revision(self) -> int | None:
        """The store's decision revision last seen (None before the first read)."""
        seen = self._seen
        return seen.decisions if seen is not None else None

    def decider(self, group: str) -> Decider:
        return self._pdp if self._pdp is not None else self._group(group).pdp

    def triggers(self, group: str) -> tuple[Trigger, ...]:
        return self._group(group).triggers if self.store is not None else ()

    def groups_of(self, principal: str) -> tuple[str, ...]:
        """The principal's groups in the store (none without a store or if unknown)."""
        with self._lock:
            found = self._groups_of.get(principal)
        if found is not None:
            return found
        none: tuple[str, ...] = ()
        answered, groups = self._ask(lambda s: tuple(sorted(s.groups_of(principal))), none)
        if not answered:
            return ()
        with self._lock:
            self._groups_of.set(principal, groups)
        return groups

    def enabled(self, principal: str) -> bool:
        """An enabled service account or user of the store; True without a store."""
        if self.store is None:
            return True
        with self._lock:
            found = self._enabled.get(principal)
        if found is not None:
            return found
        answered, enabled = self._ask(lambda s: _enabled_in(s, principal), False)
        if not answered:
            return False
        with self._lock:
            self._enabled.set(principal, enabled)
        return enabled

    def sizes(self) -> dict[str, int]:
        """Entries held per table (principals' groups and accounts are bounded)."""
        with self._lock:
            return {
                "principals": len(self._groups_of),
                "accounts": len(self._enabled),
                "service_accounts": len(self._accounts),
            }

    def bound(self, claims: Claims) -> Claims | None:
        """The token's claims while the service account instance it was issued to is
        there and enabled, scopes cut to the account's (`pbgm.auth.bind_to_account`);
        a user's token needs its user enabled; None to refuse. As given without a store."""
        if self.store is None:
            return claims
        subject = claims.subject
        with self._lock:
            known = subject in self._accounts
            account = self._accounts.get(subject)
        if not known:
            answered, account = self._ask(lambda s: s.get_service_account(subject), None)
            if not answered:
                return None
            with self._lock:
                self._accounts.set(subject, account)
        if account is None:
            return claims if self.enabled(subject) else None
        return bind_to_account(
            claims,
            enabled=account.enabled,
            generation=account.token_generation,
            scopes=account.scopes,
        )

    def refresh(self, *, force: bool = False) -> None:
        """Check the store's revisions, at most every `refresh_s`: principals are read
        again when the access revision moved; a moved decision revision wakes the
        follower, which applies the change in the background (`force`: here and now,
        for tools and tests)."""
        if self.store is None or self.follower is None:
            return
        now = self._monotonic()
        if not force and now < self._next_check:
            return
        self._next_check = now + self._refresh_s
        self.follower.start()
        if force:
            self.follower.tick()
            return
        answered, revisions = self._ask(lambda s: s.revisions(), None)
        if answered and revisions is not None and self._saw(revisions):
            self.follower.wake()

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until the decision points and triggers are at the store's decision
        revision (for tests and tools); whether they are."""
        if self.follower is None:
            return True
        deadline = time.monotonic() + timeout
        answered, revisions = self._ask(lambda s: s.revisions(), None)
        if answered and revisions is not None:
            self._saw(revisions)
        self.follower.start()
        if not self.follower.settle(timeout):
            return False
        while not self._settled():
            if time.monotonic() >= deadline:
                return False
            self.follower.wake()
            time.sleep(0.01)
        return True

    def _settled(self) -> bool:
        if any(g.revision != g.pdp.revision for g in list(self._groups.values())):
            return False
        seen = self._seen  # an explicit decision point catches up with what was seen
        return self._pdp is None or seen is None or self._explicit_at == seen.decisions

    def invalidate(self) -> None:
        """Re-read the store at the next message (after a change made by this process)."""
        self._next_check = 0.0
        with self._lock:
            self._groups_of.clear()
            self._enabled.clear()
            self._accounts.clear()
        if self.follower is not None:
            self.follower.wake()

    def _saw(self, revisions: Revisions) -> bool:
        """Take note of the store's revisions; whether the decision revision moved."""
        with self._lock:
            seen, self._seen = self._seen, revisions
            if seen is None or seen.access != revisions.access:
                self._groups_of.clear()
                self._enabled.clear()
                self._accounts.clear()
            return seen is None or seen.decisions != revisions.decisions

    def _group(self, group: str) -> _Group:
        found = self._groups.get(group)
        if found is not None:
            return found
        assert self.store is not None and self.follower is not None
        with self._lock:
            found = self._groups.get(group)
            if found is None:
                found = _Group(PolicyDecisionPoint(store=self.store, policy_group=group))
                self._groups[group] = found
        try:  # the first load, when a message first needs the group
            found.pdp.sync()
            self._follow_triggers(found, group)
        except Exception:
            log.exception("cannot load policy group `%s`; retried in the background", group)
        self.follower.add(found.pdp)
        self.follower.start()
        return found

    def _follow(self) -> None:
        """The follower's work after its decision points synced: the triggers of each
        group, and an explicit decision point with a source."""
        for name, group in list(self._groups.items()):
            if group.revision is None or group.revision != group.pdp.revision:
                self._follow_triggers(group, name)
        seen = self._seen
        if self._pdp is None or seen is None or self._explicit_at == seen.decisions:
            return
        if self._refresh_explicit(seen.decisions):
            self._explicit_at = seen.decisions

    def _follow_triggers(self, group: _Group, name: str) -> None:
        """Bring a group's triggers up to the store: the changed `service_trigger`
        policies read again, removed ones dropped; all of them on a gap in the feed."""
        with self._follow_lock:
            self._read_triggers(group, name)

    def _read_triggers(self, group: _Group, name: str) -> None:
        assert self.store is not None
        read = self.store.read_published(name, since=group.revision)
        by_id = {} if read.full else dict(group.by_id)
        if read.full:
            self.reloads += 1
        for policy_id in read.removed:
            by_id.pop(policy_id, None)
        for policy in read.policies:
            by_id.pop(policy.id, None)
            if _may_be_trigger(policy.document):
                record = self.store.get_policy(policy.id)
                document = record.published_document or record.document
                parsed = parse_policy(document, version=record.published_version or 0)
                if parsed.type == TRIGGER_TYPE:
                    by_id[policy.id] = trigger_of(parsed)
        group.by_id = by_id
        group.triggers = tuple(by_id[k] for k in sorted(by_id))
        group.revision = read.revision

    def _refresh_explicit(self, revision: object) -> bool:
        """Let an explicit decision point with a policy source catch up with the store."""
        refresh = getattr(self._pdp, "refresh", None)
        if refresh is None:
            return True
        try:
            refresh(revision)
        except ConfigurationError:
            return True  # a decision point without a source: its owner loads it
        except Exception:
            log.exception("cannot refresh the decision point; keeping its policies")
            return False
        return True

    def _ask(self, question: Callable[[Store], T], not_found: T) -> tuple[bool, T]:
        """(True, the store's answer or `not_found` for a missing object), or
        (False, `not_found`) when the store failed."""
        assert self.store is not None
        try:
            return True, question(self.store)
        except NotFoundError:
            return True, not_found
        except Exception:
            log.warning("the policy store failed to answer", exc_info=True)
            return False, not_found


def _enabled_in(store: Store, principal: str) -> bool:
    try:
        return store.get_service_account(principal).enabled
    except NotFoundError:
        return store.get_user(principal).enabled


class _Follower(Follower):
    """The cache's one background thread: the store's decision points follow the feed
    (`Follower`), then the cache's triggers and principals (`PolicyCache._follow`)."""

    def __init__(self, cache: PolicyCache, store: Store, *, every: float) -> None:
        super().__init__(store, every=every)
        self._cache = cache

    def revisions(self) -> Revisions:
        revisions = super().revisions()
        self._cache._saw(revisions)
        return revisions

    def wake(self) -> None:
        self._wake.set()

    def tick(self) -> float:
        delay = super().tick()
        if self.failures:
            return delay
        try:
            self._cache._follow()
        except Exception:
            return self._failed()
        return delay


_MARKER = f'"type":"{TRIGGER_TYPE}"'


def _may_be_trigger(document: bytes | str) -> bool:
    """Whether a published document's lean text (compact JSON, maybe packed) names the
    trigger type: a cheap test before the policy is read whole."""
    text = unpack(document)
    if isinstance(text, bytes):
        return _MARKER.encode() in text
    return _MARKER in text
