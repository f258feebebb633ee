"""Device actions under policy against a CAMARA operator on a real socket: decisions
before any call, durations capped as CAMARA caps them, group fan-out with per-device
results and an aggregate, membership changes while a group action runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.camara import CamaraNetwork
from pbgm.devices import DeviceManager, DeviceSettings
from pbgm.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from pbgm.network import NetworkError
from pbgm.store import MemoryStore, Store
from pbgm.store.base import Device
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade
from tests.camara.server import device_key
from tests.devices.world import POLICY, camara_device, device, seed


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"
    upgrade(url)
    sql = SqlStore(url)
    yield sql
    sql.close()


def manager(store: Store, network: CamaraNetwork, **settings: object) -> DeviceManager:
    return DeviceManager(store, network, settings=DeviceSettings(**settings))  # type: ignore[arg-type]


def test_a_session_is_started_recorded_and_audited_with_its_decision(store, camara, network):
    seed(store)
    result = manager(store, network).act("start", "op-anna", "pmu-1", duration_s=600)
    assert result.ok and result.data["qos_profile"] == "LOW_LATENCY"  # the group's default
    assert result.data["duration_s"] == 600 and result.data["capped"] is False
    [call] = camara.calls("createSession")
    assert call.body["device"] == camara_device(1) and call.body["duration"] == 600
    [session] = store.list_network_resources(device_id="pmu-1")
    assert session.remote_id == result.data["session_id"] and session.status == "AVAILABLE"
    entry = store.list_audit(object_id="pmu-1", limit=1)[0]
    assert entry.action == "device.qos_change" and entry.actor == "op-anna"
    assert entry.details["decision"] == "Permit" and entry.details["policy_ids"] == ["pmu-qos"]


def test_a_forbidden_profile_is_denied_before_any_call(store, camara, network):
    seed(store)
    with pytest.raises(PermissionDeniedError) as raised:
        manager(store, network).act(
            "start", "op-anna", "pmu-1", qos_profile="THROUGHPUT_M", duration_s=600
        )
    assert raised.value.code == "qos_profile_not_allowed"
    assert "THROUGHPUT_M" in raised.value.message
    assert camara.calls() == [] and store.list_network_resources() == []
    entry = store.list_audit(object_id="pmu-1", limit=1)[0]
    assert entry.details["denied"] == "qos_profile_not_allowed"


def test_a_caller_the_rules_do_not_permit_is_denied_before_any_call(store, camara, network):
    seed(store)
    with pytest.raises(PermissionDeniedError) as raised:
        manager(store, network).act("start", "op-eve", "pmu-1", duration_s=600)
    assert raised.value.code == "permission_denied"
    assert camara.calls() == []


def test_a_device_outside_every_permission_is_denied(store, camara, network):
    seed(store)
    store.add_device(device(9), actor="seed")  # in no group
    with pytest.raises(PermissionDeniedError) as raised:
        manager(store, network).act("refresh", "op-anna", "pmu-9")
    assert raised.value.code == "action_not_in_policy" and "pmu-9" in raised.value.message
    assert camara.calls() == []


def test_a_session_longer_than_the_policy_allows_is_capped(store, camara, network):
    seed(store)
    result = manager(store, network).act("start", "op-anna", "pmu-1", duration_s=100_000)
    assert result.data["duration_s"] == 86_400 and result.data["capped"] is True
    assert camara.calls("createSession")[0].body["duration"] == 86_400


def test_an_extension_beyond_the_policy_maximum_is_capped(store, camara, network):
    seed(store)
    devices = manager(store, network)
    devices.act("start", "op-anna", "pmu-1", duration_s=80_000)
    result = devices.act("extend", "op-anna", "pmu-1", additional_s=30_000)
    assert camara.calls("extendQosSessionDuration")[0].body == {
        "requestedAdditionalDuration": 6_400
    }
    assert result.data["duration_s"] == 86_400 and result.data["capped"] is True
    with pytest.raises(PermissionDeniedError) as raised:
        devices.act("extend", "op-anna", "pmu-1", additional_s=60)
    assert raised.value.code == "session_at_maximum"
    assert len(camara.calls("extendQosSessionDuration")) == 1


def test_an_extension_the_operator_caps_is_reported_as_capped(store, camara, network):
    seed(store)  # the policy sets no maximum for QOS_E; the operator's profile stops at 50,000 s
    devices = manager(store, network)
    devices.act("start", "op-anna", "pmu-1", qos_profile="QOS_E", duration_s=30_000)
    result = devices.act("extend", "op-anna", "pmu-1", additional_s=30_000)
    assert camara.calls("extendQosSessionDuration")[0].body == {
        "requestedAdditionalDuration": 30_000
    }
    assert result.data["duration_s"] == 50_000 and result.data["capped"] is True
    assert store.list_network_resources(device_id="pmu-1")[0].duration_s == 50_000


def test_a_session_shorter_than_the_profile_minimum_is_refused(store, camara, network):
    seed(store)
    with pytest.raises(PermissionDeniedError) as raised:
        manager(store, network).act("start", "op-anna", "pmu-1", duration_s=10)
    assert raised.value.code == "duration_below_minimum" and camara.calls() == []


def test_a_released_session_is_forgotten_and_a_second_release_skips(store, camara, network):
    seed(store)
    devices = manager(store, network)
    devices.act("start", "op-anna", "pmu-1", duration_s=600)
    assert devices.act("release", "op-anna", "pmu-1").data["released"] is True
    assert camara.sessions() == [] and store.list_network_resources() == []
    with pytest.raises(NotFoundError):
        devices.act("release", "op-anna", "pmu-1")


def test_a_network_failure_is_raised_recorded_and_changes_nothing(store, camara, network):
    seed(store)
    camara.fail("createSession", 409, "CONFLICT", times=1)
    with pytest.raises(NetworkError) as raised:
        manager(store, network).act("start", "op-anna", "pmu-1", duration_s=600)
    assert raised.value.code == "session_conflict"
    assert store.list_network_resources() == []
    entry = store.list_audit(object_id="pmu-1", limit=1)[0]
    assert entry.details["result"] == "failed" and entry.details["error"] == "session_conflict"
    assert entry.details["decision"] == "Permit" and entry.details["correlator"]


def test_a_group_of_50_where_3_fail_names_the_3(store, camara, network):
    seed(store, devices=50)
    camara.unknown.add(device_key(camara_device(7)))  # the operator does not know it
    camara.fail("createSession", 503, "UNAVAILABLE", device=camara_device(21))
    camara.fail("createSession", 409, "CONFLICT", device=camara_device(44))
    result = manager(store, network, concurrency=8, batch=16).act_on_group(
        "start", "op-anna", "pmus", duration_s=600
    )
    answer = result.as_json()
    assert answer["outcome"] == "some" and answer["members"] == 50
    assert {(f["device"], f["code"]) for f in answer["failed"]} == {
        ("pmu-7", "identifier_not_found"),
        ("pmu-21", "network_unavailable"),
        ("pmu-44", "session_conflict"),
    }
    assert len(answer["succeeded"]) == 47 and answer["skipped"] == []
    assert [r["device"] for r in answer["results"]] == sorted(f"pmu-{n}" for n in range(1, 51))
    recorded = {r.device_id for r in store.list_network_resources(kind="qos_session")}
    assert recorded == {f"pmu-{n}" for n in range(1, 51)} - {"pmu-7", "pmu-21", "pmu-44"}
    audited = store.list_audit(limit=200)
    assert len([e for e in audited if e.action == "device.qos_change"]) == 50


def test_a_group_action_nobody_may_make_calls_nothing(store, camara, network):
    seed(store, devices=5)
    result = manager(store, network).act_on_group("start", "op-eve", "pmus", duration_s=600)
    assert result.outcome == "none" and camara.calls() == []
    assert {r.status for r in result.results} == {"denied"}


def test_every_member_succeeding_is_all(store, camara, network):
    seed(store, devices=4)
    result = manager(store, network).act_on_group("refresh", "op-anna", "pmus")
    assert result.outcome == "all"
    assert {s.device_id for s in store.list_device_status()} == {f"pmu-{n}" for n in range(1, 5)}


def test_membership_changes_during_a_group_action(store, camara, network):
    seed(store, devices=6)
    store.add_device(device(9), actor="seed")
    gate = camara.hold()
    devices = manager(store, network, concurrency=2)
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(
            result=devices.act_on_group("start", "op-anna", "pmus", duration_s=600)
        )
    )
    runner.start()
    deadline = time.monotonic() + 10
    while len(camara.calls("createSession")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # the first two members' calls are held at the operator
    store.remove_device_members("pmus", ["pmu-6"], actor="op-ben")
    store.add_device_members("pmus", ["pmu-9"], actor="op-ben")
    gate.set()
    runner.join(10)
    result = outcome["result"]
    by_device = {r.device_id: r for r in result.results}
    assert sorted(by_device) == [f"pmu-{n}" for n in range(1, 7)]  # the members at the start
    assert by_device["pmu-6"].status == "skipped" and by_device["pmu-6"].code == "left_group"
    assert all(by_device[f"pmu-{n}"].ok for n in range(1, 6))
    assert result.outcome == "all"  # every device acted on succeeded
    called = {device_key(c.body["device"]) for c in camara.calls("createSession")}
    assert device_key(camara_device(6)) not in called and device_key(camara_device(9)) not in called


def test_a_device_leaving_the_only_group_that_permits_is_not_acted_on(store, camara, network):
    seed(store, devices=2)
    gate = camara.hold()
    devices = manager(store, network, concurrency=1)
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=devices.act_on_group("refresh", "op-anna", "pmus"))
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not camara.calls("getReachabilityStatus") and time.monotonic() < deadline:
        time.sleep(0.01)
    store.remove_device_members("pmus", ["pmu-2"], actor="op-ben")
    gate.set()
    runner.join(10)
    assert [r.status for r in outcome["result"].results] == ["done", "skipped"]


HOSTILE_PARAMETERS = [
    ("a duration of 0", "start", {"duration_s": 0}, "out_of_range"),
    ("a duration of 2^31", "start", {"duration_s": 2**31}, "out_of_range"),
    ("a duration given as text", "start", {"duration_s": "600"}, "out_of_range"),
    ("a duration given as true", "start", {"duration_s": True}, "out_of_range"),
    ("no duration", "start", {}, "missing_field"),
    (
        "a profile name with a space",
        "start",
        {"duration_s": 60, "qos_profile": "LOW LATENCY"},
        "invalid_qos_profile",
    ),
    (
        "a profile name of two letters",
        "start",
        {"duration_s": 60, "qos_profile": "LL"},
        "invalid_qos_profile",
    ),
    ("an unknown field", "start", {"duration_s": 60, "priority": 1}, "unknown_field"),
    ("an extension of 0", "extend", {"additional_s": 0}, "out_of_range"),
    ("an unknown subscription kind", "subscribe", {"kinds": ["battery"]}, "enum"),
]


@pytest.mark.parametrize(
    ("what", "action", "body", "code"),
    HOSTILE_PARAMETERS,
    ids=[row[0] for row in HOSTILE_PARAMETERS],
)
def test_hostile_parameters_are_refused_before_anything(what, action, body, code):
    from pbgm.devices import read_action
    from pbgm.errors import ValidationError

    with pytest.raises(ValidationError) as raised:
        read_action(action, body)
    assert code in [p.code for p in raised.value.problems]


def test_an_unknown_profile_name_is_denied_by_policy_before_any_call(store, camara, network):
    seed(store)
    with pytest.raises(PermissionDeniedError) as raised:
        manager(store, network).act("start", "op-anna", "pmu-1", qos_profile="GOLD", duration_s=60)
    assert raised.value.code == "qos_profile_not_allowed" and camara.calls() == []


def test_without_a_default_profile_a_profile_must_be_named(store, camara, network):
    policy = {**POLICY, "content": {**POLICY["content"], "device_groups": {}}}
    seed(store, policy=policy)
    with pytest.raises(InvalidInputError) as raised:
        manager(store, network).act("start", "op-anna", "pmu-1", duration_s=600)
    assert raised.value.code == "qos_profile_required" and camara.calls() == []


def test_provisioning_and_status(store, camara, network):
    seed(store)
    devices = manager(store, network)
    made = devices.act("provision", "op-anna", "pmu-1", qos_profile="LOW_LATENCY")
    assert made.data["status"] == "AVAILABLE"
    assert [r.kind for r in store.list_network_resources()] == ["qos_assignment"]
    camara.reachable[device_key(camara_device(2))] = {"reachable": False, "network_type": "4G"}
    refreshed = devices.act("refresh", "op-anna", "pmu-2")
    assert refreshed.data["reachable"] is False and refreshed.data["network_type"] == "4G"
    assert store.get_device_status("pmu-2").source == "poll"
    devices.act("deprovision", "op-anna", "pmu-1")
    assert store.list_network_resources() == [] and len(camara.calls("revokeAssignment")) == 1


def test_subscriptions_need_a_sink_and_make_one_per_event_type(store, camara, config, tmp_path):
    seed(store)
    network = CamaraNetwork(config)
    try:
        with pytest.raises(NetworkError) as raised:
            manager(store, network).act("subscribe", "op-anna", "pmu-1")
        assert raised.value.code == "network_not_configured"
        sink = "https://pbgm.example/api/v1/device-notifications"
        made = manager(store, network, sink_url=sink).act("subscribe", "op-anna", "pmu-1")
    finally:
        network.close()
    kinds = sorted(s["kind"] for s in made.data["subscriptions"])
    assert kinds == [
        "network_type_subscription",
        "reachability_subscription",
        "reachability_subscription",
        "roaming_subscription",
    ]
    hashes = {r.sink_token_hash for r in store.list_network_resources()}
    assert len(hashes) == 4 and None not in hashes  # one credential per subscription


def test_an_unconfigured_network_says_so(store):
    seed(store)
    with pytest.raises(NetworkError) as raised:
        DeviceManager(store).act("start", "op-anna", "pmu-1", duration_s=600)
    assert raised.value.code == "network_not_configured"
    assert "PBGM_NETWORK_CONFIG" in raised.value.message


def test_an_unknown_device_is_not_found(store, network):
    seed(store)
    with pytest.raises(NotFoundError):
        manager(store, network).act("start", "op-anna", "pmu-404", duration_s=600)
    assert isinstance(device(1), Device)
