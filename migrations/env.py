"""Alembic environment for pbgm: the schema of `pbgm.store.sql.tables`.

`pbgm.store.sql.migrate` hands over an open connection (`config.attributes
["connection"]`). Developers running the `alembic` command instead name the
database with `-x url=...` or `PBGM_DATABASE_URL`.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from pbgm.store.sql.tables import metadata

config = context.config


def _configure(**options: Any) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)


def _developer_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("PBGM_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("name the database: alembic -x url=... or PBGM_DATABASE_URL=...")
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run_offline() -> None:
    _configure(url=_developer_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    batch = connection.dialect.name == "sqlite"  # SQLite alters tables by copying them
    _configure(connection=connection, render_as_batch=batch)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_developer_url())
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
