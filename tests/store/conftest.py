"""The `store` fixture: one contract suite, run against every Store implementation.

- memory: a `MemoryStore`.
- sqlite: a real SQLite file in `tmp_path`. The schema is made once per session by
  the Alembic migrations from an empty file; each test gets its own copy of that
  file (copying is much faster than migrating for every test).
- postgres: a database made for the session (see `tests/conftest.py`) and migrated
  with Alembic; every table is emptied before each test.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from pbgm.store import MemoryStore, Store
from pbgm.store.sql import SqlStore, make_engine
from pbgm.store.sql.migrate import upgrade

START = datetime(2026, 1, 1, tzinfo=UTC)
# Children before parents; DELETE is much faster than TRUNCATE on tiny tables.
TABLES = (
    "grants", "memberships", "policy_versions", "published_policies", "policies",
    "policy_groups", "users", "groups", "service_accounts", "audit_log", "decision_changes",
)  # fmt: skip


class FakeClock:
    """Ticks one second per call, from 2026-01-01T00:00:00Z; thread-safe."""

    def __init__(self) -> None:
        self._now = START
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now

    @property
    def last(self) -> datetime:
        return self._now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated from empty with Alembic, to be copied per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "pbgm.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def empty_postgres(engine: Engine) -> None:
    """Every table emptied, ids restarting at 1, the revisions back to 0."""
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
        for table in ("grants", "audit_log"):
            restart = "SELECT setval(pg_get_serial_sequence(:table, 'id'), 1, false)"
            connection.execute(text(restart), {"table": table})
        reset = "revision = 0, decision_revision = 0, access_revision = 0"
        connection.execute(text(f"UPDATE repository_revision SET {reset}"))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "pbgm.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _sql_store(request: pytest.FixtureRequest, kind: str, clock: FakeClock) -> SqlStore:
    if kind == "sqlite":
        return SqlStore(request.getfixturevalue("sqlite_url"), clock=clock)
    engine = request.getfixturevalue("postgres_engine")
    empty_postgres(engine)
    return SqlStore(engine, clock=clock)


POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Store]:
    """Each Store implementation in turn, empty, on the fake clock."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    sql_store = _sql_store(request, request.param, clock)
    yield sql_store
    sql_store.close()


@pytest.fixture(params=["sqlite", POSTGRES])
def sql_store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[SqlStore]:
    """Each SQL backend in turn, for what only the SQL store has."""
    store = _sql_store(request, request.param, clock)
    yield store
    store.close()


def policy_doc(policy_id: str = "p1", **fields: Any) -> dict[str, Any]:
    """A minimal pbgm/v1 document; the store does not validate beyond its keys."""
    doc: dict[str, Any] = {
        "format": "pbgm/v1",
        "id": policy_id,
        "type": "operational_limits",
        "policy_group": "voltage-control",
        "asset_id": "bess-01",
        "rules": [{"id": "r1", "effect": "Permit"}],
        "content": {"v_min_pu": 0.95, "v_max_pu": 1.05, "tags": ["a", "b"]},
    }
    doc.update(fields)
    return doc


def table_ids(table: list[tuple[Any, ...]]) -> list[str]:
    """Test ids from the first column of a parametrize table."""
    return [row[0] for row in table]


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a store exposes, to compare before and after."""
    policies = store.list_policies()
    return {
        "revision": store.revision(),
        "policies": policies,
        "versions": {p.id: store.policy_versions(p.id) for p in policies},
        "policy_groups": store.list_policy_groups(),
        "users": store.list_users(),
        "groups": store.list_groups(),
        "members": {g.name: store.members_of(g.name) for g in store.list_groups()},
        "services": store.list_service_accounts(),
        "grants": store.list_grants(),
        "audit": store.list_audit(limit=1000),
    }
