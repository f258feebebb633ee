"""Alembic migrations from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from pbgm.policy.published import unpack
from pbgm.store.sql import SqlStore, make_engine
from pbgm.store.sql.migrate import check_drift, current, downgrade, head, upgrade
from pbgm.store.sql.tables import metadata
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server_url")) as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_reaches_head_without_drift(empty_url: str) -> None:
    assert current(empty_url) is None
    upgrade(empty_url)
    assert current(empty_url) == head() == "0009_packed_published"
    assert check_drift(empty_url) == []
    assert _tables(empty_url) == set(metadata.tables) | {"alembic_version"}
    store = SqlStore(empty_url)
    assert store.revision() == 0
    store.close()


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(empty_url: str) -> None:
    upgrade(empty_url)
    downgrade(empty_url, "base")
    assert current(empty_url) is None
    assert _tables(empty_url) <= {"alembic_version"}
    upgrade(empty_url)
    assert current(empty_url) == head() and check_drift(empty_url) == []


def test_drift_is_detected(empty_url: str) -> None:
    upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_policies_status")
    engine.dispose()
    drift = check_drift(empty_url)
    assert [change[0] for change in drift] == ["add_index"]


def test_migrations_run_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    upgrade(url)
    assert current(url) == head()


def test_accounts_made_before_the_token_generation_get_a_distinct_one(empty_url: str) -> None:
    upgrade(empty_url, "0002")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        for client_id in ("svc-a", "svc-b"):
            connection.exec_driver_sql(
                "INSERT INTO service_accounts (client_id, secret_hash, scopes, enabled, "
                "description, created_at) VALUES (%s, 'x', '[]', true, '', "
                "'2026-01-01 00:00:00+00:00')".replace("%s", f"'{client_id}'")
            )
    engine.dispose()
    upgrade(empty_url)
    store = SqlStore(empty_url)
    generations = {a.client_id: a.token_generation for a in store.list_service_accounts()}
    store.close()
    assert set(generations) == {"svc-a", "svc-b"}
    assert all(len(g) >= 16 for g in generations.values())
    assert generations["svc-a"] != generations["svc-b"]
    assert check_drift(empty_url) == []


def test_policies_published_before_0005_are_read_by_decision_points(empty_url: str) -> None:
    """0005_scale fills `published_policies` from the policies published before it."""
    import json

    from sqlalchemy import text

    upgrade(empty_url, "0002")
    document = {
        "format": "pbgm/v1", "id": "p1", "type": "operational_limits", "policy_group": "g",
        "description": "left out", "target": {"resource": {"id": "r1"}},
        "rules": [{"id": "r", "effect": "Permit", "description": "left out"}],
        "valid_from": "2026-01-01T00:00:00Z", "content": {"left": "out"},
    }  # fmt: skip
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO policies (id, type, policy_group, status, version, document_format,"
                " document, published_version, created_at, updated_at, updated_by) VALUES"
                " ('p1', 'operational_limits', 'g', 'published', 1, 'pbgm/v1', :doc, 1,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'x')"
            ),
            {"doc": json.dumps(document)},
        )
        connection.execute(
            text(
                "INSERT INTO policy_versions (policy_id, version, document, author, created_at,"
                " reason, action) VALUES ('p1', 1, :doc, 'x', CURRENT_TIMESTAMP, '', 'create')"
            ),
            {"doc": json.dumps(document)},
        )
    engine.dispose()
    upgrade(empty_url)
    store = SqlStore(empty_url)
    read = store.read_published("g")
    store.close()
    (published,) = read.policies
    assert published.document[:1] == b"\x01"  # packed by 0009_packed_published
    assert json.loads(unpack(published.document)) == {
        "format": "pbgm/v1", "id": "p1", "type": "operational_limits", "policy_group": "g",
        "target": {"resource": {"id": "r1"}}, "rules": [{"id": "r", "effect": "Permit"}],
        "valid_from": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert (published.version, published.windowed, published.timed) == (1, True, False)
    assert json.loads(published.target or "") == {"resource": {"id": "r1"}}
    downgrade(empty_url, "0007_devices")  # back to the text 0005 wrote
    engine = make_engine(empty_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT document FROM published_policies")).scalar()
    engine.dispose()
    assert isinstance(stored, str) and json.loads(stored) == json.loads(unpack(published.document))
    upgrade(empty_url)
    store = SqlStore(empty_url)
    assert store.read_published("g").policies == read.policies
    store.close()
