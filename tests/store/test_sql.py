"""What only the SQL store has: URLs, engines, database errors, constraints in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from pbgm.errors import ConfigurationError, StoreUnavailableError
from pbgm.store import MemoryStore, Store, open_store
from pbgm.store.sql import SqlStore, database_url, make_engine, safe_url
from tests.store.conftest import FakeClock, policy_doc

URLS = [
    ("postgresql goes through psycopg 3", "postgresql://u@h/db", "postgresql+psycopg"),
    ("the postgres alias too", "postgres://u@h/db", "postgresql+psycopg"),
    ("an explicit driver is kept", "postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ("sqlite is left alone", "sqlite:///pbgm.db", "sqlite"),
]


@pytest.mark.parametrize(("what", "url", "driver"), URLS, ids=[u[0] for u in URLS])
def test_database_urls(what: str, url: str, driver: str) -> None:
    assert database_url(url).drivername == driver


def test_safe_url_hides_the_password() -> None:
    shown = safe_url("postgresql://pbgm:s3cr3t@db.example:5432/pbgm")
    assert "s3cr3t" not in shown and shown == "postgresql+psycopg://pbgm:***@db.example:5432/pbgm"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_or_unreadable_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        make_engine(url)


def test_an_unreachable_database_is_unavailable_without_credentials() -> None:
    store = SqlStore("postgresql://pbgm:s3cr3t@127.0.0.1:1/pbgm")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            store.revision()
    finally:
        store.close()
    assert caught.value.code == "store_unavailable"
    assert "s3cr3t" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_an_unmigrated_database_says_to_upgrade(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigurationError, match="pbgm db upgrade"):
        store.create_policy(policy_doc(), actor="alice")
    store.close()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        pragmas = [
            connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    engine.dispose()
    assert pragmas == ["wal", 1, 30_000]


def test_data_outlives_the_store_object(sqlite_url: str, clock: FakeClock) -> None:
    first = SqlStore(sqlite_url, clock=clock)
    created = first.create_policy(policy_doc(), actor="alice")
    first.close()
    second = SqlStore(sqlite_url, clock=clock)
    assert second.get_policy("p1") == created and second.revision() == 1
    second.close()


def test_open_store_picks_the_implementation(sqlite_url: str) -> None:
    memory = open_store("memory://")
    sql = open_store(sqlite_url)
    assert isinstance(memory, MemoryStore) and isinstance(sql, SqlStore)
    assert isinstance(memory, Store) and isinstance(sql, Store)
    sql.close()


CONSTRAINT_BREAKERS = [
    (
        "a membership of an unknown user",
        "INSERT INTO memberships (group_name, user_name) VALUES ('g', 'nobody')",
    ),
    (
        "a grant whose principal column does not match its kind",
        "INSERT INTO grants (principal_kind, principal, group_name, target_kind, target,"
        " permission, enabled, created_by, created_at)"
        " VALUES ('user', 'g', 'g', 'policy', 'p', 'read', true, 'x', CURRENT_TIMESTAMP)",
    ),
    (
        "a second revision row",
        "INSERT INTO repository_revision (id, revision) VALUES (2, 0)",
    ),
    (
        "an unknown policy status",
        "INSERT INTO policies (id, type, policy_group, status, version, document_format,"
        " document, created_at, updated_at, updated_by) VALUES ('p', 't', 'g', 'live', 1,"
        " 'pbgm/v1', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'x')",
    ),
]


@pytest.mark.parametrize(
    ("what", "statement"), CONSTRAINT_BREAKERS, ids=[c[0] for c in CONSTRAINT_BREAKERS]
)
def test_the_schema_itself_refuses(sql_store: SqlStore, what: str, statement: str) -> None:
    with sql_store.engine.begin() as connection:
        connection.execute(text("INSERT INTO groups (name, description) VALUES ('g', '')"))
    with pytest.raises(IntegrityError), sql_store.engine.begin() as connection:
        connection.execute(text(statement))
