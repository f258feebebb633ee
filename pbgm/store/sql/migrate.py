"""Schema migrations from code: what `pbgm db upgrade` and the tests call.

The Alembic configuration is built here, pointing at the migrations shipped with
pbgm: `pbgm/_migrations` in an installed wheel, the top-level `migrations`
directory in a source checkout. It works from any working directory and needs no
`alembic.ini`. The open
connection is handed to `migrations/env.py`, so the URL (and its password) never
goes into a configuration file or a log.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

import pbgm
from pbgm.errors import ConfigurationError
from pbgm.store.sql.engine import (
    WRITE_OPTION,
    database_url,
    make_engine,
    safe_url,
    translate_errors,
)
from pbgm.store.sql.tables import metadata

_MARKER = Path("versions") / "0001_initial.py"


def script_location() -> Path:
    """The migrations directory shipped with pbgm (wheel, then source checkout)."""
    package = Path(pbgm.__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file() and (candidate / _MARKER).is_file():
            return candidate
    raise ConfigurationError("the pbgm migrations are not installed next to the pbgm package")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` built in code; `connection` is used by `env.py` if given."""
    config = Config()
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _connect(url_or_engine: str | Engine, *, create: bool = False) -> Iterator[Connection]:
    """A connection in a writing transaction; the engine is disposed if made here (and
    may then create a missing SQLite file when `create`)."""
    owned = not isinstance(url_or_engine, Engine)
    engine = (
        url_or_engine
        if isinstance(url_or_engine, Engine)
        else make_engine(url_or_engine, create=create)
    )
    where = engine.url.render_as_string(hide_password=True)
    try:
        with translate_errors(where), engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection
    finally:
        if owned:
            engine.dispose()


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Bring the database schema up to `revision` (default: the newest)."""
    with _connect(url, create=True) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(url: str | Engine, revision: str) -> None:
    """Take the schema back to `revision` (`base` removes every pbgm table)."""
    with _connect(url) as connection:
        command.downgrade(alembic_config(connection), revision)


def current(url: str | Engine) -> str | None:
    """The revision the database is at, or None for an empty (or missing) database.

    Reads only: a missing SQLite file is not created.
    """
    if isinstance(url, str) and _missing_sqlite_file(url):
        return None
    with _connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    """The newest revision the installed migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass(frozen=True, slots=True)
class Revision:
    """One migration: its id, the one before it, what it does."""

    id: str
    down_revision: str | None
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "down_revision": self.down_revision, "message": self.message}


def history() -> list[Revision]:
    """Every migration pbgm ships, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    found = [
        Revision(str(r.revision), _one(r.down_revision), (r.doc or "").strip().splitlines()[0])
        for r in script.walk_revisions()
    ]
    return list(reversed(found))


def _one(down: str | Sequence[str] | None) -> str | None:
    return down if down is None or isinstance(down, str) else ",".join(down)


def require_head(url: str) -> str:
    """The revision of the database at `url` when it is the newest; otherwise a
    `ConfigurationError` that says which command brings it there. Reads only."""
    shown = safe_url(url)
    at, newest = current(url), head()
    if at == newest:
        return str(at)
    command_line = f"pbgm --db '{shown}' db upgrade"
    if at is None:
        raise ConfigurationError(
            f"the database at `{shown}` has no pbgm schema (or does not exist); "
            f"create it with `{command_line}`"
        )
    raise ConfigurationError(
        f"the database at `{shown}` is at schema revision `{at}`, not at `{newest}`; "
        f"run `{command_line}`"
    )


def _missing_sqlite_file(url: str) -> bool:
    parsed = database_url(url)
    name = parsed.database
    return (
        parsed.get_backend_name() == "sqlite"
        and bool(name)
        and name != ":memory:"
        and not str(name).startswith("file:")
        and not Path(str(name)).exists()
    )


def check_drift(url: str | Engine) -> list[Any]:
    """Differences between the database and the table definitions; empty when in step."""
    with _connect(url) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        with warnings.catch_warnings():
            # PostgreSQL's trigram index (an expression, `ddl_if` PostgreSQL) is not made
            # on SQLite, whose reflection cannot compare expression indexes anyway.
            warnings.filterwarnings("ignore", message=r"autogenerate skipping .*expression-based")
            return list(compare_metadata(context, metadata))
