"""Services fetch policies: by base64 id and group, by asset and type, as a listing with
the revision; grants decide what is served; ETags give 304 (over a real socket)."""

from __future__ import annotations

import pytest

from pbgm.access import encode_id_bytes
from tests.api.conftest import World, b64

LIMITS = {"policy_id": b64("limits-bess-01"), "policy_group": "operational-limits"}


def test_a_readable_policy_is_served_with_its_etag(world: World):
    reply = world.call("GET", "/api/v1/policy", params=LIMITS, caller="svc-voltage")
    assert reply.status == 200
    served = reply.json
    assert (served["id"], served["type"], served["version"]) == (
        "limits-bess-01",
        "operational_limits",
        1,
    )
    assert served["document"] == world.store.get_policy("limits-bess-01").published_document
    assert reply.headers["ETag"] == served["etag"]


def test_if_none_match_gives_304_until_the_policy_changes(world: World):
    first = world.call("GET", "/api/v1/policy", params=LIMITS, caller="svc-voltage")
    etag = first.headers["ETag"]
    again = world.call(
        "GET",
        "/api/v1/policy",
        params=LIMITS,
        caller="svc-voltage",
        headers={"If-None-Match": etag},
    )
    assert (again.status, again.body, again.headers["ETag"]) == (304, b"", etag)
    record = world.store.get_policy("limits-bess-01")
    document = dict(record.document, description="tightened")
    world.store.update_policy("limits-bess-01", document, expected_version=1, actor="op")
    world.store.set_policy_status("limits-bess-01", record.status, actor="op")
    changed = world.call(
        "GET",
        "/api/v1/policy",
        params=LIMITS,
        caller="svc-voltage",
        headers={"If-None-Match": etag},
    )
    assert changed.status == 200 and changed.json["version"] == 2
    assert changed.headers["ETag"] != etag


def test_by_asset_and_type(world: World):
    params = {"asset_id": b64("bess-01"), "policy_type": "operational_limits"}
    reply = world.call("GET", "/api/v1/policy", params=params, caller="svc-voltage")
    assert reply.status == 200
    assert [p["id"] for p in reply.json["policies"]] == ["limits-bess-01"]
    etag = reply.headers["ETag"]
    again = world.call(
        "GET",
        "/api/v1/policy",
        params=params,
        caller="svc-voltage",
        headers={"If-None-Match": etag},
    )
    assert again.status == 304


NOT_SERVED = [
    ("a policy without a grant", "svc-market", LIMITS),
    ("a policy that does not exist", "svc-voltage", {**LIMITS, "policy_id": b64("ghost")}),
    ("a caller without grants", "svc-nobody", LIMITS),
    (
        "an asset without readable policies",
        "svc-market",
        {"asset_id": b64("pv-inv-01"), "policy_type": "operational_limits"},
    ),
]


@pytest.mark.parametrize(("what", "caller", "params"), NOT_SERVED, ids=[r[0] for r in NOT_SERVED])
def test_not_permitted_and_not_found_are_the_same_404(world: World, what, caller, params):
    reply = world.call("GET", "/api/v1/policy", params=params, caller=caller)
    assert (reply.status, reply.code) == (404, "not_found")


def test_a_hidden_policy_and_a_missing_one_answer_alike(world: World):
    hidden = world.call("GET", "/api/v1/policy", params=LIMITS, caller="svc-market")
    missing = world.call(
        "GET",
        "/api/v1/policy",
        params={"policy_id": b64("ghost"), "policy_group": "operational-limits"},
        caller="svc-market",
    )
    assert hidden.json["detail"].replace("limits-bess-01", "X") == missing.json["detail"].replace(
        "ghost", "X"
    )
    assert set(hidden.json) == set(missing.json)


BAD_REQUESTS = [
    ("an id that is not base64", {**LIMITS, "policy_id": "bGltaXRz!"}, "malformed_id"),
    ("an id in the wrong alphabet", {**LIMITS, "policy_id": "a+b/"}, "malformed_id"),
    ("an id cut short", {**LIMITS, "policy_id": "YWJjZ"}, "malformed_id"),
    (
        "an id of bytes that are not UTF-8",
        {**LIMITS, "policy_id": encode_id_bytes(b"\xff\xfe")},
        "malformed_id",
    ),
    ("an empty id", {**LIMITS, "policy_id": ""}, "malformed_id"),
    ("the id of another group", {**LIMITS, "policy_group": "voltage-control"}, "id_type_mismatch"),
    (
        "an unknown policy type",
        {"asset_id": b64("bess-01"), "policy_type": "x"},
        "unknown_policy_type",
    ),
    (
        "an asset of another type",
        {"asset_id": b64("bess-01"), "policy_type": "flexoffer"},
        "id_type_mismatch",
    ),
    ("a policy id without its group", {"policy_id": b64("limits-bess-01")}, "invalid_parameters"),
    ("id and asset mixed", {**LIMITS, "asset_id": b64("bess-01")}, "invalid_parameters"),
    ("an unknown parameter", {**LIMITS, "debug": "1"}, "unknown_parameter"),
]


@pytest.mark.parametrize(("what", "params", "code"), BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_ids_and_parameters_are_400_with_a_stable_code(world: World, what, params, code):
    reply = world.call("GET", "/api/v1/policy", params=params, caller="svc-voltage")
    assert (reply.status, reply.code) == (400, code)


def test_a_repeated_parameter_is_refused(world: World):
    path = f"/api/v1/policy?policy_id={LIMITS['policy_id']}&policy_id=eA&policy_group=x"
    reply = world.call("GET", path, caller="svc-voltage")
    assert (reply.status, reply.code) == (400, "duplicate_parameter")


def test_the_listing_holds_the_readable_policies_and_the_revision(world: World):
    reply = world.call("GET", "/api/v1/policies", caller="svc-voltage")
    listing = reply.json
    assert listing["revision"] == world.store.revision() and listing["changed"] is True
    assert [p["id"] for p in listing["policies"]] == [
        "limits-bess-01",
        "limits-pv-inv-01",
        "voltage-control-config",
    ]
    only = world.call(
        "GET", "/api/v1/policies", params={"policy_type": "service_config"}, caller="svc-voltage"
    )
    assert [p["id"] for p in only.json["policies"]] == ["voltage-control-config"]


def test_a_loader_holding_the_current_revision_gets_no_download(world: World):
    revision = world.store.revision()
    params = {"since_revision": str(revision)}
    reply = world.call("GET", "/api/v1/policies", params=params, caller="svc-voltage")
    assert reply.json == {"revision": revision, "changed": False, "policies": []}
    world.store.set_user_enabled("op-ben", False, actor="admin")
    moved = world.call("GET", "/api/v1/policies", params=params, caller="svc-voltage")
    assert moved.json["revision"] == revision + 1 and len(moved.json["policies"]) == 3


def test_fetches_are_counted(world: World):
    world.call("GET", "/api/v1/policy", params=LIMITS, caller="svc-voltage")
    world.call("GET", "/api/v1/policy", params=LIMITS, caller="svc-market")
    metrics = world.call("GET", "/metrics", caller="svc-metrics").body.decode()
    assert 'pbgm_policy_fetches_total{result="served"} 1.0' in metrics
    assert 'pbgm_policy_fetches_total{result="not_found"} 1.0' in metrics
