"""The admin GUI over the example bundle: an app per test, users with and without grants.

Users of the world (all with the password `PASSWORD`):

==========  =================================================  ============================
name        grants                                             can
==========  =================================================  ============================
root        admin on `*`                                       everything
lim-admin   admin on operational-limits                        edit and publish limits only
lim-writer  write on operational-limits                        draft limits, not publish
reader      read on data-sharing                               read the KIBERNet policy
nobody      none                                               sign in, nothing else
==========  =================================================  ============================

`Gui.client(name)` is a Flask test client already signed in (for the many fast
checks); `tests/admin/test_browser.py` drives a real Chromium over a real socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pbgm.access import encode_id
from pbgm.api import create_app
from pbgm.auth import KeyRing, hash_secret
from pbgm.bundle import import_bundle, read_bundle
from pbgm.model import Permission, PolicyGroup
from pbgm.store import Grant, MemoryStore, Store, User
from pbgm.testing import FrozenClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_secret(PASSWORD)
USERS: dict[str, tuple[tuple[str, str], ...]] = {
    "root": (("*", "admin"),),
    "lim-admin": (("operational-limits", "admin"),),
    "lim-writer": (("operational-limits", "write"),),
    "reader": (("data-sharing", "read"),),
    "nobody": (),
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_BUNDLE = read_bundle(EXAMPLES / "policies")


def url_of(policy_id: str, suffix: str = "") -> str:
    return f"/admin/policies/{encode_id(policy_id)}{suffix}"


def seed(store: Store) -> None:
    import_bundle(store, _BUNDLE, actor="seed")
    store.put_policy_group(PolicyGroup("*", description="global administrators"), actor="seed")
    for name, grants in USERS.items():
        store.add_user(User(name, name.title(), password_hash=PASSWORD_HASH), actor="seed")
        for group, permission in grants:
            grant = Grant("user", name, "policy_group", group, Permission(permission))
            store.add_grant(grant, actor="seed")


_SEEDED: list[MemoryStore] = []


def seeded_store(clock: FrozenClock) -> MemoryStore:
    """The seeded world, built once and copied (hashing and importing cost time)."""
    if not _SEEDED:
        template = MemoryStore(clock=FrozenClock(NOW))
        seed(template)
        _SEEDED.append(template)
    store = MemoryStore(clock=clock)
    store._state = _SEEDED[0]._state.copy()
    return store


class Browserless:
    """A signed-in Flask test client that sends the page's CSRF token with every form."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def get(self, url: str, **kwargs: Any) -> Any:
        reply = self.client.get(url, **kwargs)
        found = _CSRF.search(reply.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return reply

    def post(
        self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> Any:
        if not self.token:
            self.get("/admin/sign-in")
        sent = dict(data or {})
        if csrf:
            sent.setdefault("csrf_token", self.token)
        reply = self.client.post(url, data=sent, **kwargs)
        found = _CSRF.search(reply.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return reply

    def sign_in(self, name: str, password: str = PASSWORD, **kwargs: Any) -> Any:
        self.get("/admin/sign-in")
        return self.post("/admin/sign-in", {"name": name, "password": password}, **kwargs)


@dataclass
class Gui:
    app: Flask
    store: MemoryStore
    clock: FrozenClock
    clients: list[Browserless] = field(default_factory=list)

    def client(self, name: str | None = None) -> Browserless:
        client = Browserless(self.app.test_client())
        if name is not None:
            reply = client.sign_in(name)
            assert reply.status_code == 302, reply.get_data(as_text=True)
        return client

    def api_token(self, client_id: str, scopes: tuple[str, ...]) -> str:
        """A token bound to the account as the store holds it now (its generation)."""
        services = self.app.extensions["pbgm"]
        account = services.store.get_service_account(client_id)
        return services.issuer.issue(client_id, scopes, generation=account.token_generation)


_KEYS: list[Path] = []


def shared_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the session (the API's token endpoint needs one)."""
    if not _KEYS:
        directory = tmp_path_factory.mktemp("keys")
        KeyRing(directory, clock=FrozenClock(NOW)).generate()
        _KEYS.append(directory)
    return _KEYS[0]


def make_gui(keys: Path, **settings: Any) -> Gui:
    clock = FrozenClock(NOW)
    store = seeded_store(clock)
    config = {"keys_dir": str(keys), **settings}
    app = create_app(config, store=store, keyring=KeyRing(keys, clock=clock), clock=clock)
    return Gui(app, store, clock)


@pytest.fixture
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    yield make_gui(shared_keys(tmp_path_factory))


@pytest.fixture(scope="session")
def live_server() -> Iterator[Any]:
    from tests.admin.browser import LiveServer

    server = LiveServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from tests.admin.browser import launch_browser

    yield from launch_browser()
