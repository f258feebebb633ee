"""The token endpoint, the JWKS and bearer checks of the real API, over a real socket.

The app is `create_app` over the example repository (`conftest.make_world`,
served by the module's werkzeug server on 127.0.0.1). Every forged, stale or
revoked token gets 401 and nothing else; a token without the scope an endpoint
needs gets 403 `insufficient_scope`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask

from pbgm.api.auth import RateLimit, make_auth_blueprint
from pbgm.auth.keys import KeyRing
from pbgm.auth.tokens import P256_ORDER, TokenIssuer, low_s
from pbgm.store.base import ServiceAccount
from pbgm.store.memory import MemoryStore
from pbgm.testing import FrozenClock
from tests.api.conftest import SECRET, SECRET_HASH, Reply, Server, World, make_world

ODD_ID = "svc:odd+id é"
PROTECTED = "/api/v1/policies"  # needs `policies:read`; svc-voltage has it


@pytest.fixture
def world(server: Server, tmp_path: Path) -> World:
    """The example repository behind a fresh app with its own keys (rotated by some tests)."""
    KeyRing(tmp_path / "keys").generate()
    made = make_world(server, tmp_path / "keys")
    made.store.add_service_account(
        ServiceAccount(ODD_ID, SECRET_HASH, ("policies:read",)), actor="test"
    )
    return made


def call(
    world: World,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> Reply:
    """One request from `source` (any 127.x address), so the per-address limit can be seen."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", world.server.port, timeout=30, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def basic_header(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-urlencode each part, then base64 `id:secret`."""
    pair = f"{urlencode({'a': client_id})[2:]}:{urlencode({'a': secret})[2:]}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def post_token(
    world: World, form: dict[str, str], *, basic: tuple[str, str] | None = None, **kw: Any
) -> Reply:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic is not None:
        headers["Authorization"] = basic_header(*basic)
    return call(
        world, "POST", "/api/v1/token", body=urlencode(form).encode(), headers=headers, **kw
    )


def get_token(world: World, client_id: str, **form: str) -> str:
    reply = post_token(
        world, {"grant_type": "client_credentials", **form}, basic=(client_id, SECRET)
    )
    assert reply.status == 200, reply.body
    return reply.json["access_token"]


def protected(world: World, token: str) -> Reply:
    return call(world, "GET", PROTECTED, headers={"Authorization": f"Bearer {token}"})


# --- forged tokens ---------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data).encode())


def ring(w: World) -> KeyRing:
    return w.services.keyring


def good_claims(w: World, **changes: Any) -> dict[str, Any]:
    now = int(w.clock().timestamp())
    settings = w.services.settings
    claims = {"iss": settings.token_issuer, "aud": settings.token_audience}
    claims.update({"sub": "svc-voltage", "scope": "policies:read"})
    claims["gen"] = w.store.get_service_account("svc-voltage").token_generation
    claims.update({"iat": now, "nbf": now, "exp": now + 600})
    claims.update(changes)
    return claims


def signed(w: World, **changes: Any) -> str:
    key = ring(w).active()
    token = jwt.encode(
        good_claims(w, **changes), key.private_key, algorithm=key.alg, headers={"kid": key.kid}
    )
    return low_s(token)


def alg_none(w: World) -> str:
    return f"{segment({'alg': 'none', 'kid': ring(w).active().kid})}.{segment(good_claims(w))}."


def hs256_with_public_key(w: World) -> str:
    kid = ring(w).active().kid
    pem = (
        ring(w)
        .verification_keys()[kid]
        .public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    signing_input = (
        f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(good_claims(w))}"
    )
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def tampered_payload(w: World) -> str:
    header, _, signature = get_token(w, "svc-market").split(".")
    return f"{header}.{segment(good_claims(w, sub='svc-admin', scope='admin'))}.{signature}"


def unknown_kid(w: World) -> str:
    key = ring(w).active()
    return jwt.encode(good_claims(w), key.private_key, algorithm=key.alg, headers={"kid": "x"})


def expired(w: World) -> str:
    token = get_token(w, "svc-voltage")
    w.clock.advance(minutes=16)
    return token


def deleted_account(w: World) -> str:
    token = get_token(w, "svc-voltage")
    w.store.delete_service_account("svc-voltage", actor="test")
    return token


def disabled_account(w: World) -> str:
    token = get_token(w, "svc-voltage")
    w.store.set_service_account_enabled("svc-voltage", False, actor="test")
    return token


ATTACKS = [
    ("alg none", alg_none, "token_invalid"),
    ("HS256 signed with the public key", hs256_with_public_key, "token_invalid"),
    ("expired", expired, "token_expired"),
    (
        "not yet valid",
        lambda w: signed(w, nbf=int(w.clock().timestamp()) + 300),
        "token_not_yet_valid",
    ),
    ("wrong audience", lambda w: signed(w, aud="another-api"), "token_wrong_audience"),
    ("wrong issuer", lambda w: signed(w, iss="https://evil.test/"), "token_wrong_issuer"),
    ("tampered payload", tampered_payload, "token_invalid"),
    ("unknown kid", unknown_kid, "token_unknown_key"),
    ("deleted service account", deleted_account, "token_revoked"),
    ("disabled service account", disabled_account, "token_revoked"),
]


@pytest.mark.parametrize(("what", "forge", "code"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_every_token_attack_gets_401_and_nothing_else(
    world: World, what: str, forge: Any, code: str
) -> None:
    assert protected(world, signed(world)).status == 200  # the same call, honestly made
    token = forge(world)
    reply = protected(world, token)
    assert (reply.status, reply.code) == (401, code), what
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="pbgm", error="invalid_token"'
    assert set(reply.json) <= {"type", "title", "status", "detail", "code", "instance"}
    assert token.encode() not in reply.body


def test_a_valid_token_gets_through(world: World) -> None:
    reply = protected(world, get_token(world, "svc-voltage"))
    assert reply.status == 200 and reply.json["policies"]


def test_a_token_narrowed_to_another_scope_gets_403_insufficient_scope(world: World) -> None:
    token = get_token(world, "svc-voltage", scope="decisions:write")
    reply = protected(world, token)
    assert (reply.status, reply.code) == (403, "insufficient_scope")
    assert "policies" not in reply.json


# --- the token endpoint ----------------------------------------------------------------


def test_basic_auth_yields_a_bearer_token_with_all_scopes(world: World) -> None:
    reply = post_token(world, {"grant_type": "client_credentials"}, basic=("svc-voltage", SECRET))
    assert reply.status == 200
    body = reply.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert set(body["scope"].split()) == {"policies:read", "decisions:write", "flexoffers:write"}
    assert reply.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "svc-voltage" and claims["aud"] == "pbgm-api"
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(body["access_token"])["kid"] == ring(world).active().kid
    assert world.store.list_audit(limit=1)[0].action == "token.issue"


def test_credentials_in_the_form_body_work_too(world: World) -> None:
    form = {"grant_type": "client_credentials", "client_id": "svc-market", "client_secret": SECRET}
    reply = post_token(world, form)
    assert reply.status == 200 and reply.json["scope"] == "policies:read flexoffers:write"


def test_basic_credentials_are_form_urlencoded(world: World) -> None:
    token = get_token(world, ODD_ID)
    assert protected(world, token).status == 200


def test_a_requested_scope_subset_is_granted(world: World) -> None:
    token = get_token(world, "svc-voltage", scope="decisions:write policies:read")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "decisions:write policies:read"


def refused_login(client_id: str = "svc-voltage", secret: str = "wrong") -> dict[str, Any]:
    return {"form": {"grant_type": "client_credentials"}, "basic": (client_id, secret)}


def login(**form: str) -> dict[str, Any]:
    return {"form": form, "basic": ("svc-voltage", SECRET)}


BAD_LOGINS = [
    ("wrong secret", refused_login(), 401, "invalid_client"),
    ("unknown client", refused_login("svc-ghost", SECRET), 401, "invalid_client"),
    ("no credentials", {"form": {"grant_type": "client_credentials"}}, 401, "invalid_client"),
    (
        "credentials twice",
        login(grant_type="client_credentials", client_id="svc-voltage"),
        400,
        "invalid_request",
    ),
    ("no grant type", login(), 400, "invalid_request"),
    ("password grant", login(grant_type="password"), 400, "unsupported_grant_type"),
    (
        "scope beyond the account's",
        login(grant_type="client_credentials", scope="admin"),
        400,
        "invalid_scope",
    ),
    (
        "malformed scope",
        login(grant_type="client_credentials", scope='a"b'),
        400,
        "invalid_scope",
    ),
    (
        "client id with a control character",
        refused_login("svc\x00voltage", SECRET),
        400,
        "invalid_request",
    ),
]


@pytest.mark.parametrize(
    ("what", "request_", "status", "error"), BAD_LOGINS, ids=[b[0] for b in BAD_LOGINS]
)
def test_bad_token_requests_get_rfc6749_errors(
    world: World, what: str, request_: dict[str, Any], status: int, error: str
) -> None:
    reply = post_token(world, request_["form"], basic=request_.get("basic"))
    assert (reply.status, reply.json["error"]) == (status, error), what
    assert "access_token" not in reply.json and reply.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_and_wrong_secret_look_the_same(world: World) -> None:
    unknown = post_token(world, **refused_login("svc-ghost", SECRET))
    wrong = post_token(world, **refused_login("svc-voltage", "nope"))
    assert (unknown.status, unknown.body) == (wrong.status, wrong.body)


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_a_disabled_or_deleted_account_gets_no_token(world: World, change: str) -> None:
    if change == "disable":
        world.store.set_service_account_enabled("svc-voltage", False, actor="test")
    else:
        world.store.delete_service_account("svc-voltage", actor="test")
    reply = post_token(world, **refused_login("svc-voltage", SECRET))
    assert (reply.status, reply.json["error"]) == (401, "invalid_client")


# --- a token is bound to the account instance it was issued for ------------------------


def test_a_token_of_a_deleted_account_stays_dead_when_the_client_id_comes_back(
    world: World,
) -> None:
    old = get_token(world, "svc-voltage")
    assert protected(world, old).status == 200
    world.store.delete_service_account("svc-voltage", actor="test")
    account = ServiceAccount("svc-voltage", SECRET_HASH, ("decisions:write",))
    world.store.add_service_account(account, actor="test")
    refused = protected(world, old)
    assert (refused.status, refused.code) == (401, "token_revoked")
    decisions = call(world, "POST", "/api/v1/decisions", headers={"Authorization": f"Bearer {old}"})
    assert decisions.status == 401  # not even the scope the new account holds
    new = get_token(world, "svc-voltage")
    assert protected(world, new).status == 403  # the new account lacks `policies:read`


def test_re_enabling_an_account_does_not_revive_its_old_tokens(world: World) -> None:
    old = get_token(world, "svc-voltage")
    assert protected(world, old).status == 200
    world.store.set_service_account_enabled("svc-voltage", False, actor="test")
    assert protected(world, old).status == 401
    world.store.set_service_account_enabled("svc-voltage", True, actor="test")
    assert (protected(world, old).status, protected(world, old).code) == (401, "token_revoked")
    assert protected(world, get_token(world, "svc-voltage")).status == 200


def test_a_token_carries_only_the_scopes_its_account_still_holds(world: World) -> None:
    token = get_token(world, "svc-voltage")
    account = world.store.get_service_account("svc-voltage")
    state = world.store._state  # the memory store: change the scopes in place
    state.services["svc-voltage"] = replace(account, scopes=("decisions:write",))
    state.revision += 1
    reply = protected(world, token)
    assert (reply.status, reply.code) == (403, "insufficient_scope")


def test_a_token_without_a_generation_is_refused(world: World) -> None:
    unbound = world.services.issuer.issue("svc-voltage", ["policies:read"])
    reply = protected(world, unbound)
    assert (reply.status, reply.code) == (401, "token_revoked")


def test_a_high_s_twin_of_a_good_es256_token_is_refused(world: World) -> None:
    token = get_token(world, "svc-voltage")
    head, signature = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    s = int.from_bytes(raw[32:], "big")
    assert s <= P256_ORDER // 2  # issued in the canonical form
    twin = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    forged = head + "." + b64url(twin)
    key = ring(world).verification_keys()[ring(world).active().kid].public_key
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    assert jwt.decode(forged, key, algorithms=["ES256"], audience="pbgm-api", options=options)
    reply = protected(world, forged)
    assert (reply.status, reply.code) == (401, "token_invalid")
    assert protected(world, token).status == 200


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
    headers = {"Content-Type": content_type, "Authorization": basic_header("svc-voltage", SECRET)}
    reply = call(world, "POST", "/api/v1/token", body=body, headers=headers)
    assert (reply.status, reply.json["error"]) == (400, "invalid_request"), what


# --- rate limiting ---------------------------------------------------------------------


def test_wrong_secrets_back_off_but_the_right_one_always_gets_its_token(world: World) -> None:
    for _ in range(5):
        assert post_token(world, **refused_login(), source="127.0.0.2").status == 401
    blocked = post_token(world, **refused_login(), source="127.0.0.2")
    assert blocked.status == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert "access_token" not in blocked.json
    # the owner, from the very address of the attacker (one proxy for everybody), still logs in
    owner = post_token(world, **refused_login("svc-voltage", SECRET), source="127.0.0.2")
    assert owner.status == 200 and owner.json["access_token"]
    other = post_token(world, **refused_login("svc-market", SECRET), source="127.0.0.2")
    assert other.status == 200
    world.clock.advance(seconds=61)
    assert post_token(world, **refused_login(), source="127.0.0.2").status == 401


def test_the_back_off_is_per_client_id_and_address(world: World) -> None:
    for attempt in range(6):  # each from its own address: no pair backs off
        reply = post_token(world, **refused_login(), source=f"127.0.0.{attempt + 2}")
        assert reply.status == 401
    for attempt in range(6):  # each for its own client id from one address
        assert post_token(world, **refused_login(f"guess-{attempt}")).status == 401


def test_refused_logins_are_audited_until_they_back_off(world: World) -> None:
    before = len(world.store.list_audit(limit=1000))
    for _ in range(20):
        post_token(world, **refused_login(), source="127.0.0.5")
    refusals = [e for e in world.store.list_audit(limit=1000)[: 1000 - before]]
    assert sum(e.action == "token.refuse" for e in refusals) == 5


def test_a_flooding_address_has_its_guesses_unchecked_but_known_owners_pass(
    world: World, tmp_path: Path
) -> None:
    clock = world.clock
    keyring = KeyRing(tmp_path / "own-keys", clock=clock)
    keyring.generate()
    issuer = TokenIssuer(keyring, issuer="pbgm", audience="pbgm-api", clock=clock)
    store = MemoryStore(clock=clock)
    store.add_service_account(ServiceAccount("svc", SECRET_HASH, ("policies:read",)), actor="t")
    limit = RateLimit(failures=2, address_failures=3)
    app = Flask(__name__)
    app.register_blueprint(
        make_auth_blueprint(store=store, issuer=issuer, keyring=keyring, rate_limit=limit)
    )
    client = app.test_client()
    good = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": SECRET}
    assert client.post("/api/v1/token", data=good).status_code == 200  # verified once
    for attempt in range(3):
        bad = {**good, "client_id": f"guess-{attempt}", "client_secret": "nope"}
        assert client.post("/api/v1/token", data=bad).status_code == 401
    flooded = {**good, "client_secret": "another-guess"}
    assert client.post("/api/v1/token", data=flooded).status_code == 429
    assert client.post("/api/v1/token", data=good).status_code == 200


def test_failures_spread_over_more_than_a_minute_are_not_blocked(world: World) -> None:
    for _ in range(8):
        assert post_token(world, **refused_login()).status == 401
        world.clock.advance(seconds=15)


def test_the_rate_limit_is_configurable(tmp_path: Path) -> None:
    clock = FrozenClock()
    keyring = KeyRing(tmp_path / "keys", clock=clock)
    keyring.generate()
    issuer = TokenIssuer(keyring, issuer="pbgm", audience="pbgm-api", clock=clock)
    app = Flask(__name__)
    blueprint = make_auth_blueprint(
        store=MemoryStore(clock=clock), issuer=issuer, keyring=keyring, rate_limit=RateLimit(2)
    )
    app.register_blueprint(blueprint)
    form = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
    client = app.test_client()
    statuses = [client.post("/api/v1/token", data=form).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


# --- JWKS and rotation -----------------------------------------------------------------


def test_the_jwks_is_public_and_cacheable(world: World) -> None:
    reply = call(world, "GET", "/.well-known/jwks.json")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    (key,) = reply.json["keys"]
    assert (key["kid"], key["alg"], key["use"]) == (ring(world).active().kid, "ES256", "sig")
    assert "d" not in key


def test_after_rotation_old_tokens_stay_valid_and_the_jwks_lists_both(world: World) -> None:
    old_kid = ring(world).active().kid
    old_token = get_token(world, "svc-voltage")
    ring(world).rotate("RS256")
    new_token = get_token(world, "svc-voltage")
    new_kid = ring(world).active().kid
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    assert protected(world, old_token).status == 200
    assert protected(world, new_token).status == 200
    published = call(world, "GET", "/.well-known/jwks.json").json["keys"]
    assert {k["kid"]: k["alg"] for k in published} == {old_kid: "ES256", new_kid: "RS256"}
    world.clock.advance(minutes=16)  # the old token expires long before its key retires
    assert (protected(world, old_token).status, protected(world, old_token).code) == (
        401,
        "token_expired",
    )


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer {t}", 200),
        ("bearer {t}", 200),  # the scheme is case-insensitive (RFC 9110 §11.1)
        ("BEARER {t}", 200),
        ("Bearer  {t}", 401),  # one space, then the token
        ("Bearer{t}", 401),
        ("Bearer {t} ", 401),
        ("Bearer {t}!", 401),  # outside RFC 6750's b64token
        ("Bearer ", 401),
        ("Basic {t}", 401),
    ],
)
def test_the_authorization_header_reads_bearer_then_the_token(
    world: World, header: str, status: int
) -> None:
    token = get_token(world, "svc-voltage")
    value = header.format(t=token)
    reply = call(world, "GET", PROTECTED, headers={"Authorization": value})
    assert reply.status == status, value
    if status == 401:
        assert reply.code in {"token_invalid", "token_missing"}
