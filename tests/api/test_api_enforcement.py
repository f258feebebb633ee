"""The one enforcement hook: every route but the public ones is behind it, scopes open
endpoints, administration needs an admin grant on what it addresses, and refusals
are audited (over a real socket)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask

from pbgm.api._cache import KEYS_TTL_S
from pbgm.api.access_policy import ADMIN_ENDPOINTS, PUBLIC_ENDPOINTS, protected_endpoints
from tests.api.conftest import Server, World, b64, make_world

PUBLIC_PATHS = {"/api/v1/token", "/.well-known/jwks.json", "/healthz", "/readyz"}


def concrete_url(rule) -> str:
    """A URL for a rule, with harmless values for its arguments."""
    values = {name: (7 if name == "grant_id" else b64("x")) for name in rule.arguments}
    url = rule.rule
    for name, value in values.items():
        url = url.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    return url


def api_rules(app: Flask) -> list:
    """The API's routes: not those of blueprints mounted beside it (the admin GUI,
    which enforces access itself and is walked by `tests/admin`)."""
    mounted = app.extensions["pbgm"].mounted
    return [r for r in app.url_map.iter_rules() if r.endpoint.partition(".")[0] not in mounted]


def routes(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in api_rules(app):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, concrete_url(rule)))
    return sorted(found)


def test_every_endpoint_is_either_public_or_in_the_access_policy(world: World):
    endpoints = {rule.endpoint for rule in api_rules(world.app)}
    public = world.services.public
    assert endpoints == public | protected_endpoints()
    assert not public & protected_endpoints() - {"ops.metrics"}
    assert public >= PUBLIC_ENDPOINTS


def test_every_protected_route_answers_401_without_a_token(world: World):
    checked = 0
    for endpoint, method, url in routes(world.app):
        if endpoint in world.services.public:
            continue
        reply = world.call(method, url)
        assert (endpoint, reply.status, reply.code) == (endpoint, 401, "token_missing")
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="pbgm"'
        checked += 1
    assert checked == len(protected_endpoints() - world.services.public) >= 30


def test_public_routes_answer_without_a_token(world: World):
    for endpoint, method, url in routes(world.app):
        if endpoint not in world.services.public:
            continue
        reply = world.call(method, url)
        assert reply.status != 401 or endpoint == "auth.token", endpoint
        assert url in PUBLIC_PATHS | {"/api/v1/openapi.json"}


def test_metrics_need_the_metrics_scope_by_default(world: World):
    assert world.call("GET", "/metrics").status == 401
    assert world.call("GET", "/metrics", caller="svc-voltage").code == "insufficient_scope"
    assert world.call("GET", "/metrics", caller="svc-limits-admin").code == "insufficient_scope"
    reply = world.call("GET", "/metrics", caller="svc-metrics")
    assert reply.status == 200 and b"pbgm_decisions_total" in reply.body


def test_metrics_can_be_made_public(server: Server, key_dir: Path):
    world = make_world(server, key_dir, metrics_public=True)
    assert world.call("GET", "/metrics").status == 200


BAD_TOKENS = [
    ("garbage", "Bearer not-a-jwt", "token_invalid"),
    ("no scheme", "abc.def.ghi", "token_invalid"),
    ("basic instead of bearer", "Basic dXNlcjpwYXNz", "token_invalid"),
]


@pytest.mark.parametrize(("what", "header", "code"), BAD_TOKENS, ids=[r[0] for r in BAD_TOKENS])
def test_bad_tokens_are_401_invalid_token(world: World, what: str, header: str, code: str):
    reply = world.call("GET", "/api/v1/policies", headers={"Authorization": header})
    assert (reply.status, reply.code) == (401, code)
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    metrics = world.call("GET", "/metrics", caller="svc-metrics").body.decode()
    assert f'pbgm_authentication_failures_total{{code="{code}"}} 1.0' in metrics


def test_a_token_of_a_disabled_account_is_refused(world: World):
    token = world.token("svc-voltage")
    world.store.set_service_account_enabled("svc-voltage", False, actor="test")
    reply = world.call("GET", "/api/v1/policies", headers={"Authorization": f"Bearer {token}"})
    assert (reply.status, reply.code) == (401, "token_revoked")


SCOPE_TABLE = [
    ("reading policies needs policies:read", "GET", "/api/v1/policies", ("decisions:write",)),
    ("deciding needs decisions:write", "POST", "/api/v1/decisions", ("policies:read",)),
    ("FlexOffers need flexoffers:write", "POST", "/api/v1/flexoffers", ("policies:read",)),
    ("administration needs admin", "GET", "/api/v1/admin/users", ("policies:read",)),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "scopes"), SCOPE_TABLE, ids=[r[0] for r in SCOPE_TABLE]
)
def test_a_missing_scope_is_403_insufficient_scope(world, what, method, path, scopes):
    token = world.token("svc-admin", scopes)
    reply = world.call(method, path, headers={"Authorization": f"Bearer {token}"}, json_body={})
    assert (reply.status, reply.code) == (403, "insufficient_scope")
    assert 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"]


ADMIN_TABLE = [
    ("a group admin reads a policy of its group", "svc-limits-admin", "limits-bess-01", 200),
    ("a group admin cannot read another group's", "svc-limits-admin", "kibernet-data-access", 403),
    ("a global admin reads any policy", "svc-admin", "kibernet-data-access", 200),
    ("a reader has no admin grant", "svc-nobody", "limits-bess-01", 403),
    ("a group admin meets a missing policy as refused", "svc-limits-admin", "ghost", 403),
    ("a global admin meets a missing policy as not found", "svc-admin", "ghost", 404),
]


@pytest.mark.parametrize(
    ("what", "caller", "policy", "status"), ADMIN_TABLE, ids=[r[0] for r in ADMIN_TABLE]
)
def test_administration_needs_an_admin_grant_on_what_it_addresses(
    world, what, caller, policy, status
):
    reply = world.call("GET", f"/api/v1/admin/policies/{b64(policy)}", caller=caller)
    assert reply.status == status


def test_a_group_admin_cannot_move_a_policy_out_of_its_group(world: World):
    record = world.call(
        "GET", f"/api/v1/admin/policies/{b64('limits-bess-01')}", caller="svc-admin"
    )
    moved = dict(record.json["document"], policy_group="data-sharing")
    reply = world.call(
        "PUT",
        f"/api/v1/admin/policies/{b64('limits-bess-01')}",
        caller="svc-limits-admin",
        json_body=moved,
        headers={"If-Match": record.headers["ETag"]},
    )
    assert (reply.status, reply.code) == (403, "permission_denied")
    assert world.store.get_policy("limits-bess-01").version == 1


def test_global_endpoints_need_the_global_grant(world: World):
    assert world.call("GET", "/api/v1/admin/users", caller="svc-limits-admin").status == 403
    assert world.call("GET", "/api/v1/admin/users", caller="svc-admin").status == 200


def test_refused_administration_is_audited_but_changes_nothing(world: World):
    before = world.export()
    reply = world.call(
        "POST", "/api/v1/admin/users", caller="svc-limits-admin", json_body={"name": "mallory"}
    )
    assert reply.status == 403
    entry = world.store.list_audit(limit=1)[0]
    assert (entry.actor, entry.action, entry.object_id) == (
        "svc-limits-admin",
        "api.refuse",
        "admin.create_user",
    )
    assert entry.details == {"method": "POST", "reason": "permission_denied"}
    assert world.export() == before


def test_a_grant_given_over_the_api_counts_on_the_next_request(world: World):
    path = f"/api/v1/admin/policies/{b64('kibernet-data-access')}"
    assert world.call("GET", path, caller="svc-limits-admin").status == 403
    grant = {
        "principal_kind": "service",
        "principal": "svc-limits-admin",
        "target_kind": "policy",
        "target": "kibernet-data-access",
        "permission": "admin",
    }
    assert (
        world.call("POST", "/api/v1/admin/grants", caller="svc-admin", json_body=grant).status
        == 201
    )
    assert world.call("GET", path, caller="svc-limits-admin").status == 200


def test_rate_limit_is_429_with_retry_after(server: Server, key_dir: Path):
    world = make_world(server, key_dir, rate_limit=3)
    statuses = [
        world.call("GET", "/api/v1/policies", caller="svc-voltage").status for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    reply = world.call("GET", "/api/v1/policies", caller="svc-voltage")
    assert reply.code == "rate_limited" and int(reply.headers["Retry-After"]) >= 1
    assert world.call("GET", "/api/v1/policies", caller="svc-market").status == 200


def test_admin_endpoints_are_all_addressed_by_the_admin_policy():
    assert all(name.startswith(("admin.", "ops.")) for name in ADMIN_ENDPOINTS)


def test_a_token_seen_before_is_still_checked_on_every_request(world: World, tmp_path: Path):
    token = world.token("svc-voltage")
    headers = {"Authorization": f"Bearer {token}"}
    assert world.call("GET", "/api/v1/policies", headers=headers).status == 200
    world.store.set_service_account_enabled("svc-voltage", False, actor="test")
    assert world.call("GET", "/api/v1/policies", headers=headers).code == "token_revoked"
    world.store.set_service_account_enabled("svc-voltage", True, actor="test")
    assert world.call("GET", "/api/v1/policies", headers=headers).code == "token_revoked"
    fresh = {"Authorization": f"Bearer {world.token('svc-voltage', ('policies:read',))}"}
    assert world.call("GET", "/api/v1/policies", headers=fresh).status == 200
    world.clock.advance(minutes=16)
    assert world.call("GET", "/api/v1/policies", headers=fresh).code == "token_expired"


def test_a_token_of_a_removed_key_stops_within_a_second(server: Server, tmp_path: Path):
    from pbgm.auth.keys import KeyRing

    ring = KeyRing(tmp_path / "keys")
    ring.generate()
    world = make_world(server, tmp_path / "keys")
    headers = {"Authorization": f"Bearer {world.token('svc-voltage')}"}
    assert world.call("GET", "/api/v1/policies", headers=headers).status == 200
    kid = ring.active().kid
    (tmp_path / "keys" / f"{kid}.pem").unlink()
    (tmp_path / "keys" / "keys.json").write_text(
        '{"format": "pbgm/auth/keys/v1", "active": null, "keys": []}'
    )
    time.sleep(KEYS_TTL_S)
    reply = world.call("GET", "/api/v1/policies", headers=headers)
    assert (reply.status, reply.code) == (401, "token_unknown_key")
