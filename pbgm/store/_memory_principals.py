"""The memory store's principals, grants and audit log.

A mixin of `pbgm.store.memory.MemoryStore`, kept apart so that each module holds
one concept: here who may do what, there the policies and the transactions.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.errors import UnsupportedOperationError
from pbgm.model import Clock
from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _principal_rules as principal_rules
from pbgm.store import _query_rules as query_rules
from pbgm.store._audit_text import audit_texts
from pbgm.store._memory_flexoffers import MemoryFlexOffers
from pbgm.store._memory_state import State
from pbgm.store.base import (
    DECISION_LOG,
    AuditEntry,
    AuditItem,
    AuditQuery,
    Grant,
    Group,
    ServiceAccount,
    User,
    is_decision_entry,
)


class MemoryPrincipals(MemoryFlexOffers):
    """Users, groups, memberships, service accounts, grants and audit entries
    (FlexOffers come from `MemoryFlexOffers`)."""

    _clock: Clock
    _lock: threading.RLock
    _state: State
    _active: bool

    def _live(self) -> State:
        if not self._active:
            raise UnsupportedOperationError("the atomic block has ended; use the store itself")
        return self._state

    def _changed(
        self,
        at: datetime,
        actor: str,
        action: str,
        kind: str,
        object_id: str,
        details: Any,
        *,
        access: bool = True,
    ) -> None:
        """Bump the revision (and, for a change of principals or grants, the access
        revision) and audit the change (callers hold the lock)."""
        state = self._live()
        state.revision += 1
        state.access_revision += access
        _append_audit(state, AuditEntry(0, at, actor, action, kind, object_id, details))

    def _decision_changed(self, policy_id: str | None, policy_group: str | None = None) -> None:
        """Bump the decision revision and append the change to the feed (callers hold
        the lock): a policy's id, or None and a policy group's id."""
        state = self._live()
        state.decision_revision += 1
        state.feed.append((state.decision_revision, policy_id, policy_group))
        if len(state.feed) > 2 * feed.FEED_LENGTH:
            del state.feed[: -feed.FEED_LENGTH]

    def _audit_only(
        self, at: datetime, actor: str, action: str, kind: str, object_id: str, details: Any
    ) -> AuditEntry:
        """Audit without a change of the revision (callers hold the lock)."""
        return _append_audit(
            self._live(), AuditEntry(0, at, actor, action, kind, object_id, details)
        )

    def _now(self) -> datetime:
        return common.now(self._clock)

    # -- users

    def _user(self, name: str) -> User:
        user = self._live().users.get(name)
        if user is None:
            raise common.not_found("user", name)
        return user

    def add_user(self, user: User, *, actor: str) -> User:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            user = principal_rules.check_user(user, at)
            state = self._live()
            if user.name in state.users:
                raise common.already_exists("user", user.name)
            state.users[user.name] = user
            self._changed(at, actor, "user.add", "user", user.name, {})
            return user

    def get_user(self, name: str) -> User:
        with self._lock:
            return self._user(name)

    def list_users(self) -> list[User]:
        with self._lock:
            return sorted(self._live().users.values(), key=lambda u: u.name)

    def set_user_enabled(self, name: str, enabled: bool, *, actor: str) -> User:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            user = replace(self._user(name), enabled=bool(enabled))
            self._live().users[name] = user
            action = principal_rules.enabled_action("user", enabled)
            self._changed(at, actor, action, "user", name, {})
            return user

    def set_user_password_hash(self, name: str, password_hash: str, *, actor: str) -> User:
        common.check_id(actor, "actor")
        principal_rules.check_password_hash(password_hash)
        with self._lock:
            at = common.now(self._clock)
            user = replace(self._user(name), password_hash=password_hash)
            self._live().users[name] = user
            self._changed(at, actor, "user.password", "user", name, {})
            return user

    # -- groups and memberships

    def add_group(self, group: Group, *, actor: str) -> Group:
        principal_rules.check_group(group)
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            state = self._live()
            if group.name in state.groups:
                raise common.already_exists("group", group.name)
            state.groups[group.name] = group
            self._changed(at, actor, "group.add", "group", group.name, {})
            return group

    def get_group(self, name: str) -> Group:
        with self._lock:
            group = self._live().groups.get(name)
        if group is None:
            raise common.not_found("group", name)
        return group

    def list_groups(self) -> list[Group]:
        with self._lock:
            return sorted(self._live().groups.values(), key=lambda g: g.name)

    def add_member(self, group: str, user: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            self.get_group(group)
            self._user(user)
            state = self._live()
            if (group, user) in state.members:
                raise common.already_exists(f"member of group `{group}`", user)
            state.members.add((group, user))
            details = {"user": user}
            self._changed(at, actor, "group.add_member", "group", group, details)

    def remove_member(self, group: str, user: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            state = self._live()
            if (group, user) not in state.members:
                raise common.not_found(f"member of group `{group}`", user)
            state.members.discard((group, user))
            details = {"user": user}
            self._changed(at, actor, "group.remove_member", "group", group, details)

    def groups_of(self, principal: str) -> list[str]:
        """The groups `principal` belongs to; none for an unknown principal."""
        with self._lock:
            return sorted(g for g, u in self._live().members if u == principal)

    def members_of(self, group: str) -> list[str]:
        with self._lock:
            self.get_group(group)
            return sorted(u for g, u in self._live().members if g == group)

    # -- service accounts

    def _service(self, client_id: str) -> ServiceAccount:
        account = self._live().services.get(client_id)
        if account is None:
            raise common.not_found("service account", client_id)
        return account

    def add_service_account(self, account: ServiceAccount, *, actor: str) -> ServiceAccount:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            account = principal_rules.check_service_account(account, at)
            state = self._live()
            if account.client_id in state.services:
                raise common.already_exists("service account", account.client_id)
            state.services[account.client_id] = account
            details = {"scopes": list(account.scopes)}
            kind, client_id = "service_account", account.client_id
            self._changed(at, actor, "service_account.add", kind, client_id, details)
            return account

    def get_service_account(self, client_id: str) -> ServiceAccount:
        with self._lock:
            return self._service(client_id)

    def list_service_accounts(self) -> list[ServiceAccount]:
        with self._lock:
            return sorted(self._live().services.values(), key=lambda a: a.client_id)

    def set_service_account_enabled(
        self, client_id: str, enabled: bool, *, actor: str
    ) -> ServiceAccount:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            account = principal_rules.with_enabled(self._service(client_id), enabled)
            self._live().services[client_id] = account
            action = principal_rules.enabled_action("service_account", enabled)
            self._changed(at, actor, action, "service_account", client_id, {})
            return account

    def set_service_account_secret(
        self, client_id: str, secret_hash: str, *, actor: str
    ) -> ServiceAccount:
        common.check_id(actor, "actor")
        principal_rules.check_secret_hash(secret_hash)
        with self._lock:
            at = common.now(self._clock)
            account = replace(self._service(client_id), secret_hash=secret_hash)
            self._live().services[client_id] = account
            self._changed(at, actor, "service_account.rotate", "service_account", client_id, {})
            return account

    def delete_service_account(self, client_id: str, *, actor: str) -> None:
        """Delete the account and the grants made to it."""
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            self._service(client_id)
            state = self._live()
            own = [key for key, g in state.grants.items() if _is_service_grant(g, client_id)]
            for grant_id in own:
                del state.grants[grant_id]
            del state.services[client_id]
            details = {"grants_removed": len(own)}
            action = "service_account.delete"
            self._changed(at, actor, action, "service_account", client_id, details)

    # -- grants

    def _grant(self, grant_id: int) -> Grant:
        key = common.positive_int(grant_id)
        grant = None if key is None else self._live().grants.get(key)
        if grant is None:
            raise common.not_found("grant", grant_id)
        return grant

    def _check_grant_refs(self, grant: Grant) -> None:
        """Principals and policy groups must exist; a policy need not exist yet."""
        state = self._live()
        known: dict[str, Mapping[str, Any]] = {
            "user": state.users,
            "group": state.groups,
            "service": state.services,
        }
        if grant.principal not in known[grant.principal_kind]:
            raise common.not_found(grant.principal_kind, grant.principal)
        if grant.target_kind == "policy_group" and grant.target not in state.policy_groups:
            raise common.not_found("policy group", grant.target)
        key = principal_rules.grant_details(grant)
        if any(principal_rules.grant_details(g) == key for g in state.grants.values()):
            raise common.already_exists("grant", f"{grant.permission} on {grant.target}")

    def add_grant(self, grant: Grant, *, actor: str) -> Grant:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            grant = principal_rules.check_grant(grant, actor, at)
            self._check_grant_refs(grant)
            state = self._live()
            grant_id = state.next_grant_id
            grant = replace(grant, id=grant_id)
            state.next_grant_id += 1
            state.grants[grant_id] = grant
            details = principal_rules.grant_details(grant)
            self._changed(at, actor, "grant.add", "grant", str(grant.id), details)
            return grant

    def list_grants(
        self, *, principal: str | None = None, target: str | None = None
    ) -> list[Grant]:
        with self._lock:
            grants = sorted(self._live().grants.values(), key=lambda g: g.id or 0)
        return [
            g
            for g in grants
            if (principal is None or g.principal == principal)
            and (target is None or g.target == target)
        ]

    def set_grant_enabled(self, grant_id: int, enabled: bool, *, actor: str) -> Grant:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            grant = replace(self._grant(grant_id), enabled=bool(enabled))
            self._live().grants[grant_id] = grant
            action = principal_rules.enabled_action("grant", enabled)
            self._changed(at, actor, action, "grant", str(grant_id), {})
            return grant

    def delete_grant(self, grant_id: int, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            grant = self._grant(grant_id)
            del self._live().grants[grant_id]
            details = principal_rules.grant_details(grant)
            self._changed(at, actor, "grant.delete", "grant", str(grant_id), details)

    # -- audit

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an entry without a change to the repository (the revision stays)."""
        details = common.check_audit(actor, action, object_type, object_id, details)
        with self._lock:
            entry = AuditEntry(0, self._now(), actor, action, object_type, object_id, details)
            return _append_audit(self._live(), entry)

    def record_audits(self, items: Sequence[AuditItem]) -> int:
        checked = [
            (i, common.check_audit(i.actor, i.action, i.object_type, i.object_id, i.details))
            for i in items
        ]
        with self._lock:
            state, at = self._live(), self._now()
            for i, details in checked:
                entry = AuditEntry(0, at, i.actor, i.action, i.object_type, i.object_id, details)
                _append_audit(state, entry)
        return len(checked)

    def record_audit_batch(self, items: Sequence[AuditItem]) -> int:
        """`record_audits`, its rules applied to each entry's JSON text."""
        checked = audit_texts(items)
        with self._lock:
            state, at = self._live(), self._now()
            for actor, action, kind, oid, text in checked:
                entry = AuditEntry(0, at, actor, action, kind, oid, json.loads(text))
                _append_audit(state, entry)
        return len(checked)

    def list_audit(
        self, *, limit: int = 100, object_id: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        """The newest entries first; `before_id` pages back through older ones."""
        common.check_limit(limit)
        if before_id is not None:
            common.check_row_number(before_id, "before_id")
        with self._lock:
            entries = list(self._live().audit)
        wanted = [
            e
            for e in reversed(entries)
            if (object_id is None or e.object_id == object_id)
            and (before_id is None or e.id < before_id)
        ]
        return [replace(e, details=copy.deepcopy(e.details)) for e in wanted[:limit]]

    def search_audit(self, query: AuditQuery, *, limit: int = 100) -> list[AuditEntry]:
        common.check_limit(limit)
        query = query_rules.check_audit_query(query)
        with self._lock:
            entries = list(self._live().audit)
        wanted = [e for e in reversed(entries) if query_rules.matches_audit(e, query)]
        return [replace(e, details=copy.deepcopy(e.details)) for e in wanted[:limit]]

    def prune_audit(self, *, log: str, before: datetime, actor: str) -> int:
        common.check_log(log)
        decisions = log == DECISION_LOG
        with self._lock:
            state = self._live()
            kept = [
                e for e in state.audit if e.at >= before or is_decision_entry(e.action) != decisions
            ]
            removed = len(state.audit) - len(kept)
            state.audit[:] = kept
        details = {"before": before.isoformat(), "removed": removed}
        self.record_audit(
            actor=actor, action="audit.prune", object_type="log", object_id=log, details=details
        )
        return removed


def _is_service_grant(grant: Grant, client_id: str) -> bool:
    return grant.principal_kind == "service" and grant.principal == client_id


def _append_audit(state: State, entry: AuditEntry) -> AuditEntry:
    """Number the entry and add it; details become a private JSON copy."""
    state.last_audit_id = entry_id = state.last_audit_id + 1
    entry = replace(entry, id=entry_id, details=common.to_json(entry.details))
    state.audit.append(entry)
    return replace(entry, details=copy.deepcopy(entry.details))
