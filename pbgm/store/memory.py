"""The in-memory reference store.

It defines what the contract means in the plainest code: the SQL store must behave
the same (`tests/store/test_contract.py` runs one suite against both). Every call
holds one re-entrant lock; each mutation checks everything before it changes
anything, so a call that raises leaves the store as it was. `atomic()` works on a
copy of the state and swaps it in only when the block ends without an exception.

Documents are private JSON copies: callers get fresh dicts and cannot change
what the store holds.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pbgm.model import Clock, PolicyGroup, PolicyStatus, utc_now
from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _policy_rules as policy_rules
from pbgm.store import _query_rules as query_rules
from pbgm.store._memory_devices import MemoryDevices
from pbgm.store._memory_principals import MemoryPrincipals
from pbgm.store._memory_state import State
from pbgm.store.base import (
    PolicyCount,
    PolicyPage,
    PolicyQuery,
    PolicyRecord,
    PolicyVersion,
    PublishedPolicy,
    PublishedSet,
    Revisions,
)


def _out(record: PolicyRecord) -> PolicyRecord:
    return replace(
        record,
        document=copy.deepcopy(record.document),
        published_document=copy.deepcopy(record.published_document),
    )


def _out_version(version: PolicyVersion) -> PolicyVersion:
    return replace(version, document=copy.deepcopy(version.document))


def _serves(record: PolicyRecord, policy_group: str | None) -> bool:
    published = record.status is PolicyStatus.PUBLISHED
    return published and feed.in_group(record.published_document, policy_group)


def _published(record: PolicyRecord) -> PublishedPolicy:
    document = record.published_document or {}
    group, version = str(document.get("policy_group")), record.published_version or 0
    return PublishedPolicy(record.id, group, version, *feed.decision_text(document))


def _ID(record: PolicyRecord) -> str:
    return record.id


class MemoryStore(MemoryPrincipals, MemoryDevices):
    """A `Store` held in process memory: the reference implementation.

    Users, groups, service accounts, grants and the audit log are in
    `MemoryPrincipals`; devices, device groups, network resources and device
    status in `MemoryDevices`; policies, policy groups and transactions here.
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._state = State()
        self._active = True

    def _draft(self) -> MemoryStore:
        draft = MemoryStore(self._clock)
        draft._lock = self._lock
        draft._state = self._state.copy()
        return draft

    # -- revision and transactions

    def revision(self) -> int:
        with self._lock:
            return self._live().revision

    def revisions(self) -> Revisions:
        with self._lock:
            state = self._live()
            return Revisions(state.revision, state.decision_revision, state.access_revision)

    @contextmanager
    def atomic(self) -> Iterator[MemoryStore]:
        """A view on a draft copy; the draft replaces the state only on success."""
        with self._lock:
            self._live()
            draft = self._draft()
            try:
                yield draft
                self._state = draft._state
            finally:
                draft._active = False

    def close(self) -> None:
        """Nothing to release; present so callers can close any store."""

    # -- policies

    def _policy(self, policy_id: str) -> PolicyRecord:
        record = self._live().policies.get(policy_id)
        if record is None:
            raise common.not_found("policy", policy_id)
        return record

    def _version(self, policy_id: str, version: int) -> PolicyVersion:
        versions = self._live().versions[policy_id]
        number = common.positive_int(version)
        if number is None or number > len(versions):
            raise policy_rules.no_version(policy_id, version)
        return versions[number - 1]

    def get_policy(self, policy_id: str) -> PolicyRecord:
        with self._lock:
            return _out(self._policy(policy_id))

    def list_policies(
        self,
        *,
        policy_group: str | None = None,
        policy_type: str | None = None,
        asset_id: str | None = None,
        status: PolicyStatus | None = None,
    ) -> list[PolicyRecord]:
        with self._lock:
            records = sorted(self._live().policies.values(), key=lambda r: r.id)
        wanted = {
            "policy_group": policy_group,
            "type": policy_type,
            "asset_id": asset_id,
            "status": status,
        }
        return [
            _out(r)
            for r in records
            if all(value is None or getattr(r, key) == value for key, value in wanted.items())
        ]

    def page_policies(self, query: PolicyQuery, *, offset: int = 0, limit: int = 50) -> PolicyPage:
        offset, limit = query_rules.check_page(offset, limit)
        query = query_rules.check_policy_query(query)
        with self._lock:
            found = [
                r for r in self._live().policies.values() if query_rules.matches_policy(r, query)
            ]
        if query.order == "updated":
            found.sort(key=lambda r: r.id)
            found.sort(key=lambda r: r.updated_at, reverse=True)
        else:
            found.sort(key=lambda r: r.id)
        chosen = tuple(_out(r) for r in found[offset : offset + limit])
        return PolicyPage(chosen, len(found), offset, limit)

    def policy_counts(self) -> list[PolicyCount]:
        counts: dict[tuple[str, str, PolicyStatus], int] = {}
        with self._lock:
            for r in self._live().policies.values():
                key = (r.policy_group, r.type, r.status)
                counts[key] = counts.get(key, 0) + 1
        return [PolicyCount(g, t, s, n) for (g, t, s), n in sorted(counts.items())]

    def create_policy(
        self, document: Mapping[str, Any], *, actor: str, reason: str = ""
    ) -> PolicyRecord:
        doc, keys = policy_rules.check_new_policy(document, actor, reason)
        with self._lock:
            at = common.now(self._clock)
            state = self._live()
            if keys.id in state.policies:
                raise common.already_exists("policy", keys.id)
            record = policy_rules.new_record(keys, doc, at, actor)
            state.policies[keys.id] = record
            state.versions[keys.id] = [policy_rules.version_entry(record, reason, "create")]
            details = policy_rules.with_reason({"version": 1}, reason)
            self._changed(at, actor, "policy.create", "policy", keys.id, details, access=False)
            return _out(record)

    def update_policy(
        self,
        policy_id: str,
        document: Mapping[str, Any],
        *,
        expected_version: int,
        actor: str,
        reason: str = "",
        action: str = "update",
    ) -> PolicyRecord:
        doc, keys = policy_rules.check_policy_update(policy_id, document, actor, reason, action)
        with self._lock:
            at = common.now(self._clock)
            current = self._policy(policy_id)
            policy_rules.check_expected(policy_id, current.version, expected_version)
            record = policy_rules.next_record(current, keys, doc, at, actor)
            state = self._live()
            state.policies[policy_id] = record
            state.versions[policy_id].append(policy_rules.version_entry(record, reason, action))
            details = policy_rules.with_reason({"version": record.version}, reason)
            self._changed(at, actor, f"policy.{action}", "policy", policy_id, details, access=False)
            return _out(record)

    def set_policy_status(
        self,
        policy_id: str,
        status: PolicyStatus,
        *,
        actor: str,
        reason: str = "",
        version: int | None = None,
        expected_version: int | None = None,
    ) -> PolicyRecord:
        """Publish `version` (default: the latest) or move the policy to another status."""
        status = policy_rules.check_status_change(status, version, actor, reason)
        with self._lock:
            at = common.now(self._clock)
            current = self._policy(policy_id)
            if expected_version is not None:
                policy_rules.check_expected(policy_id, current.version, expected_version)
            record = replace(current, status=status, updated_by=actor)
            if status is PolicyStatus.PUBLISHED:
                chosen = self._version(policy_id, current.version if version is None else version)
                record = replace(
                    record, published_version=chosen.version, published_document=chosen.document
                )
            record = replace(record, updated_at=at)
            self._live().policies[policy_id] = record
            details = policy_rules.with_reason({"version": record.published_version}, reason)
            action = policy_rules.STATUS_ACTIONS[status]
            self._changed(at, actor, action, "policy", policy_id, details, access=False)
            if PolicyStatus.PUBLISHED in (current.status, status):
                self._decision_changed(policy_id)
            return _out(record)

    def create_policies(
        self,
        documents: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        reason: str = "",
        publish: bool = False,
    ) -> int:
        with self.atomic() as view:  # the plain calls, all or none
            for document in documents:
                record = view.create_policy(document, actor=actor, reason=reason)
                if publish:
                    view.set_policy_status(
                        record.id, PolicyStatus.PUBLISHED, actor=actor, reason=reason
                    )
        return len(documents)

    def policy_versions(self, policy_id: str) -> list[PolicyVersion]:
        with self._lock:
            self._policy(policy_id)
            return [_out_version(v) for v in self._live().versions[policy_id]]

    def get_policy_version(self, policy_id: str, version: int) -> PolicyVersion:
        with self._lock:
            self._policy(policy_id)
            return _out_version(self._version(policy_id, version))

    def delete_policy(self, policy_id: str, *, actor: str, reason: str = "") -> None:
        policy_rules.check_change(actor, reason)
        with self._lock:
            at = common.now(self._clock)
            record = self._policy(policy_id)
            state = self._live()
            del state.policies[policy_id]
            del state.versions[policy_id]
            details = policy_rules.with_reason({"version": record.version}, reason)
            self._changed(at, actor, "policy.delete", "policy", policy_id, details, access=False)
            if record.status is PolicyStatus.PUBLISHED:
                self._decision_changed(policy_id)

    def read_published(
        self, policy_group: str | None = None, *, since: int | None = None
    ) -> PublishedSet:
        with self._lock:
            state = self._live()
            current = state.decision_revision
            group = state.policy_groups.get(policy_group) if policy_group else None
            records = state.policies
            if since is not None:
                entries = [entry for entry in state.feed if entry[0] > since]
                if feed.complete(since, current, len(entries)):
                    changed = [records.get(i) for i in feed.changed_ids(entries)]
                    found = [r for r in changed if r is not None and _serves(r, policy_group)]
                    removed = {i for i in feed.changed_ids(entries)} - {r.id for r in found}
                    published = tuple(_published(r) for r in found)
                    return PublishedSet(current, False, group, published, frozenset(removed))
            found = sorted((r for r in records.values() if _serves(r, policy_group)), key=_ID)
        return PublishedSet(current, True, group, tuple(_published(r) for r in found))

    # -- policy groups

    def put_policy_group(self, group: PolicyGroup, *, actor: str) -> PolicyGroup:
        policy_rules.check_policy_group(group)
        common.check_id(actor, "actor")
        with self._lock:
            at = common.now(self._clock)
            state = self._live()
            action = "update" if group.id in state.policy_groups else "create"
            state.policy_groups[group.id] = group
            details = {"policy_combining": group.policy_combining}
            kind = "policy_group"
            self._changed(at, actor, f"{kind}.{action}", kind, group.id, details, access=False)
            self._decision_changed(None, group.id)
            return group

    def get_policy_group(self, group_id: str) -> PolicyGroup:
        with self._lock:
            group = self._live().policy_groups.get(group_id)
        if group is None:
            raise common.not_found("policy group", group_id)
        return group

    def list_policy_groups(self) -> list[PolicyGroup]:
        with self._lock:
            return sorted(self._live().policy_groups.values(), key=lambda g: g.id)
