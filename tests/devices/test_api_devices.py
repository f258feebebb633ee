"""The device endpoints over HTTPS, through the API's enforcement point and the device
policies, against a CAMARA operator on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbgm.store import MemoryStore
from tests.camara.server import CamaraServer, device_key
from tests.devices.api import DeviceApi, start_api
from tests.devices.world import camara_device, seed


@pytest.fixture
def api(camara: CamaraServer, tmp_path: Path) -> Iterator[DeviceApi]:
    store = MemoryStore()
    seed(store, devices=5)
    running = start_api(store, camara, tmp_path)
    yield running
    running.close()


def problem(reply) -> dict:
    assert reply.headers["Content-Type"] == "application/problem+json", reply.text
    return reply.json()


def test_devices_are_registered_listed_changed_and_removed(api: DeviceApi):
    body = {"id": "rtu-1", "identifiers": {"ipv6Address": "2001:db8::1"}, "asset_id": "feeder-2"}
    made = api.call("POST", "/api/v1/devices", json=body)
    assert made.status_code == 201 and made.headers["Location"].endswith("/api/v1/devices/rtu-1")
    assert (
        api.call("GET", "/api/v1/devices", params={"asset_id": "feeder-2"}).json()["devices"][0][
            "id"
        ]
        == "rtu-1"
    )
    changed = api.call("PUT", "/api/v1/devices/rtu-1", json={**body, "owner": "dso"})
    assert changed.status_code == 200 and changed.json()["owner"] == "dso"
    got = api.call("GET", "/api/v1/devices/rtu-1").json()
    assert got["groups"] == [] and got["connectivity"]["reachable"] is None
    assert api.call("DELETE", "/api/v1/devices/rtu-1").status_code == 204
    assert api.call("GET", "/api/v1/devices/rtu-1").status_code == 404


def test_hostile_identifiers_are_all_listed_and_nothing_is_kept(api: DeviceApi):
    body = {
        "id": "bad",
        "identifiers": {
            "phoneNumber": "0151-CALL-ME",
            "ipv4Address": {"publicAddress": "999.1.1.1"},
        },
    }
    reply = api.call("POST", "/api/v1/devices", json=body)
    assert reply.status_code == 422
    codes = {(p["path"], p["code"]) for p in problem(reply)["problems"]}
    assert ("$.identifiers.phoneNumber", "invalid_phone_number") in codes
    assert ("$.identifiers.ipv4Address.publicAddress", "invalid_ipv4") in codes
    assert [d.id for d in api.store.list_devices()] == [f"pmu-{n}" for n in range(1, 6)]


@pytest.mark.parametrize(
    ("what", "path"),
    [
        ("a slash", "/api/v1/devices/a%2Fb/qos"),
        ("a NUL", "/api/v1/devices/%00"),
        ("301 characters", "/api/v1/devices/" + "x" * 301),
    ],
)
def test_hostile_device_ids_in_paths_are_refused(api: DeviceApi, what: str, path: str):
    reply = api.call("GET", path)
    assert reply.status_code in (400, 404) and problem(reply)["code"] in (
        "invalid_name",
        "invalid_parameter",
        "not_found",
    )


def test_scopes_open_the_endpoints(api: DeviceApi):
    assert api.call("GET", "/api/v1/devices", caller=None).status_code == 401
    reply = api.call(
        "POST", "/api/v1/devices/pmu-1/qos", caller="svc-reader", json={"duration_s": 60}
    )
    assert reply.status_code == 403 and problem(reply)["code"] == "insufficient_scope"
    assert api.call("GET", "/api/v1/devices", caller="svc-reader").status_code == 200
    assert api.camara.calls() == []


def test_a_session_over_rest_and_a_forbidden_profile_before_any_call(api: DeviceApi):
    made = api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    assert made.status_code == 201 and made.json()["status"] == "done"
    assert made.json()["qos_profile"] == "LOW_LATENCY"
    view = api.call("GET", "/api/v1/devices/pmu-1/qos").json()
    assert view["qos_session"]["session_id"] == made.json()["session_id"]
    assert view["qos_session"]["remaining_s"] > 0
    refused = api.call(
        "POST", "/api/v1/devices/pmu-2/qos", json={"duration_s": 600, "qos_profile": "THROUGHPUT_M"}
    )
    assert refused.status_code == 403 and problem(refused)["code"] == "qos_profile_not_allowed"
    assert len(api.camara.calls("createSession")) == 1
    eve = api.call("POST", "/api/v1/devices/pmu-2/qos", caller="op-eve", json={"duration_s": 600})
    assert eve.status_code == 403 and problem(eve)["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("what", "body", "code"),
    [
        ("a duration of 0", {"duration_s": 0}, "out_of_range"),
        ("a duration of 2^31", {"duration_s": 2**31}, "out_of_range"),
        (
            "an unknown profile name",
            {"duration_s": 60, "qos_profile": "x y"},
            "invalid_qos_profile",
        ),
    ],
)
def test_hostile_qos_bodies_change_nothing(api: DeviceApi, what: str, body: dict, code: str):
    reply = api.call("POST", "/api/v1/devices/pmu-1/qos", json=body)
    assert reply.status_code == 422
    assert code in [p["code"] for p in problem(reply)["problems"]]
    assert api.camara.calls() == [] and api.store.list_network_resources() == []


def test_extending_over_rest_is_capped(api: DeviceApi):
    api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 86_000})
    extended = api.call("PATCH", "/api/v1/devices/pmu-1/qos", json={"additional_s": 3_600})
    assert extended.status_code == 200
    assert extended.json()["duration_s"] == 86_400 and extended.json()["capped"] is True
    released = api.call("DELETE", "/api/v1/devices/pmu-1/qos")
    assert released.status_code == 200 and api.camara.sessions() == []


def test_a_group_action_answers_207_naming_the_failures(api: DeviceApi):
    api.camara.unknown.add(device_key(camara_device(3)))
    reply = api.call("POST", "/api/v1/device-groups/pmus/qos", json={"duration_s": 600})
    assert reply.status_code == 207
    answer = reply.json()
    assert answer["outcome"] == "some" and answer["failed"] == [
        {
            "device": "pmu-3",
            "status": "failed",
            "code": "identifier_not_found",
            "message": answer["failed"][0]["message"],
        }
    ]
    assert "check the phone number" in answer["failed"][0]["message"]
    everyone = api.call("POST", "/api/v1/device-groups/pmus/connectivity")
    assert everyone.status_code == 207  # pmu-3 unknown to the operator again
    view = api.call("GET", "/api/v1/device-groups/pmus/connectivity").json()
    assert view["reachable"] == 4 and view["unknown"] == 1


def test_membership_changes_are_all_or_nothing(api: DeviceApi):
    reply = api.call(
        "PATCH",
        "/api/v1/device-groups/pmus/members",
        json={"add": ["pmu-404"], "remove": ["pmu-1"]},
    )
    assert reply.status_code == 404
    assert api.store.get_device_group("pmus").members == tuple(f"pmu-{n}" for n in range(1, 6))
    made = api.call("POST", "/api/v1/device-groups", json={"id": "backup-links"})
    assert made.status_code == 201
    moved = api.call("PATCH", "/api/v1/device-groups/backup-links/members", json={"add": ["pmu-5"]})
    assert moved.json()["members"] == ["pmu-5"]
    both = api.call(
        "PATCH", "/api/v1/device-groups/pmus/members", json={"add": ["pmu-5"], "remove": ["pmu-5"]}
    )
    assert both.status_code == 422


def test_a_device_holding_a_session_cannot_be_removed(api: DeviceApi):
    api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    reply = api.call("DELETE", "/api/v1/devices/pmu-1")
    assert reply.status_code == 409 and problem(reply)["code"] == "device_in_use"
    assert "release them first" in problem(reply)["detail"]


def test_network_failures_answer_gateway_statuses_that_say_what_to_do(api: DeviceApi):
    api.camara.fail("createSession", 429, "TOO_MANY_REQUESTS", times=1, retry_after=7)
    busy = api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "7"
    assert problem(busy)["code"] == "network_busy" and "Retry-After" in problem(busy)["detail"]
    api.camara.fail("createSession", 500, "INTERNAL", times=1)
    broken = api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    assert broken.status_code == 502 and problem(broken)["code"] == "network_unavailable"
    assert problem(broken)["correlator"] and problem(broken)["upstream_status"] == 500
    api.camara.fail("createSession", 409, "CONFLICT", times=1)
    conflict = api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    assert (
        conflict.status_code == 409 and "extend or delete it first" in problem(conflict)["detail"]
    )


def test_connectivity_is_a_prometheus_metric(api: DeviceApi):
    api.camara.reachable[device_key(camara_device(2))] = {"reachable": False}
    api.call("POST", "/api/v1/devices/pmu-1/connectivity")
    api.call("POST", "/api/v1/devices/pmu-2/connectivity")
    api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600})
    text = api.call("GET", "/metrics").text
    assert 'pbgm_device_reachable{device="pmu-1"} 1.0' in text
    assert 'pbgm_device_reachable{device="pmu-2"} 0.0' in text
    assert 'pbgm_device_network_type{device="pmu-1",type="5G"} 1.0' in text
    assert (
        'pbgm_device_qos_session_expiry_timestamp{device="pmu-1",qos_profile="LOW_LATENCY"}' in text
    )
    assert "pbgm_devices 5.0" in text and "pbgm_devices_reachable 1.0" in text


def test_without_a_network_configuration_actions_say_how_to_set_one(tmp_path: Path):
    from pbgm.api import create_app
    from pbgm.auth.keys import KeyRing
    from pbgm.auth.secrets import hash_secret
    from pbgm.store import ServiceAccount

    store = MemoryStore()
    seed(store)
    store.add_service_account(
        ServiceAccount("op-anna", hash_secret("x"), ("devices:write",)), actor="seed"
    )
    KeyRing(tmp_path).generate()
    app = create_app({"keys_dir": str(tmp_path), "rate_limit": "0"}, store=store)
    token = app.extensions["pbgm"].issuer.issue(
        "op-anna",
        ("devices:write",),
        generation=store.get_service_account("op-anna").token_generation,
    )
    reply = app.test_client().post(
        "/api/v1/devices/pmu-1/qos",
        json={"duration_s": 600},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 503 and reply.json["code"] == "network_not_configured"
    assert "PBGM_NETWORK_CONFIG" in reply.json["detail"]
