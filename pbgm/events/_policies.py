"""The event service's view of the repository: compiled policy groups, triggers, principals.

Deciding thousands of events a second leaves no room for a database round trip per
event. Each policy group is compiled once into a `PolicyDecisionPoint` (and its
`service_trigger` policies into triggers); principals' groups and whether their
account is enabled are remembered. All of it is dropped or rebuilt when the store
revision moves, which is checked at most every `refresh_s`. A group that cannot be
reloaded keeps its last compiled set and is retried at the next check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pbgm.auth import Claims, bind_to_account
from pbgm.errors import ConfigurationError, NotFoundError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import Decider
from pbgm.store.base import ServiceAccount, Store

from ._bounded import BoundedMap
from ._triggers import Trigger, triggers_of

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_PRINCIPALS = 10_000  # principals named by messages (devices, token subjects)


@dataclass(frozen=True, slots=True)
class _Compiled:
    pdp: PolicyDecisionPoint
    triggers: tuple[Trigger, ...]


class PolicyCache:
    """Compiled policy groups and principal facts, refreshed on store revision change.

    With an explicit `pdp`, that decision point decides for every group; if it has a
    policy source (`PolicyDecisionPoint(source=...)`) it is refreshed with the store.
    Triggers still come from the store, if there is one.
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
        self._groups: dict[str, _Compiled] = {}
        self._groups_of: BoundedMap[str, tuple[str, ...]] = BoundedMap(max_principals)
        self._enabled: BoundedMap[str, bool] = BoundedMap(max_principals)
        self._accounts: BoundedMap[str, ServiceAccount | None] = BoundedMap(max_principals)
        self._revision: int | None = None
        self._next_check = 0.0

    @property
    def revision(self) -> int | None:
        """The store revision of the policies in force (None before the first load)."""
        return self._revision

    def decider(self, group: str) -> Decider:
        return self._pdp if self._pdp is not None else self._compiled(group).pdp

    def triggers(self, group: str) -> tuple[Trigger, ...]:
        return self._compiled(group).triggers if self.store is not None else ()

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
        """Reload when the store revision moved; checked at most every `refresh_s`."""
        if self.store is None:
            return
        now = self._monotonic()
        if not force and now < self._next_check:
            return
        with self._lock:
            self._next_check = now + self._refresh_s
            answered, revision = self._ask(lambda s: s.revision(), None)
            if not answered or revision == self._revision:
                return
            self._groups_of.clear()
            self._enabled.clear()
            self._accounts.clear()
            reloaded = all(self._reload(group) for group in list(self._groups))
            reloaded = self._refresh_explicit(revision) and reloaded
            self._revision = revision if reloaded else None

    def invalidate(self) -> None:
        """Re-read the store at the next message (after a change made by this process)."""
        self._next_check = 0.0
        with self._lock:
            self._groups_of.clear()
            self._enabled.clear()

    def _compiled(self, group: str) -> _Compiled:
        compiled = self._groups.get(group)
        if compiled is None:
            with self._lock:
                if group not in self._groups and not self._reload(group):
                    self._groups[group] = _Compiled(PolicyDecisionPoint(), ())  # denies
                    self._revision = None  # retried at the next check
                compiled = self._groups[group]
        return compiled

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

    def _reload(self, group: str) -> bool:
        assert self.store is not None
        try:
            policy_set = PolicyAdministrationPoint(self.store).load_policy_set(group)
            compiled = _Compiled(PolicyDecisionPoint(policy_set), triggers_of(policy_set))
        except Exception:
            log.exception("cannot load policy group `%s`; keeping the last one", group)
            return False
        self._groups[group] = compiled
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
