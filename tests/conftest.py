"""Fixtures shared by every test package: real services, or a clear skip.

`require_service(name, reason)` skips a test whose service is missing, except in
CI (`CI=true`), where a missing service fails the run instead of hiding tests.

PostgreSQL: `PBGM_TEST_POSTGRES_URL` names a server and a database to connect to
(default `postgresql://postgres@127.0.0.1:5432/test`, trust auth); the
`postgres_url` fixture creates a fresh database `pbgm_test_<random>` on it for
the test session and drops it at the end.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from pbgm.bus import Bus

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_BROKER = ("127.0.0.1", 1883)
"""The machine's Mosquitto: anonymous, plain TCP (tests that need TLS start their own)."""


def require_service(name: str, reason: str) -> NoReturn:
    """Skip the test because `name` is missing; fail instead when `CI=true`."""
    message = f"{name} {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (a missing service fails the run in CI)", pytrace=False)
    pytest.skip(message)


def require_local_broker() -> None:
    """Skip the test (fail it when `CI=true`) unless the local Mosquitto accepts connections."""
    host, port = LOCAL_BROKER
    try:
        socket.create_connection(LOCAL_BROKER, timeout=2).close()
    except OSError:
        hint = "install and start mosquitto (Debian: apt-get install mosquitto)"
        require_service("mosquitto", f"not reachable at {host}:{port}: {hint}")


@pytest.fixture
def buses() -> Iterator[list[Bus]]:
    """Buses a test opens on the local broker (`adapters.mqtt`), closed after it."""
    pytest.importorskip("adapters.mqtt", reason="the MQTT adapter is not installed")
    require_local_broker()
    opened: list[Bus] = []
    yield opened
    for bus in opened:
        bus.close()


def _libpq(url: str) -> str:
    """A URL libpq accepts (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of a reachable PostgreSQL server (the admin database on it)."""
    url = os.environ.get("PBGM_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.Error:
        require_service(
            "PostgreSQL",
            f"not reachable at {shown}: install postgresql or set PBGM_TEST_POSTGRES_URL",
        )
    return url


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """Create `pbgm_test_<random>` on the server; yield its URL; drop it afterwards."""
    name = f"pbgm_test_{secrets.token_hex(6)}"
    admin = _libpq(server_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            connection.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for this test session (dropped at the end)."""
    with fresh_postgres_database(postgres_server_url) as url:
        yield url
