"""Engines for the SQL store, and database errors turned into pbgm errors.

SQLite: a database file is created only by an engine made with `create=True` (what
`pbgm db upgrade` uses), mode 0600 (its `-wal` and `-shm` files follow the database
file's mode); any other engine refuses a missing file with the command to run, so a
misspelled path never leaves an empty database behind. WAL journal, foreign keys on, a busy timeout,
and transactions begun by
SQLAlchemy rather than the `sqlite3` module (whose legacy mode skips `BEGIN` for
reads and savepoints). A write transaction begins with `BEGIN IMMEDIATE`, so two
writers queue on the busy timeout instead of failing on a lock upgrade.

PostgreSQL: through psycopg 3; `postgresql://` and `postgres://` are rewritten to
`postgresql+psycopg://`.

URLs only ever appear with the password hidden.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from pbgm.errors import (
    AlreadyExistsError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

WRITE_OPTION = "pbgm_write"
"""Connection execution option: begin the transaction as a writer."""

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
_SCHEMA_HINT = "run `pbgm db upgrade`"


def database_url(url: str | URL) -> URL:
    """Parse `url`, pointing PostgreSQL URLs at the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError("the database url cannot be read") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in logs and messages: password hidden."""
    return database_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, *, create: bool = False, **options: Any) -> Engine:
    """An engine for SQLite or PostgreSQL, set up as this module describes; `create`
    lets it create a missing SQLite file."""
    parsed = database_url(url)
    log.debug("opening policy repository at %s", parsed.render_as_string(hide_password=True))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, create=create, **options)
    if backend == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **options)
    raise ConfigurationError(f"unsupported database `{backend}`; use sqlite or postgresql")


def _create_private(path: str) -> None:
    """Create the database file readable by its owner only, unless it exists already."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


def _sqlite_engine(url: URL, *, create: bool, **options: Any) -> Engine:
    engine = create_engine(url, **options)
    in_memory = url.database in (None, "", ":memory:") or str(url.database).startswith("file:")

    @event.listens_for(engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        """On first use, not when the engine is made: an app factory touches no disk."""
        if not in_memory and url.database and not create:
            if not os.path.exists(url.database):
                raise ConfigurationError(
                    f"there is no database file `{url.database}`; {_SCHEMA_HINT} to create it"
                )
        elif not in_memory and url.database:
            try:
                _create_private(url.database)
            except OSError as error:
                raise ConfigurationError(
                    f"the database file `{url.database}` cannot be created: {error.strerror}"
                ) from None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS:d}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Turn database errors into pbgm errors; messages carry no credentials.

    `where` is the URL with its password hidden (see `safe_url`).
    """
    try:
        yield
    except PbgmError:
        raise
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc
    except DataError as exc:  # a value the database cannot hold: out of range, a NUL
        raise InvalidInputError(
            "a value is out of the range the policy repository holds", code="out_of_range"
        ) from exc
    except (OperationalError, InterfaceError, ProgrammingError) as exc:
        if _missing_schema(exc):
            raise ConfigurationError(
                f"the policy repository at `{where}` has no or an old schema; {_SCHEMA_HINT}"
            ) from exc
        raise StoreUnavailableError(f"cannot use the policy repository at `{where}`") from exc


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


def _integrity_error(exc: IntegrityError) -> PbgmError:
    text = str(exc.orig).lower()
    state = _sqlstate(exc)
    if state == "23505" or "unique constraint" in text:
        return AlreadyExistsError("the object already exists")
    if state == "23503" or "foreign key constraint" in text:
        return NotFoundError("an object the change refers to does not exist")
    return InvalidInputError("the change breaks a rule of the policy repository")


def _missing_schema(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return (
        _sqlstate(exc) in ("42P01", "42703") or "no such table" in text or "no such column" in text
    )
