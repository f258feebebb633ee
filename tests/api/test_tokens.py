"""The token endpoint, the JWKS and bearer checks, over a real socket.

A werkzeug server on 127.0.0.1 runs an app holding the auth blueprint and one
protected endpoint that goes through `verify_bearer` and needs `policies:read`.
Every forged, stale or revoked token gets 401 and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask, g, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from pbgm.api.auth import (
    PUBLIC_ENDPOINTS,
    RateLimit,
    make_auth_blueprint,
    make_verifier,
    verify_bearer,
)
from pbgm.errors import AuthenticationError
from pbgm.keys import KeyRing
from pbgm.secrets import hash_secret
from pbgm.store.base import ServiceAccount
from pbgm.store.memory import MemoryStore
from pbgm.testing import FrozenClock
from pbgm.tokens import TokenIssuer

ISSUER = "https://pbgm.test/"
AUDIENCE = "pbgm-api"
SECRET = "s3cret-for-tests"
ODD_ID = "svc:odd+id é"
SECRET_HASH = hash_secret(SECRET)  # scrypt once per module, not per account
ACCOUNTS = {
    "svc-reader": ("policies:read", "decisions:write"),
    "svc-decider": ("decisions:write",),
    ODD_ID: ("policies:read",),
}


# --- the app under test ------------------------------------------------------------


def build_app(store: MemoryStore, ring: KeyRing, clock: FrozenClock) -> Flask:
    """The auth blueprint plus one endpoint behind a before-request bearer check."""
    issuer = TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    verifier = make_verifier(ring, store, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    app = Flask(__name__)
    app.register_blueprint(make_auth_blueprint(store=store, issuer=issuer, keyring=ring))

    @app.before_request
    def enforce() -> Any:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        try:
            g.claims = verify_bearer(request, verifier)
        except AuthenticationError as error:
            response = jsonify({"code": error.code, "message": error.message})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        if not g.claims.has_scope("policies:read"):
            return jsonify({"code": "insufficient_scope"}), 403
        return None

    @app.get("/api/v1/secret")
    def secret() -> Any:
        return jsonify({"subject": g.claims.subject, "data": "policy payload"})

    return app


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """One werkzeug server on a free port of 127.0.0.1 for the module; each test
    plugs its own app in (`server.app = ...`), so the socket is real and cheap."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.wsgi: BaseWSGIServer = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.thread = threading.Thread(target=self.wsgi.serve_forever, daemon=True)
        self.thread.start()

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "no app plugged in"
        return self.app(environ, start_response)

    def close(self) -> None:
        self.wsgi.shutdown()
        self.wsgi.server_close()
        self.thread.join()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> Reply:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.wsgi.server_port, timeout=10, source_address=(source, 0)
        )
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def token(
        self, form: dict[str, str], *, basic: tuple[str, str] | None = None, **kw: Any
    ) -> Reply:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic is not None:
            headers["Authorization"] = basic_header(*basic)
        return self.call(
            "POST", "/api/v1/token", body=urlencode(form).encode(), headers=headers, **kw
        )

    def get_token(self, client_id: str, **form: str) -> str:
        reply = self.token({"grant_type": "client_credentials", **form}, basic=(client_id, SECRET))
        assert reply.status == 200, reply.body
        return reply.json["access_token"]

    def secret(self, token: str) -> Reply:
        return self.call("GET", "/api/v1/secret", headers={"Authorization": f"Bearer {token}"})


def basic_header(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode each part, then base64 `id:secret`."""
    pair = f"{urlencode({'a': client_id})[2:]}:{urlencode({'a': secret})[2:]}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class World:
    store: MemoryStore
    ring: KeyRing
    clock: FrozenClock
    server: Server


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    served = Server()
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def world(tmp_path: Path, server: Server) -> Iterator[World]:
    clock = FrozenClock()
    store = MemoryStore(clock=clock)
    for client_id, scopes in ACCOUNTS.items():
        account = ServiceAccount(client_id, SECRET_HASH, scopes=scopes)
        store.add_service_account(account, actor="test")
    ring = KeyRing(tmp_path / "keys", clock=clock)
    ring.generate("ES256")
    server.app = build_app(store, ring, clock)
    try:
        yield World(store, ring, clock, server)
    finally:
        server.app = None


# --- forged tokens ---------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(data: dict[str, Any]) -> str:
    return b64(json.dumps(data).encode())


def good_claims(w: World, **changes: Any) -> dict[str, Any]:
    now = int(w.clock().timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-reader", "scope": "policies:read"}
    claims.update({"iat": now, "nbf": now, "exp": now + 600})
    claims.update(changes)
    return claims


def signed(w: World, **changes: Any) -> str:
    key = w.ring.active()
    return jwt.encode(
        good_claims(w, **changes), key.private_key, algorithm=key.alg, headers={"kid": key.kid}
    )


def alg_none(w: World) -> str:
    return f"{segment({'alg': 'none', 'kid': w.ring.active().kid})}.{segment(good_claims(w))}."


def hs256_with_public_key(w: World) -> str:
    kid = w.ring.active().kid
    pem = w.ring.verification_keys()[kid].public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(good_claims(w))}"
    )
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def tampered_payload(w: World) -> str:
    header, _, signature = w.server.get_token("svc-decider").split(".")
    return f"{header}.{segment(good_claims(w, sub='svc-decider'))}.{signature}"


def unknown_kid(w: World) -> str:
    key = w.ring.active()
    return jwt.encode(good_claims(w), key.private_key, algorithm=key.alg, headers={"kid": "x"})


def expired(w: World) -> str:
    token = w.server.get_token("svc-reader")
    w.clock.advance(minutes=16)
    return token


def deleted_account(w: World) -> str:
    token = w.server.get_token("svc-reader")
    w.store.delete_service_account("svc-reader", actor="test")
    return token


def disabled_account(w: World) -> str:
    token = w.server.get_token("svc-reader")
    w.store.set_service_account_enabled("svc-reader", False, actor="test")
    return token


ATTACKS = [
    ("alg none", alg_none),
    ("HS256 signed with the public key", hs256_with_public_key),
    ("expired", expired),
    ("not yet valid", lambda w: signed(w, nbf=int(w.clock().timestamp()) + 300)),
    ("wrong audience", lambda w: signed(w, aud="another-api")),
    ("wrong issuer", lambda w: signed(w, iss="https://evil.test/")),
    ("tampered payload", tampered_payload),
    ("unknown kid", unknown_kid),
    ("deleted service account", deleted_account),
    ("disabled service account", disabled_account),
]


@pytest.mark.parametrize(("what", "forge"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_every_token_attack_gets_401_and_nothing_else(world: World, what: str, forge) -> None:
    token = forge(world)
    reply = world.server.secret(token)
    assert reply.status == 401, what
    assert reply.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert b"policy payload" not in reply.body and token.encode() not in reply.body


@pytest.mark.parametrize(
    ("what", "authorization"),
    [
        ("no header", None),
        ("basic instead of bearer", basic_header("svc-reader", SECRET)),
        ("bearer without a token", "Bearer "),
        ("two tokens", "Bearer a.b.c d.e.f"),
        ("token with a forbidden character", "Bearer a.b.c;"),
    ],
)
def test_malformed_authorization_headers_get_401(
    world: World, what: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = world.server.call("GET", "/api/v1/secret", headers=headers)
    assert reply.status == 401, what
    assert b"policy payload" not in reply.body


def test_a_valid_token_gets_through(world: World) -> None:
    reply = world.server.secret(world.server.get_token("svc-reader"))
    assert reply.status == 200 and reply.json == {"subject": "svc-reader", "data": "policy payload"}


def test_a_token_without_the_needed_scope_is_refused(world: World) -> None:
    reply = world.server.secret(world.server.get_token("svc-decider"))
    assert reply.status == 403 and b"policy payload" not in reply.body


def test_a_token_narrowed_by_scope_is_refused_where_the_scope_is_needed(world: World) -> None:
    token = world.server.get_token("svc-reader", scope="decisions:write")
    assert world.server.secret(token).status == 403


# --- the token endpoint ----------------------------------------------------------------


def test_basic_auth_yields_a_bearer_token_with_all_scopes(world: World) -> None:
    reply = world.server.token({"grant_type": "client_credentials"}, basic=("svc-reader", SECRET))
    assert reply.status == 200
    body = reply.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "policies:read decisions:write"
    assert reply.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "svc-reader" and claims["aud"] == AUDIENCE
    assert jwt.get_unverified_header(body["access_token"])["kid"] == world.ring.active().kid
    assert world.store.list_audit(limit=1)[0].action == "token.issue"


def test_credentials_in_the_form_body_work_too(world: World) -> None:
    form = {"grant_type": "client_credentials", "client_id": "svc-decider", "client_secret": SECRET}
    reply = world.server.token(form)
    assert reply.status == 200 and reply.json["scope"] == "decisions:write"


def test_basic_credentials_are_form_urlencoded(world: World) -> None:
    token = world.server.get_token(ODD_ID)
    assert world.server.secret(token).json["subject"] == ODD_ID


def test_a_requested_scope_subset_is_granted(world: World) -> None:
    reply = world.server.token(
        {"grant_type": "client_credentials", "scope": "decisions:write"},
        basic=("svc-reader", SECRET),
    )
    assert reply.status == 200 and reply.json["scope"] == "decisions:write"


def refused_login(client_id: str = "svc-reader", secret: str = "wrong") -> dict[str, Any]:
    return {"form": {"grant_type": "client_credentials"}, "basic": (client_id, secret)}


@pytest.mark.parametrize(
    ("what", "call", "status", "error"),
    [
        ("wrong secret", refused_login(), 401, "invalid_client"),
        ("unknown client", refused_login("svc-nobody", SECRET), 401, "invalid_client"),
        ("no credentials", {"form": {"grant_type": "client_credentials"}}, 401, "invalid_client"),
        (
            "credentials twice",
            {
                "form": {"grant_type": "client_credentials", "client_id": "svc-reader"},
                "basic": ("svc-reader", SECRET),
            },
            400,
            "invalid_request",
        ),
        (
            "no grant type",
            {"form": {}, "basic": ("svc-reader", SECRET)},
            400,
            "invalid_request",
        ),
        (
            "password grant",
            {"form": {"grant_type": "password"}, "basic": ("svc-reader", SECRET)},
            400,
            "unsupported_grant_type",
        ),
        (
            "scope beyond the account's",
            {
                "form": {"grant_type": "client_credentials", "scope": "admin"},
                "basic": ("svc-reader", SECRET),
            },
            400,
            "invalid_scope",
        ),
        (
            "malformed scope",
            {
                "form": {"grant_type": "client_credentials", "scope": 'a"b'},
                "basic": ("svc-reader", SECRET),
            },
            400,
            "invalid_scope",
        ),
        (
            "client id with a control character",
            refused_login("svc\x00reader", SECRET),
            400,
            "invalid_request",
        ),
    ],
)
def test_bad_token_requests_get_rfc6749_errors(
    world: World, what: str, call: dict[str, Any], status: int, error: str
) -> None:
    reply = world.server.token(call["form"], basic=call.get("basic"))
    assert (reply.status, reply.json["error"]) == (status, error), what
    assert "access_token" not in reply.json and reply.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_and_wrong_secret_look_the_same(world: World) -> None:
    unknown = world.server.token(**refused_login("svc-nobody", SECRET))
    wrong = world.server.token(**refused_login("svc-reader", "nope"))
    assert (unknown.status, unknown.body) == (wrong.status, wrong.body)


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_a_disabled_or_deleted_account_gets_no_token(world: World, change: str) -> None:
    if change == "disable":
        world.store.set_service_account_enabled("svc-reader", False, actor="test")
    else:
        world.store.delete_service_account("svc-reader", actor="test")
    reply = world.server.token(**refused_login("svc-reader", SECRET))
    assert (reply.status, reply.json["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("what", "content_type", "body"),
    [
        ("JSON body", "application/json", b'{"grant_type": "client_credentials"}'),
        (
            "repeated parameter",
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&grant_type=client_credentials",
        ),
    ],
)
def test_the_token_endpoint_takes_one_form_only(
    world: World, what: str, content_type: str, body: bytes
) -> None:
    headers = {"Content-Type": content_type, "Authorization": basic_header("svc-reader", SECRET)}
    reply = world.server.call("POST", "/api/v1/token", body=body, headers=headers)
    assert (reply.status, reply.json["error"]) == (400, "invalid_request"), what


# --- rate limiting ---------------------------------------------------------------------


def test_the_sixth_failed_login_of_a_client_within_a_minute_is_429(world: World) -> None:
    for attempt in range(5):  # each from its own address: only the client id links them
        reply = world.server.token(**refused_login(), source=f"127.0.0.{attempt + 2}")
        assert reply.status == 401
    blocked = world.server.token(**refused_login("svc-reader", SECRET), source="127.0.0.9")
    assert blocked.status == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "access_token" not in blocked.json
    world.clock.advance(seconds=61)
    assert world.server.token(**refused_login("svc-reader", SECRET)).status == 200


def test_the_sixth_failed_login_from_an_address_within_a_minute_is_429(world: World) -> None:
    for attempt in range(5):  # each for its own client id: only the address links them
        reply = world.server.token(**refused_login(f"guess-{attempt}"), source="127.0.0.2")
        assert reply.status == 401
    blocked = world.server.token(**refused_login("svc-decider", SECRET), source="127.0.0.2")
    assert blocked.status == 429
    elsewhere = world.server.token(**refused_login("svc-decider", SECRET), source="127.0.0.3")
    assert elsewhere.status == 200


def test_failures_spread_over_more_than_a_minute_are_not_blocked(world: World) -> None:
    for _ in range(8):
        assert world.server.token(**refused_login()).status == 401
        world.clock.advance(seconds=15)


def test_the_rate_limit_is_configurable(tmp_path: Path) -> None:
    clock = FrozenClock()
    store = MemoryStore(clock=clock)
    ring = KeyRing(tmp_path / "keys", clock=clock)
    ring.generate()
    issuer = TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    app = Flask(__name__)
    limit = RateLimit(failures=2)
    app.register_blueprint(
        make_auth_blueprint(store=store, issuer=issuer, keyring=ring, rate_limit=limit)
    )
    client = app.test_client()
    statuses = [
        client.post(
            "/api/v1/token",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


# --- JWKS and rotation -----------------------------------------------------------------


def test_the_jwks_is_public_and_cacheable(world: World) -> None:
    reply = world.server.call("GET", "/.well-known/jwks.json")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    (key,) = reply.json["keys"]
    assert (key["kid"], key["alg"], key["use"]) == (world.ring.active().kid, "ES256", "sig")
    assert "d" not in key


def test_after_rotation_old_tokens_stay_valid_and_the_jwks_lists_both(world: World) -> None:
    old_kid = world.ring.active().kid
    old_token = world.server.get_token("svc-reader")
    world.ring.rotate("RS256")
    new_token = world.server.get_token("svc-reader")
    assert jwt.get_unverified_header(new_token)["kid"] == world.ring.active().kid != old_kid
    assert world.server.secret(old_token).status == 200
    assert world.server.secret(new_token).status == 200
    kids = {
        k["kid"]: k["alg"] for k in world.server.call("GET", "/.well-known/jwks.json").json["keys"]
    }
    assert kids == {old_kid: "ES256", world.ring.active().kid: "RS256"}
    world.clock.advance(minutes=16)  # the old token expires long before its key retires
    assert world.server.secret(old_token).status == 401
