"""A real pbgm API on 127.0.0.1 for the REST tests, and the callers that use it.

One werkzeug server per test module listens on a free port; each test plugs in
its own app (`create_app` over a store holding the example bundle), so the
socket is real and a fresh repository costs little. Tokens come from the app's
own issuer (the token endpoint is tested with real secrets in `test_tokens.py`
and `test_api_admin.py`).

Callers (service accounts) of the world:

==================  ==========================================  =========================
client id           scopes                                      grants
==================  ==========================================  =========================
svc-admin           all                                         admin on `*` (global)
svc-limits-admin    admin, policies:read                        admin on operational-limits
svc-voltage         policies:read, decisions:write,             read on operational-limits
                    flexoffers:write                            and voltage-control
svc-market          policies:read, flexoffers:write             read on flexibility
svc-nobody          all                                         none
svc-metrics         metrics:read                                none
==================  ==========================================  =========================
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.client
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from pbgm.access import encode_id
from pbgm.api import create_app
from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.bundle import export_bundle
from pbgm.errors import NotFoundError
from pbgm.model import Permission, PolicyGroup
from pbgm.store import Grant, MemoryStore, ServiceAccount, Store, open_store
from pbgm.testing import FrozenClock, memory_store, sqlite_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the example FlexOffers are for this day
SECRET = "a-test-secret-of-the-world"
SECRET_HASH = hash_secret(SECRET)  # scrypt once per session
ALL_SCOPES = (
    "admin", "decisions:write", "flexoffers:write", "metrics:read", "policies:read",
    "devices:read", "devices:write", "devices:admin",
)  # fmt: skip

CALLERS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]] = {
    "svc-admin": (ALL_SCOPES, (("policy_group", "*", "admin"),)),
    "svc-limits-admin": (
        ("admin", "policies:read"),
        (("policy_group", "operational-limits", "admin"),),
    ),
    "svc-voltage": (
        ("policies:read", "decisions:write", "flexoffers:write"),
        (
            ("policy_group", "operational-limits", "read"),
            ("policy_group", "voltage-control", "read"),
        ),
    ),
    "svc-market": (
        ("policies:read", "flexoffers:write"),
        (("policy_group", "flexibility", "read"),),
    ),
    "svc-nobody": (ALL_SCOPES, ()),
    "svc-metrics": (("metrics:read",), ()),
}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """The stable `code` of a problem answer."""
        if self.headers.get("Content-Type") != "application/problem+json":
            return None
        return self.json["code"]


class Server:
    """A werkzeug server on a free port of 127.0.0.1; tests plug their app in."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.wsgi: BaseWSGIServer = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.port = self.wsgi.server_port
        self.thread = threading.Thread(target=self.wsgi.serve_forever, daemon=True)
        self.thread.start()

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "no app plugged in"
        return self.app(environ, start_response)

    def close(self) -> None:
        self.wsgi.shutdown()
        self.wsgi.server_close()
        self.thread.join()


def http_call(
    port: int,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One request over a fresh connection (no client-side magic). A server may answer
    a request it refuses (too large, not allowed) before its body has arrived, and
    close: the send then fails, and the answer is read all the same."""
    if params:
        path = f"{path}?{urlencode(params)}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body.encode() if isinstance(body, str) else body
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused early:
            connection.request(method, path, body=data, headers=dict(headers or {}))
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class World:
    """An app on the module's server, its store, and its callers."""

    server: Server
    app: Flask
    store: Store
    clock: FrozenClock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.app.extensions["pbgm"]

    def token(self, caller: str, scopes: tuple[str, ...] | None = None) -> str:
        """A token as the token endpoint issues it: bound to the account's generation."""
        if scopes is not None:
            return self.services.issuer.issue(caller, scopes, generation=self.generation(caller))
        if caller not in self.tokens:
            self.tokens[caller] = self.token(caller, CALLERS[caller][0])
        return self.tokens[caller]

    def generation(self, caller: str) -> str | None:
        try:
            return self.store.get_service_account(caller).token_generation
        except NotFoundError:
            return None

    def call(
        self,
        method: str,
        path: str,
        *,
        caller: str | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if caller is not None:
            sent.setdefault("Authorization", f"Bearer {self.token(caller)}")
        if json_body is not None:
            body = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        return http_call(self.server.port, method, path, params=params, body=body, headers=sent)

    def export(self) -> Any:
        """Everything the repository holds that a change could touch."""
        bundle = export_bundle(self.store)
        return (self.store.revision(), bundle, self.store.list_service_accounts())


def seed(store: Store) -> None:
    """The global-admin policy group and the callers of the module docstring."""
    store.put_policy_group(PolicyGroup("*", description="global administrators"), actor="seed")
    for client_id, (scopes, grants) in CALLERS.items():
        store.add_service_account(ServiceAccount(client_id, SECRET_HASH, scopes), actor="seed")
        for target_kind, target, permission in grants:
            grant = Grant("service", client_id, target_kind, target, Permission(permission))
            store.add_grant(grant, actor="seed")


def example_store(clock: FrozenClock, sqlite_path: Path | None = None) -> Store:
    """The example bundle, published, plus the callers; in memory or in SQLite.

    Built once per session and copied for each test (the state of a memory store,
    the file of a SQLite one): importing and hashing for every test would be slow.
    """
    if sqlite_path is None:
        store = MemoryStore(clock=clock)
        store._state = _memory_template().copy()
        return store
    shutil.copyfile(_sqlite_template(), sqlite_path)
    return open_store(f"sqlite:///{sqlite_path}", clock=clock)


@functools.cache
def _memory_template() -> Any:
    store = memory_store(EXAMPLES / "policies", clock=FrozenClock(NOW))
    seed(store)
    return store._state


@functools.cache
def _sqlite_template() -> Path:
    from pbgm.bundle import import_bundle, read_bundle

    directory = Path(tempfile.mkdtemp(prefix="pbgm-api-template-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    store = sqlite_store(directory / "template.db", clock=FrozenClock(NOW))
    import_bundle(store, read_bundle(EXAMPLES / "policies"), actor="seed", publish=True)
    seed(store)
    store.close()
    return directory / "template.db"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("api-keys")
    KeyRing(directory).generate()
    return directory


def make_world(
    server: Server,
    key_dir: Path,
    *,
    store: Store | None = None,
    clock: FrozenClock | None = None,
    pdp: Any = None,
    **settings: Any,
) -> World:
    clock = clock or FrozenClock(NOW)
    store = store if store is not None else example_store(clock)
    keyring = KeyRing(key_dir, clock=clock)
    app = create_app(
        {"keys_dir": str(key_dir), **settings}, store=store, keyring=keyring, clock=clock, pdp=pdp
    )
    server.app = app
    return World(server, app, store, clock)


@pytest.fixture
def world(server: Server, key_dir: Path) -> World:
    """The example repository in memory behind a fresh app."""
    return make_world(server, key_dir)


def b64(value: str) -> str:
    return encode_id(value)


@pytest.fixture
def keys(key_dir: Path) -> Path:
    return key_dir


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """A SQLite repository file holding the example bundle, published, and the callers."""
    from pbgm.bundle import import_bundle, read_bundle
    from pbgm.testing import sqlite_store

    path = tmp_path / "pbgm.db"
    store = sqlite_store(path)
    import_bundle(store, read_bundle(EXAMPLES / "policies"), actor="seed", publish=True)
    seed(store)
    store.close()
    return f"sqlite:///{path}"
