"""Authentication for the REST API: the token endpoint, the JWKS, bearer checks.

- `POST /api/v1/token`: OAuth2 client credentials (RFC 6749 §4.4). The client id
  and secret come either in HTTP Basic auth (form-urlencoded, then base64, as
  RFC 6749 §2.3.1 says) or in the form body, never both. `scope` is optional and
  must be a subset of the account's scopes (default: all of them). Errors are
  RFC 6749 §5.2 JSON; a bad client is `401 invalid_client` with
  `WWW-Authenticate: Basic`, whether the account is missing, disabled or the
  secret wrong (a missing account still costs one secret verification, so
  timing does not tell which).
- Failed logins back off, and the rightful owner is never locked out: the right
  secret always gets its token. Failures are counted per pair of client id and
  remote address (`RateLimit.failures` within `RateLimit.per`): past that, a
  further WRONG secret from the same pair is answered `429` with `Retry-After`
  instead of `401`, so an attacker guessing one client's secret is slowed while
  its owner, from any address (even the same one), still logs in. Secrets are
  256 random bits, so the back-off is a tripwire, not the defence. To keep a
  flood of guesses from burning CPU on scrypt, an address with more than
  `RateLimit.address_failures` failures in the window gets `429` without its
  guesses being checked, except for a client whose right secret this process
  verified before (remembered as an HMAC under a per-process key, never the
  secret). The remote address is the proxy's client address when
  `PBGM_PROXY_HOPS` trusts the proxies in front (werkzeug's `ProxyFix`). Refused
  logins are audited until their pair or address backs off. The counters live
  in memory, PER PROCESS: with N workers the budgets are N times larger.
- `GET /.well-known/jwks.json`: the public keys, cacheable for five minutes. A
  remote verifier that meets an unknown `kid` should fetch it again.
- `verify_bearer(request, verifier)`: the strict `Authorization: Bearer <jwt>`
  check the API's enforcement hook calls; it also refuses a token whose service
  account was disabled or deleted since it was issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from flask import Blueprint, Request, Response, jsonify, request

from pbgm.auth import (
    AccountCheck,
    Claims,
    KeyRing,
    TokenIssuer,
    TokenVerifier,
    bind_to_account,
    hash_secret,
    parse_scope,
    verify_secret,
)
from pbgm.errors import AuthenticationError, ConfigurationError, InvalidInputError, NotFoundError
from pbgm.model import Clock
from pbgm.store.base import ServiceAccount, Store

BLUEPRINT_NAME = "auth"
TOKEN_PATH = "/api/v1/token"  # noqa: S105  (a URL path, not a secret)
JWKS_PATH = "/.well-known/jwks.json"
PUBLIC_ENDPOINTS = frozenset({f"{BLUEPRINT_NAME}.token", f"{BLUEPRINT_NAME}.jwks"})
JWKS_CACHE_CONTROL = "public, max-age=300"
BASIC_CHALLENGE = 'Basic realm="pbgm"'
MAX_CLIENT_ID = 200
MAX_SECRET = 1024

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+=*")


def credentials(value: str, scheme: str, pattern: re.Pattern[str]) -> str | None:
    """What follows `scheme` and one space in an Authorization header `value`, if it
    matches `pattern` whole; None otherwise. The scheme is compared without regard to
    case (RFC 9110 §11.1) as a string: a case-insensitive pattern would fold the case of
    every character of a long token too, which costs more than the rest of the check."""
    start = len(scheme) + 1
    if value[:start].lower() != scheme.lower() + " " or pattern.fullmatch(value, start) is None:
        return None
    return value[start:]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Back-off after `failures` failed logins of one client id from one address within
    `per`; guesses unchecked after `address_failures` failures from one address."""

    failures: int = 5
    per: timedelta = timedelta(minutes=1)
    address_failures: int = 100
    max_tracked: int = 10_000  # keys remembered; the oldest are forgotten first


class FailureCounter:
    """A sliding-window count of failures per key, in memory (per process, thread-safe)."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        if limit.failures < 1 or limit.per <= timedelta(0):
            raise ConfigurationError("the login rate limit needs a positive count and period")
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, keys: Iterable[str], failures: int | None = None) -> int | None:
        """Seconds to wait if any of `keys` had `failures` (default: the limit's) or
        more failures in the window, else None."""
        now = self._clock().timestamp()
        window = self.limit.per.total_seconds()
        allowed = self.limit.failures if failures is None else failures
        waits = []
        with self._lock:
            for key in keys:
                times = self._recent(key, now - window)
                if len(times) >= allowed:
                    waits.append(times[-allowed] + window - now)
        return max(1, math.ceil(max(waits))) if waits else None

    def record(self, keys: Iterable[str]) -> None:
        now = self._clock().timestamp()
        with self._lock:
            for key in keys:
                times = self._recent(key, now - self.limit.per.total_seconds())
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.limit.max_tracked:
                self._failures.popitem(last=False)

    def _recent(self, key: str, since: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= since:
            times.popleft()
        return times


def account_check(store: Store) -> AccountCheck:
    """Binds verified claims to the service account instance they were issued for:
    refused once it is gone, disabled or re-created; scopes cut to its current ones."""

    def check(claims: Claims) -> Claims | None:
        try:
            account = store.get_service_account(claims.subject)
        except NotFoundError:
            return None
        return bind_to_account(
            claims,
            enabled=account.enabled,
            generation=account.token_generation,
            scopes=account.scopes,
        )

    return check


def make_verifier(
    keyring: KeyRing,
    store: Store,
    *,
    issuer: str,
    audience: str,
    leeway: timedelta | None = None,
    clock: Clock | None = None,
) -> TokenVerifier:
    """A verifier over the key ring that also refuses disabled or deleted accounts."""
    options: dict[str, Any] = {"leeway": leeway, "clock": clock}
    return TokenVerifier(
        keyring.verification_keys,
        issuer=issuer,
        audience=audience,
        account_check=account_check(store),
        **{name: value for name, value in options.items() if value is not None},
    )


def verify_bearer(
    flask_request: Request, verifier: TokenVerifier, store: Store | None = None
) -> Claims:
    """The claims of the request's bearer token; `AuthenticationError` if there is none
    or it does not verify. The token's account must still exist and be enabled: checked
    by the verifier's `account_check` or, when `store` is given, here."""
    if verifier.account_check is None and store is None:
        raise ConfigurationError("bearer checks need a store or a verifier with an account check")
    # WSGI joins repeated headers into one value (`a, b`), which the pattern refuses;
    # read straight from the environment: `headers.getlist` walks all of it
    value = flask_request.environ.get("HTTP_AUTHORIZATION")
    if value is None:
        raise AuthenticationError("a bearer token is required", code="token_missing")
    token = credentials(value, "Bearer", _B64TOKEN)
    if token is None:
        raise AuthenticationError(
            "the Authorization header must read `Bearer <token>`", code="token_invalid"
        )
    claims = verifier.verify(token)
    if store is not None:
        checked = account_check(store)(claims)
        if checked is None:
            raise AuthenticationError(
                "the token's account is disabled, deleted or renewed", code="token_revoked"
            )
        return checked
    return claims


def make_auth_blueprint(
    *,
    store: Store,
    issuer: TokenIssuer,
    keyring: KeyRing,
    rate_limit: RateLimit | None = None,
    clock: Clock | None = None,
) -> Blueprint:
    """The blueprint serving `POST /api/v1/token` and `GET /.well-known/jwks.json`.

    Its endpoints (`PUBLIC_ENDPOINTS`) are the ones the enforcement hook lets
    through without a token.
    """
    endpoint = _TokenEndpoint(
        store, issuer, FailureCounter(rate_limit or RateLimit(), clock or issuer.clock)
    )
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)

    @blueprint.post(TOKEN_PATH, endpoint="token")
    def token() -> Response:
        return endpoint.handle(request)

    @blueprint.get(JWKS_PATH, endpoint="jwks")
    def jwks() -> Response:
        response = jsonify(keyring.public_jwks())
        response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
        return response

    return blueprint


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}

    def response(self) -> Response:
        response = jsonify({"error": self.error, "error_description": self.description})
        response.status_code = self.status
        response.headers.update(self.headers)
        return _no_store(response)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _invalid_request(description: str) -> _OAuthError:
    return _OAuthError(400, "invalid_request", description)


def _invalid_client(description: str) -> _OAuthError:
    return _OAuthError(401, "invalid_client", description, {"WWW-Authenticate": BASIC_CHALLENGE})


class KnownSecrets:
    """Right secrets this process verified, as HMACs under a per-process random key.

    Lets the owner of a client in through an address that floods the token endpoint
    with guesses, without an scrypt per guess; tied to the account's stored hash, so
    a new secret or a re-created account is verified afresh.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._max = max_entries
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    def _digest(self, client_id: str, secret: str) -> bytes:
        message = client_id.encode() + b"\x00" + secret.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def remember(self, account: ServiceAccount, secret: str) -> None:
        with self._lock:
            digest = self._digest(account.client_id, secret)
            self._known[account.client_id] = (account.secret_hash, digest)
            self._known.move_to_end(account.client_id)
            while len(self._known) > self._max:
                self._known.popitem(last=False)

    def matches(self, account: ServiceAccount, secret: str) -> bool:
        with self._lock:
            known = self._known.get(account.client_id)
        if known is None or known[0] != account.secret_hash:
            return False
        return hmac.compare_digest(known[1], self._digest(account.client_id, secret))


class _TokenEndpoint:
    """The client-credentials grant, step by step."""

    def __init__(self, store: Store, issuer: TokenIssuer, failures: FailureCounter) -> None:
        self.store = store
        self.issuer = issuer
        self.failures = failures
        self.known = KnownSecrets()
        # Verified against when the client id is unknown, so that costs the same.
        self.dummy_hash = hash_secret(secrets.token_urlsafe(32))

    def handle(self, flask_request: Request) -> Response:
        try:
            return self._grant(flask_request)
        except _OAuthError as error:
            return error.response()

    def _grant(self, flask_request: Request) -> Response:
        form = _form(flask_request)
        client_id, secret = _credentials(flask_request, form)
        _check_grant_type(form.get("grant_type"))
        address = flask_request.remote_addr or "unknown"
        pair, source = f"client:{client_id} address:{address}", f"address:{address}"
        flooding = self.failures.retry_after([source], self.failures.limit.address_failures)
        account = self._authenticate(client_id, secret, check=flooding is None)
        if account is not None:
            return self._issue(account, form.get("scope"))
        backing_off = self.failures.retry_after([pair]) or flooding
        self.failures.record([pair, source])
        if backing_off is None:
            self._audit_refusal(client_id, address)
        if backing_off is not None:
            message = "too many failed logins: retry later"
            raise _OAuthError(429, "rate_limited", message, {"Retry-After": str(backing_off)})
        raise _invalid_client("client authentication failed")

    def _authenticate(self, client_id: str, secret: str, *, check: bool) -> ServiceAccount | None:
        """The enabled account whose secret this is. With `check` false (a flooding
        address) only a secret this process verified before is accepted."""
        try:
            account: ServiceAccount | None = self.store.get_service_account(client_id)
        except NotFoundError:
            account = None
        if account is not None and self.known.matches(account, secret):
            return account if account.enabled else None
        if not check:
            return None
        hashed = account.secret_hash if account is not None else self.dummy_hash
        if not verify_secret(secret, hashed) or account is None:
            return None
        self.known.remember(account, secret)
        return account if account.enabled else None

    def _issue(self, account: ServiceAccount, requested: str | None) -> Response:
        scopes = _granted_scopes(account, requested)
        token = self.issuer.issue(account.client_id, scopes, generation=account.token_generation)
        self.store.record_audit(
            actor=account.client_id,
            action="token.issue",
            object_type="service_account",
            object_id=account.client_id,
            details={"scopes": list(scopes)},
        )
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.issuer.lifetime.total_seconds()),
            "scope": " ".join(scopes),
        }
        return _no_store(jsonify(body))

    def _audit_refusal(self, client_id: str, address: str | None) -> None:
        self.store.record_audit(
            actor="anonymous",
            action="token.refuse",
            object_type="service_account",
            object_id=client_id,
            details={"remote_addr": address or "unknown"},
        )


def _form(flask_request: Request) -> dict[str, str]:
    """The form parameters, each at most once (RFC 6749 §3.2)."""
    if flask_request.mimetype != "application/x-www-form-urlencoded":
        raise _invalid_request("the body must be `application/x-www-form-urlencoded`")
    form = flask_request.form
    repeated = sorted(name for name in form if len(form.getlist(name)) > 1)
    if repeated:
        raise _invalid_request(f"parameter `{repeated[0]}` given more than once")
    return {name: form[name] for name in form}


def _check_grant_type(grant_type: str | None) -> None:
    if grant_type is None:
        raise _invalid_request("parameter `grant_type` is required")
    if grant_type != "client_credentials":
        raise _OAuthError(400, "unsupported_grant_type", "only `client_credentials` is supported")


def _credentials(flask_request: Request, form: dict[str, str]) -> tuple[str, str]:
    """Client id and secret from Basic auth or the body (exactly one of them)."""
    header = flask_request.headers.getlist("Authorization")
    in_body = "client_id" in form or "client_secret" in form
    if header and in_body:
        raise _invalid_request("use one client authentication method, not two")
    if header:
        client_id, secret = _basic(header)
    elif in_body:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    else:
        raise _invalid_client("client authentication is required")
    if not 0 < len(client_id) <= MAX_CLIENT_ID or not 0 < len(secret) <= MAX_SECRET:
        raise _invalid_request("the client id or secret is empty or too long")
    if not client_id.isprintable():
        raise _invalid_request("the client id holds control characters")
    return client_id, secret


def _basic(values: list[str]) -> tuple[str, str]:
    encoded = credentials(values[0], "Basic", _BASE64) if len(values) == 1 else None
    try:
        if encoded is None:
            raise ValueError("not basic")
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        client_id, secret = decoded.split(":", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid_client("the Authorization header must be HTTP Basic") from None
    return unquote_plus(client_id), unquote_plus(secret)


def _granted_scopes(account: ServiceAccount, requested: str | None) -> tuple[str, ...]:
    """The requested scopes if the account holds them all; all of its scopes if none asked."""
    if requested is None:
        return tuple(account.scopes)
    try:
        asked = parse_scope(requested)
    except InvalidInputError:
        raise _OAuthError(400, "invalid_scope", "the scope is malformed") from None
    if not asked or not set(asked) <= set(account.scopes):
        raise _OAuthError(400, "invalid_scope", "the scope exceeds the account's scopes")
    return asked
