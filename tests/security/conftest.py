"""A live pbgm server for the attack suite: `pbgm serve`, two gunicorn workers, on SQLite
and on PostgreSQL, started once per backend for the whole package.

The repository holds the example bundle and the callers of `tests.api.conftest`
(their secret is `SECRET`), plus what the attacks need:

==================  ==================================  ===============================
client id           scopes                              grants
==================  ==================================  ===============================
svc-b-admin         admin, policies:read                admin on `data-sharing` (group B)
==================  ==================================  ===============================

`svc-limits-admin` is the group-A administrator (admin on `operational-limits`).
The server trusts one proxy hop (`PBGM_PROXY_HOPS=1`) and stops requests after
`REQUEST_TIMEOUT` seconds; the rate limit is raised so that the route walk is
not refused (the default limit is tested in `tests/api`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.bundle import import_bundle, read_bundle
from pbgm.model import Permission
from pbgm.store import Grant, ServiceAccount
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade
from tests.api.conftest import EXAMPLES, SECRET, Reply, http_call, seed
from tests.conftest import fresh_postgres_database

REQUEST_TIMEOUT = 10
CLIENT_TIMEOUT = 20.0
"""A request the server has not answered by then counts as the server being stuck."""
GROUP_A, GROUP_B = "operational-limits", "data-sharing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Live:
    """A running `pbgm serve` and raw HTTP calls to it."""

    def __init__(self, db: str, directory: Path) -> None:
        self.db, self.directory = db, directory
        self.keys = directory / "keys"
        self.port = free_port()
        self.tokens: dict[str, str] = {}
        env = {
            **os.environ,
            "PBGM_KEYS_DIR": str(self.keys),
            "PBGM_PROXY_HOPS": "1",
            "PBGM_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "PBGM_RATE_LIMIT": "100000/minute",
        }
        command = [sys.executable, "-m", "pbgm", "--db", db, "serve", "--workers", "2"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        self.log = (directory / "serve.log").open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pbgm serve exited: {self.output()}")
            try:
                if self.call("GET", "/readyz").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"pbgm serve did not become ready: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.directory / "serve.log").read_text(errors="replace")[-4000:]

    def raw(self, data: bytes) -> bytes:
        """Bytes sent as they are (no client library to fix them up); the whole answer."""
        chunks: list[bytes] = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT) as conn:

            def read() -> None:  # as it arrives: a server may answer before the body ends
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(65536):
                        chunks.append(chunk)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.sendall(data)  # refused early: the server answered and closed
            reader.join(CLIENT_TIMEOUT)
        return b"".join(chunks)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        return http_call(
            self.port, method, path, params=params, body=body, headers=headers,
            timeout=CLIENT_TIMEOUT,
        )  # fmt: skip

    def login(
        self, client_id: str, secret: str = SECRET, *, forwarded_for: str | None = None
    ) -> Reply:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}",
        }
        if forwarded_for is not None:
            headers["X-Forwarded-For"] = forwarded_for
        return self.call("POST", "/api/v1/token", "grant_type=client_credentials", headers)

    def token(self, client_id: str) -> str:
        if client_id not in self.tokens:
            reply = self.login(client_id)
            assert reply.status == 200, reply.body
            self.tokens[client_id] = reply.json["access_token"]
        return self.tokens[client_id]

    def as_caller(
        self,
        caller: str | None,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if caller is not None:
            sent["Authorization"] = f"Bearer {self.token(caller)}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.call(method, path, data, sent, params)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _prepare(db: str, directory: Path) -> None:
    upgrade(db)
    store = SqlStore(db)
    try:
        import_bundle(store, read_bundle(EXAMPLES / "policies"), actor="seed", publish=True)
        seed(store)
        account = ServiceAccount("svc-b-admin", hash_secret(SECRET), ("admin", "policies:read"))
        store.add_service_account(account, actor="seed")
        grant = Grant("service", "svc-b-admin", "policy_group", GROUP_B, Permission.ADMIN)
        store.add_grant(grant, actor="seed")
    finally:
        store.close()
    KeyRing(directory / "keys").generate()


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """The live server of one backend, shared by the whole package."""
    directory = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "sqlite":
        with _serving(f"sqlite:///{directory / 'pbgm.db'}", directory) as served:
            yield served
        return
    server_url = request.getfixturevalue("postgres_server_url")
    with fresh_postgres_database(server_url) as url, _serving(url, directory) as served:
        yield served


class _serving:  # a context manager used like a function
    def __init__(self, db: str, directory: Path) -> None:
        _prepare(db, directory)
        self.live = Live(db, directory)

    def __enter__(self) -> Live:
        try:
            self.live.wait_ready()
        except BaseException:
            self.live.stop()
            raise
        return self.live

    def __exit__(self, *exc: object) -> None:
        self.live.stop()
