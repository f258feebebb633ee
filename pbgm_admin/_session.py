"""Signing in: users of the store, their scrypt password hashes, sessions and a throttle.

- Flask-Login keeps the user's name in the signed session cookie, with a
  fingerprint of the password hash: changing a password signs every other
  session of that user out. A disabled or deleted user is signed out on the
  next request.
- The cookie is `HttpOnly`, `SameSite=Lax`, scoped to `/admin`, and `Secure`
  whenever the request came over TLS.
- Idle timeout: a session unused for `idle_timeout` seconds is ended (the
  clock is the app's, so tests move it).
- The throttle slows guessing down without ever locking the rightful user
  out: failures are counted per (user, source address); from the third on,
  that pair must wait 1, 2, 4 ... up to 300 seconds after its last failure
  before it may try again. Another address is not affected, so an attacker
  cannot lock a user out, and a success clears the count. A sign-in for an
  unknown user costs one scrypt like a known one, so timing does not tell.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import UserMixin

from pbgm.auth import hash_secret, verify_secret
from pbgm.errors import NotFoundError
from pbgm.model import Clock
from pbgm.store.base import Store, User

SESSION_KEY_FILE = "admin-session.key"
MAX_TRACKED = 10_000
FREE_FAILURES = 2
MAX_WAIT_S = 300
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(16))


def fingerprint(user: User) -> str:
    """Changes when the password does: part of the session's user id."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


class GuiUser(UserMixin):  # type: ignore[misc]
    """The signed-in user as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.name = user.name
        self.display_name = user.display_name or user.name
        self._id = f"{fingerprint(user)}:{user.name}"

    def get_id(self) -> str:
        return self._id


def load_user(store: Store, session_id: str) -> GuiUser | None:
    """The session's user if it still exists, is enabled and has the same password."""
    print_, _, name = session_id.partition(":")
    try:
        user = store.get_user(name)
    except NotFoundError:
        return None
    if not user.enabled or user.password_hash is None or fingerprint(user) != print_:
        return None
    return GuiUser(user)


def check_password(store: Store, name: str, password: str) -> User | None:
    """The user when `password` is right; one scrypt either way."""
    try:
        user: User | None = store.get_user(name)
    except NotFoundError:
        user = None
    stored = user.password_hash if user is not None else None
    matches = verify_secret(password, stored or _DUMMY_HASH)
    if user is None or stored is None or not matches or not user.enabled:
        return None
    return user


@dataclass
class _Failures:
    count: int
    last: datetime


class SignInThrottle:
    """Back-off per (user, source) after failures (module docstring); thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def wait_s(self, name: str, source: str) -> int:
        """Seconds before (name, source) may try again; 0 when it may now."""
        with self._lock:
            failures = self._seen.get((name, source))
        if failures is None or failures.count <= FREE_FAILURES:
            return 0
        wait = min(MAX_WAIT_S, 2 ** (failures.count - FREE_FAILURES - 1))
        elapsed = (self._clock() - failures.last).total_seconds()
        return max(0, int(wait - elapsed + 0.999))

    def failed(self, name: str, source: str) -> None:
        key = (name, source)
        with self._lock:
            failures = self._seen.pop(key, None)
            count = failures.count + 1 if failures else 1
            self._seen[key] = _Failures(count, self._clock())
            while len(self._seen) > MAX_TRACKED:
                self._seen.popitem(last=False)

    def succeeded(self, name: str, source: str) -> None:
        with self._lock:
            self._seen.pop((name, source), None)


class GuiSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session for the GUI's paths only, `Secure` whenever the
    request is over TLS. The signing key is read (or made) on the first GUI request,
    so the app factory touches no file."""

    def __init__(self, prefix: str, key: Callable[[], bytes]) -> None:
        self._prefix = prefix
        self._key = key

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self._prefix + "/"):
            return self.null_session_class()  # the REST API keeps no session
        if not app.secret_key:
            app.secret_key = self._key()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) or super().get_cookie_secure(app)


def session_key(keys_dir: str, environ: dict[str, str] | None = None) -> bytes:
    """`PBGM_ADMIN_SESSION_KEY`, else `<keys_dir>/admin-session.key` (made once, 0600).

    Every worker and server of one deployment must share it; the keys directory
    is shared already.
    """
    env = os.environ if environ is None else environ
    given = env.get("PBGM_ADMIN_SESSION_KEY")
    if given:
        return given.encode()
    path = Path(keys_dir) / SESSION_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{SESSION_KEY_FILE}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(temporary, path)  # atomic: the first worker's key wins, whole
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes().strip()
