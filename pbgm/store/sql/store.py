"""`SqlStore`: the Policy Repository on SQLite or PostgreSQL.

One session per operation; `atomic()` yields a view whose calls share one session
and transaction, each call in its own savepoint so that a call that raises (and is
caught inside the block) leaves no trace of itself. The schema is made by the
migrations (`pbgm.store.sql.migrate`), never here.

A view is for the thread that opened it; the store itself may be shared by threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pbgm.errors import ConfigurationError, NotFoundError, UnsupportedOperationError
from pbgm.model import Clock, utc_now
from pbgm.store.base import Revisions, Store
from pbgm.store.sql._base import _NO_REVISION
from pbgm.store.sql._devices import SqlDevices
from pbgm.store.sql._flexoffers import SqlFlexOffers
from pbgm.store.sql._policies import SqlPolicies
from pbgm.store.sql._principals import SqlPrincipals
from pbgm.store.sql._published import SqlPublished
from pbgm.store.sql.engine import WRITE_OPTION, make_engine, translate_errors
from pbgm.store.sql.listen import DecisionListener

_REVISION_SQL = (
    "SELECT revision, decision_revision, access_revision FROM repository_revision WHERE id = 1"
)
_GROUPS_SQL = (
    "SELECT d.id, m.group_id FROM devices d LEFT JOIN device_members m ON m.device_id = d.id "
    "WHERE d.id = {0} ORDER BY m.group_id"
)


class _SqlOperations(SqlPolicies, SqlPublished, SqlPrincipals, SqlFlexOffers, SqlDevices):
    """Every `Store` operation, over whatever `_tx` provides."""


class SqlStore(_SqlOperations):
    """A `Store` over SQLAlchemy. Pass an engine (kept open on `close()`) or a URL
    (the store makes the engine with `make_engine` and disposes it on `close()`)."""

    def __init__(self, engine_or_url: Engine | str, clock: Clock = utc_now) -> None:
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self._engine = (
            engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
        )
        self._where = self._engine.url.render_as_string(hide_password=True)
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"SqlStore({self._where!r})"

    @contextmanager
    def _tx(self, *, write: bool, snapshot: bool = False) -> Iterator[Session]:
        options: dict[str, Any] = {WRITE_OPTION: write}
        if snapshot and self._engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with translate_errors(self._where), Session(self._engine, expire_on_commit=False) as s:
            s.connection(execution_options=options)  # BEGIN (IMMEDIATE on SQLite)
            yield s
            s.commit()

    def revision(self) -> int:
        return self.revisions().repository

    def listen_decisions(self) -> DecisionListener | None:
        """A connection that hears of each change of the decision revision as it is
        committed (`pbgm.store.sql.listen`), on PostgreSQL; None on other databases."""
        if self._engine.dialect.name != "postgresql":
            return None
        with translate_errors(self._where):
            return DecisionListener(self._engine)

    def revisions(self) -> Revisions:
        """The repository's revisions, read on a bare pooled DBAPI connection.

        Servers and decision points read them often (to notice any change made
        elsewhere), so this skips the ORM session and statement compilation: one
        indexed single-row SELECT, about 10 us on SQLite. Errors are translated as usual.
        """
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        with translate_errors(self._where):
            try:
                connection = self._engine.raw_connection()
                try:
                    cursor = connection.cursor()
                    cursor.execute(_REVISION_SQL)
                    row = cursor.fetchone()
                    cursor.close()
                finally:
                    connection.close()
            except dbapi_error as error:
                raise DBAPIError.instance(_REVISION_SQL, None, error, dbapi_error) from error
        if row is None:
            raise ConfigurationError(_NO_REVISION)
        return Revisions(int(row[0]), int(row[1]), int(row[2]))

    def device_groups_of(self, device_id: str) -> list[str]:
        """A device's groups on a bare pooled DBAPI connection, as `revision()` reads:
        a group action asks it for every member just before its call (membership
        changes during the action), so it skips the ORM session. No row: no device."""
        marker = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        sql = _GROUPS_SQL.format(marker)
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        with translate_errors(self._where):
            try:
                connection = self._engine.raw_connection()
                try:
                    cursor = connection.cursor()
                    cursor.execute(sql, (device_id,))
                    rows = cursor.fetchall()
                    cursor.close()
                    connection.commit()
                finally:
                    connection.close()
            except dbapi_error as error:
                raise DBAPIError.instance(sql, None, error, dbapi_error) from error
        if not rows:
            raise NotFoundError(f"device `{device_id}` not found")
        return [group for _, group in rows if group is not None]

    @contextmanager
    def atomic(self) -> Iterator[Store]:
        """One transaction for every call made through the yielded view."""
        with self._tx(write=True) as session:
            view = _AtomicView(session, self._clock, self._where)
            try:
                yield view
            finally:
                view._active = False

    def close(self) -> None:
        """Release the connections, if this store made the engine."""
        if self._owns_engine:
            self._engine.dispose()


class _AtomicView(_SqlOperations):
    """The store as seen inside `atomic()`: one shared session, a savepoint per call."""

    def __init__(self, session: Session, clock: Clock, where: str) -> None:
        self._session = session
        self._clock = clock
        self._where = where
        self._active = True

    @contextmanager
    def _tx(self, *, write: bool, snapshot: bool = False) -> Iterator[Session]:
        if not self._active:
            raise UnsupportedOperationError("the atomic block has ended; use the store itself")
        try:
            with translate_errors(self._where):
                if write:
                    with self._session.begin_nested():
                        yield self._session
                else:
                    yield self._session
        finally:
            # Rows never outlive a call: a later call in the same view must not
            # meet stale objects (deleted by a bulk statement, or rolled back).
            self._session.expunge_all()

    @contextmanager
    def atomic(self) -> Iterator[Store]:
        """A nested block: a savepoint inside the enclosing transaction."""
        with self._tx(write=True) as session:
            view = _AtomicView(session, self._clock, self._where)
            try:
                yield view
            finally:
                view._active = False

    def close(self) -> None:
        raise UnsupportedOperationError("close the store, not the view of an atomic block")
