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

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, not_, or_, select, update
from sqlalchemy.orm import Session

from pbgm.errors import ConfigurationError
from pbgm.model import Clock
from pbgm.store import _common as common
from pbgm.store.base import (
    DECISION_ACTION_PREFIXES,
    DECISION_ACTIONS,
    DECISION_LOG,
    AuditEntry,
)
from pbgm.store.sql.mapping import audit_row, to_audit
from pbgm.store.sql.tables import AuditRow, RevisionRow

_REVISION = cast(Table, RevisionRow.__table__)
PRUNE_BATCH = 5000
_NO_REVISION = "the policy repository has no revision row; run `pbgm db upgrade`"


class SqlBase:
    """Shared machinery of `SqlStore` and its atomic view."""

    _clock: Clock
    _where: str  # the database URL with its password hidden

    def _tx(self, *, write: bool) -> AbstractContextManager[Session]:
        """A session in a transaction (or savepoint) for one operation."""
        raise NotImplementedError

    def _begin_change(self, session: Session) -> datetime:
        """Bump the revision (taking the writers' lock) and return the change's time."""
        bumped = session.execute(
            update(_REVISION)
            .where(_REVISION.c.id == 1)
            .values(revision=_REVISION.c.revision + 1)
            .returning(_REVISION.c.revision)
        ).scalar_one_or_none()
        if bumped is None:
            raise ConfigurationError(_NO_REVISION)
        return common.now(self._clock)

    @staticmethod
    def _audit(
        session: Session, at: datetime, actor: str, action: str, kind: str, oid: str, details: Any
    ) -> AuditRow:
        row = audit_row(at, actor, action, kind, oid, common.to_json(details))
        session.add(row)
        return row

    def revision(self) -> int:
        with self._tx(write=False) as session:
            value = session.execute(select(RevisionRow.revision).where(RevisionRow.id == 1))
            revision = value.scalar_one_or_none()
        if revision is None:
            raise ConfigurationError(_NO_REVISION)
        return int(revision)

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
