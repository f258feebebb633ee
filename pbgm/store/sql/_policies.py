"""Policies, their versions and policy groups in the SQL store."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Text,
    and_,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from pbgm.model import PolicyGroup, PolicyStatus
from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _policy_rules as policy_rules
from pbgm.store import _query_rules as query_rules
from pbgm.store.base import PolicyCount, PolicyPage, PolicyQuery, PolicyRecord, PolicyVersion
from pbgm.store.sql import _bulk as bulk
from pbgm.store.sql._base import SqlBase
from pbgm.store.sql.mapping import (
    policy_row,
    set_policy_keys,
    to_policy_group,
    to_record,
    to_version,
    version_row,
)
from pbgm.store.sql.tables import PolicyGroupRow, PolicyRow, PolicyVersionRow, PublishedRow

_Published = aliased(PolicyVersionRow, name="published")
_IN_CHUNK = 5_000


def _with_published() -> Select[tuple[PolicyRow, Any]]:
    """Policies with the document of their published version (None if unpublished)."""
    on = and_(
        _Published.policy_id == PolicyRow.id, _Published.version == PolicyRow.published_version
    )
    return select(PolicyRow, _Published.document).outerjoin(_Published, on)


_BINARY_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})
_binary_databases: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _by_id(session: Session) -> Any:
    """Ids in binary (code point) order, as the memory store sorts them. On a
    PostgreSQL database whose collation is not binary that takes `COLLATE "C"`,
    which cannot use the primary key's index; on a binary one the plain column
    does, so a page is read from the index without sorting the table."""
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        return PolicyRow.id
    if engine not in _binary_databases:
        query = text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        _binary_databases[engine] = session.scalar(query) in _BINARY_COLLATIONS
    return PolicyRow.id if _binary_databases[engine] else PolicyRow.id.collate("C")


def _contains(
    search: str, *texts: ColumnElement[Any] | InstrumentedAttribute[Any]
) -> ColumnElement[bool]:
    """One of `texts` holds `search`, whatever the case (`%` and `_` taken literally)."""
    pattern = query_rules.like_pattern(search)
    return or_(*(func.lower(t).like(pattern, escape="\\") for t in texts))


def _conditions(query: PolicyQuery) -> list[ColumnElement[bool]]:
    """The WHERE clause of `page_policies`, as `_query_rules.matches_policy` reads."""
    found: list[ColumnElement[bool]] = []
    if query.visible_groups is not None:
        groups, ids = sorted(query.visible_groups), sorted(query.visible_ids)
        seen = [PolicyRow.policy_group.in_(groups)] if groups else []
        seen += [PolicyRow.id.in_(ids)] if ids else []
        found.append(or_(*seen) if seen else false())
    for column, value in (
        (PolicyRow.policy_group, query.policy_group),
        (PolicyRow.type, query.policy_type),
        (PolicyRow.asset_id, query.asset_id),
        (PolicyRow.status, None if query.status is None else str(query.status)),
    ):
        if value is not None:
            found.append(column == value)
    names = (PolicyRow.id, func.coalesce(PolicyRow.asset_id, ""))
    if query.search:
        found.append(_contains(query.search, *names))
    if query.text:
        # The document holds its id and asset id; the expression is the one the
        # trigram index of migration 0008_policy_text covers.
        found.append(_contains(query.text, cast(PolicyRow.document, Text)))
    return found


class SqlPolicies(SqlBase):
    """Policy operations of `SqlStore`."""

    def _load(self, session: Session, policy_id: str, *, lock: bool = False) -> PolicyRecord:
        query = _with_published().where(PolicyRow.id == policy_id)
        if lock:
            query = query.with_for_update(of=PolicyRow)
        found = session.execute(query).first()
        if found is None:
            raise common.not_found("policy", policy_id)
        return to_record(found[0], found[1])

    def _row(self, session: Session, policy_id: str) -> PolicyRow:
        row = session.get(PolicyRow, policy_id)
        if row is None:
            raise common.not_found("policy", policy_id)
        return row

    def get_policy(self, policy_id: str) -> PolicyRecord:
        with self._tx(write=False) as session:
            return self._load(session, policy_id)

    def list_policies(
        self,
        *,
        policy_group: str | None = None,
        policy_type: str | None = None,
        asset_id: str | None = None,
        status: PolicyStatus | None = None,
    ) -> list[PolicyRecord]:
        """Matching policies in id order (sorted here, whatever the database collation)."""
        query = _with_published()
        for column, value in (
            (PolicyRow.policy_group, policy_group),
            (PolicyRow.type, policy_type),
            (PolicyRow.asset_id, asset_id),
            (PolicyRow.status, None if status is None else str(status)),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._tx(write=False) as session:
            records = [to_record(row, published) for row, published in session.execute(query)]
        return sorted(records, key=lambda r: r.id)

    def page_policies(self, query: PolicyQuery, *, offset: int = 0, limit: int = 50) -> PolicyPage:
        """One page, sorted and cut in the database (ids in binary order on
        every database, as the memory store sorts them)."""
        offset, limit = query_rules.check_page(offset, limit)
        query = query_rules.check_policy_query(query)
        where = _conditions(query)
        with self._tx(write=False) as session:
            by_id = _by_id(session)
            order = [by_id] if query.order == "id" else [PolicyRow.updated_at.desc(), by_id]
            total = session.scalar(select(func.count()).select_from(PolicyRow).where(*where))
            # The page's ids first (an index scan, whatever the offset), then their rows
            # with the published documents: the join never touches the skipped rows.
            ids = list(
                session.scalars(
                    select(PolicyRow.id).where(*where).order_by(*order).offset(offset).limit(limit)
                )
            )
            found = session.execute(_with_published().where(PolicyRow.id.in_(ids)))
            loaded = {row.id: to_record(row, published) for row, published in found}
            records = tuple(loaded[i] for i in ids if i in loaded)
        return PolicyPage(records, int(total or 0), offset, limit)

    def policy_counts(self) -> list[PolicyCount]:
        columns = (PolicyRow.policy_group, PolicyRow.type, PolicyRow.status)
        query = select(*columns, func.count()).group_by(*columns)
        with self._tx(write=False) as session:
            counts = [
                PolicyCount(group, kind, PolicyStatus(status), int(n))
                for group, kind, status, n in session.execute(query)
            ]
        return sorted(counts, key=lambda c: (c.policy_group, c.type, c.status))

    def create_policy(
        self, document: Mapping[str, Any], *, actor: str, reason: str = ""
    ) -> PolicyRecord:
        doc, keys = policy_rules.check_new_policy(document, actor, reason)
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            if session.get(PolicyRow, keys.id) is not None:
                raise common.already_exists("policy", keys.id)
            record = policy_rules.new_record(keys, doc, at, actor)
            session.add(policy_row(record, keys.format))
            session.flush()  # the policy first: the version row refers to it
            session.add(version_row(policy_rules.version_entry(record, reason, "create")))
            details = policy_rules.with_reason({"version": 1}, reason)
            self._audit(session, at, actor, "policy.create", "policy", keys.id, details)
            return record

    def create_policies(
        self,
        documents: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        reason: str = "",
        publish: bool = False,
    ) -> int:
        """In bulk: one multi-row INSERT per table, the revisions moved by the number of
        changes at once; the rows are those `create_policy` and `set_policy_status` write."""
        checked = policy_rules.check_new_policies(documents, actor, reason)
        ids = [keys.id for _, _, keys in checked]
        if len(set(ids)) != len(ids):
            raise common.already_exists("policy", next(i for i in ids if ids.count(i) > 1))
        if not checked:
            return 0
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            for start in range(0, len(ids), _IN_CHUNK):
                taken = session.scalars(
                    select(PolicyRow.id).where(PolicyRow.id.in_(ids[start : start + _IN_CHUNK]))
                ).first()
                if taken is not None:
                    raise common.already_exists("policy", taken)
            bulk.insert_created(session, checked, at, actor, reason, publish)
        return len(checked)

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
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            current = self._load(session, policy_id, lock=True)
            policy_rules.check_expected(policy_id, current.version, expected_version)
            record = policy_rules.next_record(current, keys, doc, at, actor)
            row = self._row(session, policy_id)
            set_policy_keys(row, keys, doc)
            row.version, row.updated_at, row.updated_by = record.version, at, actor
            session.add(version_row(policy_rules.version_entry(record, reason, action)))
            details = policy_rules.with_reason({"version": record.version}, reason)
            self._audit(session, at, actor, f"policy.{action}", "policy", policy_id, details)
            return record

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
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            current = self._load(session, policy_id, lock=True)
            if expected_version is not None:
                policy_rules.check_expected(policy_id, current.version, expected_version)
            row = self._row(session, policy_id)
            published = current.published_document
            if status is PolicyStatus.PUBLISHED:
                number = current.version if version is None else version
                chosen = self._version(session, policy_id, number)
                row.published_version, published = chosen.version, chosen.document
                self._published_as(session, policy_id, chosen.version, chosen.document)
            else:
                session.execute(delete(PublishedRow).where(PublishedRow.id == policy_id))
            row.status, row.updated_at, row.updated_by = str(status), at, actor
            details = policy_rules.with_reason({"version": row.published_version}, reason)
            action = policy_rules.STATUS_ACTIONS[status]
            self._audit(session, at, actor, action, "policy", policy_id, details)
            if PolicyStatus.PUBLISHED in (current.status, status):
                self._decision_changed(session, policy_id)
            session.flush()
            return to_record(row, published)

    @staticmethod
    def _published_as(
        session: Session, policy_id: str, version: int, document: Mapping[str, Any]
    ) -> None:
        """Write the policy's row of `published_policies` for its published `version`."""
        text, target, windowed, timed = feed.decision_text(document)
        row = session.get(PublishedRow, policy_id) or PublishedRow(id=policy_id)
        row.policy_group, row.version = str(document.get("policy_group")), version
        row.document, row.target, row.windowed, row.timed = text, target, windowed, timed
        session.add(row)

    def _version(self, session: Session, policy_id: str, version: int) -> PolicyVersion:
        number = common.positive_int(version)
        row = None if number is None else session.get(PolicyVersionRow, (policy_id, number))
        if row is None:
            raise policy_rules.no_version(policy_id, version)
        return to_version(row)

    def policy_versions(self, policy_id: str) -> list[PolicyVersion]:
        query = (
            select(PolicyVersionRow)
            .where(PolicyVersionRow.policy_id == policy_id)
            .order_by(PolicyVersionRow.version)
        )
        with self._tx(write=False) as session:
            self._row(session, policy_id)
            return [to_version(row) for row in session.scalars(query)]

    def get_policy_version(self, policy_id: str, version: int) -> PolicyVersion:
        with self._tx(write=False) as session:
            self._row(session, policy_id)
            return self._version(session, policy_id, version)

    def delete_policy(self, policy_id: str, *, actor: str, reason: str = "") -> None:
        """Delete the policy and its history; the audit log keeps the deletion."""
        policy_rules.check_change(actor, reason)
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            current = self._load(session, policy_id, lock=True)
            session.execute(delete(PublishedRow).where(PublishedRow.id == policy_id))
            session.execute(delete(PolicyVersionRow).where(PolicyVersionRow.policy_id == policy_id))
            session.execute(delete(PolicyRow).where(PolicyRow.id == policy_id))
            details = policy_rules.with_reason({"version": current.version}, reason)
            self._audit(session, at, actor, "policy.delete", "policy", policy_id, details)
            if current.status is PolicyStatus.PUBLISHED:
                self._decision_changed(session, policy_id)

    # -- policy groups

    def put_policy_group(self, group: PolicyGroup, *, actor: str) -> PolicyGroup:
        policy_rules.check_policy_group(group)
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session)
            row = session.get(PolicyGroupRow, group.id)
            action = "update" if row is not None else "create"
            if row is None:
                row = PolicyGroupRow(id=group.id)
                session.add(row)
            row.policy_combining, row.description = group.policy_combining, group.description
            details = {"policy_combining": group.policy_combining}
            action, kind = f"policy_group.{action}", "policy_group"
            self._audit(session, at, actor, action, kind, group.id, details)
            self._decision_changed(session, None, group.id)
            return group

    def get_policy_group(self, group_id: str) -> PolicyGroup:
        with self._tx(write=False) as session:
            row = session.get(PolicyGroupRow, group_id)
            if row is None:
                raise common.not_found("policy group", group_id)
            return to_policy_group(row)

    def list_policy_groups(self) -> list[PolicyGroup]:
        with self._tx(write=False) as session:
            groups = [to_policy_group(row) for row in session.scalars(select(PolicyGroupRow))]
        return sorted(groups, key=lambda g: g.id)
