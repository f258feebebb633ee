"""What every SQL store operation stands on: transactions, the revision, the audit log.

A mutating operation runs in one transaction that first bumps the revision row
(`UPDATE ... SET revision = revision + 1 RETURNING revision`), then checks and
changes, then writes its audit entry. Bumping first takes the row lock on
PostgreSQL (or the write lock on SQLite, begun `IMMEDIATE`), so writers are
serialised: the checks that follow (does it exist? is `expected_version` current?)
cannot be overtaken by a concurrent writer, and no two writers deadlock. If the
operation raises, its transaction or savepoint rolls back, bump included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, not_, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from pbgm.errors import ConfigurationError
from pbgm.model import Clock
from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _query_rules as query_rules
from pbgm.store._audit_text import audit_texts
from pbgm.store.base import (
    DECISION_ACTION_PREFIXES,
    DECISION_ACTIONS,
    DECISION_LOG,
    AuditEntry,
    AuditItem,
    AuditQuery,
    Revisions,
)
from pbgm.store.sql._bulk import copy_rows
from pbgm.store.sql.listen import notify_decisions
from pbgm.store.sql.mapping import audit_row, to_audit
from pbgm.store.sql.tables import AuditRow, DecisionChangeRow, RevisionRow

_REVISION = cast(Table, RevisionRow.__table__)
_CHANGES = cast(Table, DecisionChangeRow.__table__)
_AUDIT = cast(Table, AuditRow.__table__)
_PRUNE_EVERY = 100  # feed entries pruned once in so many changes, not on every one
PRUNE_BATCH = 5000
_NO_REVISION = "the policy repository has no revision row; run `pbgm db upgrade`"
_AUDIT_COLUMNS = ("at", "actor", "action", "object_type", "object_id", "details")
_AUDIT_INSERT = (
    "INSERT INTO audit_log (at, actor, action, object_type, object_id, details)"
    " VALUES ({m}, {m}, {m}, {m}, {m}, {m})"
)
"""The decision log's insert (`record_audit_batch`, beside PostgreSQL's COPY of
`_AUDIT_COLUMNS`): the details are JSON text, which SQLite stores as the JSON column
does and PostgreSQL casts to `jsonb`."""


def _audit_time(dialect: Dialect, at: datetime) -> Any:
    """`at` as the `at` column's type binds it on `dialect`."""
    process = _AUDIT.c.at.type.bind_processor(dialect)
    return process(at) if process is not None else at


class SqlBase:
    """Shared machinery of `SqlStore` and its atomic view."""

    _clock: Clock
    _where: str  # the database URL with its password hidden

    def _tx(self, *, write: bool, snapshot: bool = False) -> AbstractContextManager[Session]:
        """A session in a transaction (or savepoint) for one operation; with `snapshot`,
        one whose reads all see the same committed state (as SQLite's always do)."""
        raise NotImplementedError

    def _begin_change(self, session: Session, *, access: bool = False) -> datetime:
        """Bump the revision (taking the writers' lock), and the access revision for a
        change of principals or grants; return the change's time."""
        values: dict[str, Any] = {"revision": _REVISION.c.revision + 1}
        if access:
            values["access_revision"] = _REVISION.c.access_revision + 1
        bumped = session.execute(
            update(_REVISION)
            .where(_REVISION.c.id == 1)
            .values(**values)
            .returning(_REVISION.c.revision)
        ).scalar_one_or_none()
        if bumped is None:
            raise ConfigurationError(_NO_REVISION)
        return common.now(self._clock)

    @staticmethod
    def _decision_changed(
        session: Session, policy_id: str | None, policy_group: str | None = None
    ) -> None:
        """Bump the decision revision and append the change to the feed (the writers'
        lock is held), dropping the entries the feed no longer keeps."""
        revision = session.execute(
            update(_REVISION)
            .where(_REVISION.c.id == 1)
            .values(decision_revision=_REVISION.c.decision_revision + 1)
            .returning(_REVISION.c.decision_revision)
        ).scalar_one()
        session.execute(
            insert(_CHANGES).values(
                revision=revision, policy_id=policy_id, policy_group=policy_group
            )
        )
        notify_decisions(session, revision)
        if revision % _PRUNE_EVERY == 0:
            old = _CHANGES.c.revision <= revision - feed.FEED_LENGTH
            session.execute(delete(_CHANGES).where(old))

    @staticmethod
    def _audit(
        session: Session, at: datetime, actor: str, action: str, kind: str, oid: str, details: Any
    ) -> AuditRow:
        row = audit_row(at, actor, action, kind, oid, common.to_json(details))
        session.add(row)
        return row

    def revision(self) -> int:
        return self.revisions().repository

    def revisions(self) -> Revisions:
        with self._tx(write=False) as session:
            return self._revisions(session)

    @staticmethod
    def _revisions(session: Session) -> Revisions:
        columns = (RevisionRow.revision, RevisionRow.decision_revision, RevisionRow.access_revision)
        row = session.execute(select(*columns).where(RevisionRow.id == 1)).first()
        if row is None:
            raise ConfigurationError(_NO_REVISION)
        return Revisions(*(int(value) for value in row))

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
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            row = self._audit(session, at, actor, action, object_type, object_id, details)
            session.flush()
            return to_audit(row)

    def record_audits(self, items: Sequence[AuditItem]) -> int:
        """Several entries in one transaction and one multi-row INSERT."""
        checked = [
            (i, common.check_audit(i.actor, i.action, i.object_type, i.object_id, i.details))
            for i in items
        ]
        if not checked:
            return 0
        with self._tx(write=True) as session:
            at = common.now(self._clock)
            rows = [
                {"at": at, "actor": i.actor, "action": i.action, "object_type": i.object_type}
                | {"object_id": i.object_id, "details": details}
                for i, details in checked
            ]
            session.execute(insert(_AUDIT), rows)
        return len(rows)

    def record_audit_batch(self, items: Sequence[AuditItem]) -> int:
        """`record_audits` for many entries: their JSON texts checked
        (`pbgm.store._audit_text`), then written with no statement compiled or parameter
        processed per row: PostgreSQL's COPY (`_bulk.copy_rows`), elsewhere one
        prepared INSERT run once per entry by the driver (`executemany`)."""
        checked = audit_texts(items)
        if not checked:
            return 0
        with self._tx(write=True) as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                at = common.now(self._clock)
                copy_rows(connection, "audit_log", _AUDIT_COLUMNS, ((at, *e) for e in checked))
                return len(checked)
            at = _audit_time(connection.dialect, common.now(self._clock))
            marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            connection.exec_driver_sql(
                _AUDIT_INSERT.format(m=marker), [(at, *entry) for entry in checked]
            )
        return len(checked)

    def list_audit(
        self, *, limit: int = 100, object_id: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]:
        """The newest entries first; `before_id` pages back through older ones."""
        common.check_limit(limit)
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if object_id is not None:
            query = query.where(AuditRow.object_id == object_id)
        if before_id is not None:
            before = common.check_row_number(before_id, "before_id")
            query = query.where(AuditRow.id < before)
        with self._tx(write=False) as session:
            return [to_audit(row) for row in session.scalars(query)]

    def search_audit(self, query: AuditQuery, *, limit: int = 100) -> list[AuditEntry]:
        """The entries `query` selects, newest first (`_query_rules.matches_audit`)."""
        common.check_limit(limit)
        query = query_rules.check_audit_query(query)
        statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        for column, value in (
            (AuditRow.actor, query.actor),
            (AuditRow.object_type, query.object_type),
            (AuditRow.object_id, query.object_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.action_prefix is not None:
            prefix = query.action_prefix.replace("\\", "\\\\").replace("%", "\\%")
            prefix = prefix.replace("_", "\\_")
            statement = statement.where(AuditRow.action.like(prefix + "%", escape="\\"))
        if query.since is not None:
            statement = statement.where(AuditRow.at >= query.since)
        if query.until is not None:
            statement = statement.where(AuditRow.at < query.until)
        if query.before_id is not None:
            statement = statement.where(AuditRow.id < query.before_id)
        with self._tx(write=False) as session:
            return [to_audit(row) for row in session.scalars(statement)]

    def prune_audit(self, *, log: str, before: datetime, actor: str) -> int:
        """Delete in batches of `PRUNE_BATCH`, each its own transaction, so that writers
        wait at most one batch; the `audit.prune` entry comes last."""
        common.check_log(log)
        common.check_audit(actor, "audit.prune", "log", log, None)
        decided = or_(
            AuditRow.action.in_(DECISION_ACTIONS),
            *(AuditRow.action.startswith(p) for p in DECISION_ACTION_PREFIXES),
        )
        kind = decided if log == DECISION_LOG else not_(decided)
        oldest = select(AuditRow.id).where(AuditRow.at < before, kind).limit(PRUNE_BATCH)
        removed = 0
        while True:
            with self._tx(write=True) as session:
                result = session.execute(
                    delete(AuditRow).where(AuditRow.id.in_(oldest.scalar_subquery()))
                )
                gone = getattr(result, "rowcount", 0)
            removed += int(gone or 0)
            if not gone:
                break
        details = {"before": before.isoformat(), "removed": removed}
        self.record_audit(
            actor=actor, action="audit.prune", object_type="log", object_id=log, details=details
        )
        return removed
