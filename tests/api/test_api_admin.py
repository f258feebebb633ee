"""Administration over REST: policies with optimistic concurrency, users, groups,
service accounts (secret shown once), grants and the audit log."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from pbgm.auth.secrets import is_secret_hash, verify_secret
from pbgm.testing import permit, policy_document
from tests.api.conftest import World, b64

ADMIN = "/api/v1/admin"


def new_policy(**fields: Any) -> dict[str, Any]:
    document = policy_document(
        "data-for-market",
        policy_group="data-sharing",
        rules=[permit("read", target={"action": {"id": "read"}})],
    )
    return {**document, **fields}


def policy_path(policy_id: str = "data-for-market", tail: str = "") -> str:
    return f"{ADMIN}/policies/{b64(policy_id)}{tail}"


def test_policy_lifecycle_create_update_publish_rollback_retire(world: World):
    created = world.call(
        "POST",
        f"{ADMIN}/policies",
        caller="svc-admin",
        json_body=new_policy(),
        params={"reason": "new"},
    )
    assert created.status == 201 and created.json["status"] == "draft"
    assert created.headers["ETag"] == '"v1"' and created.headers["Location"] == policy_path()
    updated = world.call(
        "PUT",
        policy_path(),
        caller="svc-admin",
        json_body=new_policy(description="v2"),
        headers={"If-Match": '"v1"'},
    )
    assert (updated.status, updated.json["version"], updated.headers["ETag"]) == (200, 2, '"v2"')
    published = world.call(
        "POST", policy_path(tail="/publish"), caller="svc-admin", json_body={"version": 1}
    )
    assert (published.json["status"], published.json["published_version"]) == ("published", 1)
    rolled = world.call(
        "POST",
        policy_path(tail="/rollback"),
        caller="svc-admin",
        json_body={"version": 1, "reason": "undo"},
    )
    assert (rolled.json["version"], rolled.json["published_version"]) == (3, 3)
    versions = world.call("GET", policy_path(tail="/versions"), caller="svc-admin").json["versions"]
    assert [(v["version"], v["action"]) for v in versions] == [
        (1, "create"),
        (2, "update"),
        (3, "rollback"),
    ]
    retired = world.call("POST", policy_path(tail="/retire"), caller="svc-admin")
    assert retired.json["status"] == "retired"
    actions = [e.action for e in world.store.list_audit(object_id="data-for-market")]
    assert actions == [
        "policy.retire",
        "policy.publish",
        "policy.rollback",
        "policy.publish",
        "policy.update",
        "policy.create",
    ]
    assert {e.actor for e in world.store.list_audit(object_id="data-for-market")} == {"svc-admin"}


def test_updates_need_the_current_version_in_if_match(world: World):
    world.call("POST", f"{ADMIN}/policies", caller="svc-admin", json_body=new_policy())
    body = new_policy(description="changed")
    missing = world.call("PUT", policy_path(), caller="svc-admin", json_body=body)
    assert (missing.status, missing.code) == (428, "precondition_required")
    garbled = world.call(
        "PUT", policy_path(), caller="svc-admin", json_body=body, headers={"If-Match": "v1"}
    )
    assert (garbled.status, garbled.code) == (400, "invalid_if_match")
    stale = world.call(
        "PUT", policy_path(), caller="svc-admin", json_body=body, headers={"If-Match": '"v7"'}
    )
    assert (stale.status, stale.code) == (412, "version_conflict")
    assert stale.json["current_version"] == 1
    assert world.store.get_policy("data-for-market").version == 1


def test_an_invalid_policy_lists_every_problem_and_stores_nothing(world: World):
    before = world.export()
    bad = new_policy(rule_combining="majority", type="nonsense")
    reply = world.call("POST", f"{ADMIN}/policies", caller="svc-admin", json_body=bad)
    assert (reply.status, reply.code) == (422, "validation_failed")
    assert len(reply.json["problems"]) >= 2
    assert world.export() == before


def test_a_group_admin_creates_policies_in_its_group_only(world: World):
    mine = new_policy(policy_group="operational-limits", type="data_access")
    other = new_policy()
    assert (
        world.call("POST", f"{ADMIN}/policies", caller="svc-limits-admin", json_body=mine).status
        == 201
    )
    reply = world.call("POST", f"{ADMIN}/policies", caller="svc-limits-admin", json_body=other)
    assert reply.status == 403


def test_users_groups_and_members(world: World):
    assert (
        world.call(
            "POST", f"{ADMIN}/users", caller="svc-admin", json_body={"name": "op-carl"}
        ).status
        == 201
    )
    assert world.call(
        "POST", f"{ADMIN}/users", caller="svc-admin", json_body={"name": "op-carl"}
    ).code == ("already_exists")
    disabled = world.call(
        "PATCH", f"{ADMIN}/users/op-carl", caller="svc-admin", json_body={"enabled": False}
    )
    assert disabled.json["enabled"] is False
    world.call("POST", f"{ADMIN}/groups", caller="svc-admin", json_body={"name": "night-shift"})
    added = world.call(
        "POST",
        f"{ADMIN}/groups/night-shift/members",
        caller="svc-admin",
        json_body={"user": "op-carl"},
    )
    assert added.status == 201
    group = world.call("GET", f"{ADMIN}/groups/night-shift", caller="svc-admin").json
    assert group["members"] == ["op-carl"]
    assert (
        world.call(
            "DELETE", f"{ADMIN}/groups/night-shift/members/op-carl", caller="svc-admin"
        ).status
        == 204
    )
    assert world.store.members_of("night-shift") == []
    missing = world.call(
        "POST", f"{ADMIN}/users", caller="svc-admin", json_body={"display_name": 3}
    )
    assert {p["path"] for p in missing.json["problems"]} == {"$.name", "$.display_name"}


def token_with(world: World, client_id: str, secret: str):
    form = urlencode({"grant_type": "client_credentials"})
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {basic}",
    }
    return world.call("POST", "/api/v1/token", body=form, headers=headers)


def test_a_service_account_secret_is_shown_once_and_stored_hashed(world: World):
    body = {"client_id": "svc-new", "scopes": ["policies:read"], "description": "loader"}
    created = world.call("POST", f"{ADMIN}/service-accounts", caller="svc-admin", json_body=body)
    assert created.status == 201 and created.headers["Cache-Control"] == "no-store"
    secret = created.json["client_secret"]
    stored = world.store.get_service_account("svc-new").secret_hash
    assert is_secret_hash(stored) and secret not in stored and verify_secret(secret, stored)
    listing = world.call("GET", f"{ADMIN}/service-accounts", caller="svc-admin")
    assert secret.encode() not in listing.body and b"secret" not in listing.body
    assert all(secret not in str(e.details) for e in world.store.list_audit(limit=50))
    token = token_with(world, "svc-new", secret)
    assert token.status == 200 and token.json["scope"] == "policies:read"
    assert token_with(world, "svc-new", secret + "x").status == 401
    metrics = world.call("GET", "/metrics", caller="svc-metrics").body.decode()
    assert 'pbgm_authentication_failures_total{code="invalid_client"} 1.0' in metrics


def test_unknown_scopes_are_refused(world: World):
    body = {"client_id": "svc-new", "scopes": ["root"]}
    reply = world.call("POST", f"{ADMIN}/service-accounts", caller="svc-admin", json_body=body)
    assert (reply.status, reply.json["problems"][0]["code"]) == (422, "unknown_scope")


def test_disabling_and_deleting_a_service_account(world: World):
    token = world.token("svc-market")
    path = f"{ADMIN}/service-accounts/svc-market"
    assert world.call("PATCH", path, caller="svc-admin", json_body={"enabled": False}).status == 200
    refused = world.call("GET", "/api/v1/policies", headers={"Authorization": f"Bearer {token}"})
    assert refused.code == "token_revoked"
    assert world.call("DELETE", path, caller="svc-admin").status == 204
    assert world.store.list_grants(principal="svc-market") == []


def test_grants_are_listed_changed_and_deleted(world: World):
    grants = world.call(
        "GET", f"{ADMIN}/grants", caller="svc-admin", params={"principal": "svc-market"}
    )
    (grant,) = grants.json["grants"]
    path = f"{ADMIN}/grants/{grant['id']}"
    assert (
        world.call("PATCH", path, caller="svc-admin", json_body={"enabled": False}).json["enabled"]
        is False
    )
    params = {"policy_id": b64("fo-template-bess-01"), "policy_group": "flexibility"}
    assert world.call("GET", "/api/v1/policy", params=params, caller="svc-market").status == 404
    assert world.call("DELETE", path, caller="svc-admin").status == 204
    assert world.call("DELETE", path, caller="svc-admin").code == "not_found"


def test_the_audit_log_pages_back(world: World):
    first = world.call("GET", f"{ADMIN}/audit", caller="svc-admin", params={"limit": "5"}).json
    assert len(first["entries"]) == 5
    older = world.call(
        "GET",
        f"{ADMIN}/audit",
        caller="svc-admin",
        params={"limit": "5", "before_id": str(first["next_before_id"])},
    ).json
    assert older["entries"][0]["id"] == first["entries"][-1]["id"] - 1
