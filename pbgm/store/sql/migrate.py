"""Schema migrations from code: what `pbgm db upgrade` and the tests call.

The Alembic configuration is built here, pointing at the `migrations` directory
installed next to the `pbgm` package (in a wheel and in a source checkout alike),
so it works from any working directory and needs no `alembic.ini`. The open
connection is handed to `migrations/env.py`, so the URL (and its password) never
goes into a configuration file or a log.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
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
from pbgm.store.sql.engine import WRITE_OPTION, make_engine, translate_errors
from pbgm.store.sql.tables import metadata

_MARKER = Path("versions") / "0001_initial.py"


def script_location() -> Path:
    """The `migrations` directory shipped with pbgm."""
    candidates = [Path(pbgm.__file__).resolve().parent.parent / "migrations"]
    spec = importlib.util.find_spec("migrations")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    for candidate in candidates:
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
def _connect(url_or_engine: str | Engine) -> Iterator[Connection]:
    """A connection in a writing transaction; the engine is disposed if made here."""
    owned = not isinstance(url_or_engine, Engine)
    engine = url_or_engine if isinstance(url_or_engine, Engine) else make_engine(url_or_engine)
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
    with _connect(url) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(url: str | Engine, revision: str) -> None:
    """Take the schema back to `revision` (`base` removes every pbgm table)."""
    with _connect(url) as connection:
        command.downgrade(alembic_config(connection), revision)


def current(url: str | Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with _connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    """The newest revision the installed migrations know."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_drift(url: str | Engine) -> list[Any]:
    """Differences between the database and the table definitions; empty when in step."""
    with _connect(url) as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))
