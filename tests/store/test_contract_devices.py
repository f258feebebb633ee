"""The Store contract, devices: the registry with CAMARA identifiers, device groups and
their members, network resources found by their sink credential, connectivity
status; audited, no change of the revision, all or nothing (against every store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from pbgm.errors import AlreadyExistsError, InvalidInputError, NotFoundError, ValidationError
from pbgm.store import Store
from pbgm.store._device_rules import token_hash
from pbgm.store.base import Device, DeviceGroup, DeviceStatus, NetworkResource
from pbgm.store.sql import SqlStore
from tests.store.conftest import table_ids

DEVICE_TABLES = ("device_status", "network_resources", "device_members", "device_groups", "devices")


@pytest.fixture(autouse=True)
def _no_devices_left(store: Store) -> None:
    """The shared PostgreSQL database keeps rows between tests: start without devices."""
    if isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            for table in DEVICE_TABLES:
                connection.execute(text(f"DELETE FROM {table}"))


def pmu(number: int, **fields: Any) -> Device:
    values: dict[str, Any] = {
        "id": f"pmu-{number}",
        "identifiers": {"phoneNumber": f"+49151000{number:05d}"},
        "owner": "dso-wunsiedel",
        "asset_id": "substation-7",
    }
    values.update(fields)
    return Device(**values)


def session(device_id: str = "pmu-1", remote_id: str = "s-1", **fields: Any) -> NetworkResource:
    values: dict[str, Any] = {
        "kind": "qos_session",
        "remote_id": remote_id,
        "device_id": device_id,
        "status": "AVAILABLE",
        "qos_profile": "LOW_LATENCY",
        "duration_s": 600,
        "expires_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "sink_token_hash": token_hash(f"token-{remote_id}"),
        "details": {"correlator": "c-1"},
    }
    values.update(fields)
    return NetworkResource(**values)


def test_a_device_is_kept_with_its_identifiers_and_read_back(store: Store):
    identifiers = {
        "phoneNumber": "+4915100000003",
        "ipv4Address": {"publicAddress": "203.0.113.9", "privateAddress": "10.20.0.9"},
        "ipv6Address": "2001:db8::9",
    }
    added = store.add_device(pmu(3, identifiers=identifiers, description="edgePMU 3"), actor="op")
    assert store.get_device("pmu-3") == added
    assert added.identifiers == identifiers and added.created_at == added.updated_at
    assert store.list_devices() == [added]
    assert store.list_devices(asset_id="substation-7") == [added]
    assert store.list_devices(asset_id="elsewhere") == []


def test_devices_are_audited_but_do_not_move_the_revision(store: Store):
    store.add_device(pmu(1), actor="op-anna")
    store.update_device(pmu(1, owner="vpp"), actor="op-ben")
    store.add_device_group(DeviceGroup("pmus", members=("pmu-1",)), actor="op-anna")
    audited = {"decision": "Permit", "correlator": "c-1"}
    store.put_network_resource(session(), actor="svc", action="qos_session.create", details=audited)
    store.put_device_status(DeviceStatus("pmu-1", reachable=True, source="poll"), actor="svc")
    assert store.revision() == 0
    actions = [(e.action, e.actor) for e in store.list_audit(object_id="pmu-1")]
    assert actions == [
        ("device.status", "svc"),
        ("qos_session.create", "svc"),
        ("device.update", "op-ben"),
        ("device.add", "op-anna"),
    ]
    created = store.list_audit(object_id="pmu-1")[1].details
    assert created["remote_id"] == "s-1" and created["decision"] == "Permit"


HOSTILE_IDENTIFIERS = [
    ("a phone number without +", {"phoneNumber": "015100000003"}, "invalid_phone_number"),
    ("a phone number with letters", {"phoneNumber": "+49151abc"}, "invalid_phone_number"),
    ("a phone number of 16 digits", {"phoneNumber": "+4915100000000000"}, "invalid_phone_number"),
    ("an IPv4 address of 300", {"ipv4Address": {"publicAddress": "203.0.113.300",
                                                "publicPort": 1}}, "invalid_ipv4"),
    ("an IPv4 address without port or private address",
     {"ipv4Address": {"publicAddress": "203.0.113.3"}}, "ipv4_incomplete"),
    ("a port of 70000", {"ipv4Address": {"publicAddress": "203.0.113.3", "publicPort": 70000}},
     "invalid_port"),
    ("an IPv6 address that is not one", {"ipv6Address": "2001:db8::zz"}, "invalid_ipv6"),
    ("an IPv4 address given as IPv6", {"ipv6Address": "203.0.113.3"}, "invalid_ipv6"),
    ("an access identifier without a domain", {"networkAccessIdentifier": "pmu"}, "invalid_nai"),
    ("no identifier at all", {}, "missing_identifier"),
    ("an identifier CAMARA does not know", {"imsi": "262011234567890"}, "unknown_identifier"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "identifiers", "code"), HOSTILE_IDENTIFIERS,
                         ids=table_ids(HOSTILE_IDENTIFIERS))  # fmt: skip
def test_a_malformed_identifier_is_refused_and_nothing_kept(
    store: Store, what: str, identifiers: dict[str, Any], code: str
):
    with pytest.raises(ValidationError) as raised:
        store.add_device(pmu(1, identifiers=identifiers), actor="op")
    assert code in [p.code for p in raised.value.problems]
    assert store.list_devices() == [] and store.list_audit() == []


def test_every_problem_of_the_identifiers_is_listed(store: Store):
    bad = {"phoneNumber": "0151", "ipv6Address": "x", "ipv4Address": {"publicAddress": "1.2.3"}}
    with pytest.raises(ValidationError) as raised:
        store.add_device(pmu(1, identifiers=bad), actor="op")
    paths = sorted(p.path for p in raised.value.problems)
    assert paths == [
        "$.identifiers.ipv4Address",
        "$.identifiers.ipv4Address.publicAddress",
        "$.identifiers.ipv6Address",
        "$.identifiers.phoneNumber",
    ]


@pytest.mark.parametrize("device_id", ["", "a/b", "pmu+1", "#", "x" * 101, "-lead", "é"])
def test_a_device_id_unsafe_in_a_path_or_topic_is_refused(store: Store, device_id: str):
    with pytest.raises(InvalidInputError) as raised:
        store.add_device(pmu(1, id=device_id), actor="op")
    assert raised.value.code == "invalid_name"


def test_a_phone_number_belongs_to_one_device(store: Store):
    store.add_device(pmu(1), actor="op")
    with pytest.raises(AlreadyExistsError) as raised:
        store.add_device(pmu(2, identifiers=pmu(1).identifiers), actor="op")
    assert "pmu-1" in raised.value.message
    with pytest.raises(AlreadyExistsError):
        store.add_device(pmu(1), actor="op")
    store.add_device(pmu(2), actor="op")
    with pytest.raises(AlreadyExistsError):
        store.update_device(pmu(2, identifiers=pmu(1).identifiers), actor="op")
    assert store.get_device("pmu-2").identifiers == pmu(2).identifiers


def test_groups_hold_members_and_a_device_knows_its_groups(store: Store):
    for n in (1, 2, 3):
        store.add_device(pmu(n), actor="op")
    made = store.add_device_group(DeviceGroup("pmus", "edgePMUs", ("pmu-2", "pmu-1")), actor="op")
    assert made.members == ("pmu-1", "pmu-2")
    changed = store.add_device_members("pmus", ["pmu-3", "pmu-1"], actor="op")
    assert changed.members == ("pmu-1", "pmu-2", "pmu-3")
    assert store.list_audit(limit=1)[0].details == {"added": ["pmu-3"]}
    store.add_device_group(DeviceGroup("backup"), actor="op")
    store.add_device_members("backup", ["pmu-3"], actor="op")
    assert store.device_groups_of("pmu-3") == ["backup", "pmus"]
    assert [d.id for d in store.list_devices(group="pmus")] == ["pmu-1", "pmu-2", "pmu-3"]
    left = store.remove_device_members("pmus", ["pmu-1", "pmu-9"], actor="op")
    assert left.members == ("pmu-2", "pmu-3")
    assert store.list_audit(limit=1)[0].details == {"removed": ["pmu-1"]}
    assert [g.id for g in store.list_device_groups()] == ["backup", "pmus"]
    assert store.get_device_group("pmus") == left


def test_adding_an_unknown_device_changes_nothing(store: Store):
    store.add_device(pmu(1), actor="op")
    store.add_device_group(DeviceGroup("pmus"), actor="op")
    with pytest.raises(NotFoundError) as raised:
        store.add_device_members("pmus", ["pmu-1", "pmu-404"], actor="op")
    assert raised.value.details["devices"] == ["pmu-404"]
    assert store.get_device_group("pmus").members == ()
    with pytest.raises(NotFoundError):
        store.add_device_members("no-such-group", ["pmu-1"], actor="op")
    with pytest.raises(NotFoundError):
        store.add_device_group(DeviceGroup("new", members=("pmu-404",)), actor="op")
    assert [g.id for g in store.list_device_groups()] == ["pmus"]


def test_deleting_a_device_forgets_its_memberships_resources_and_status(store: Store):
    store.add_device(pmu(1), actor="op")
    store.add_device(pmu(2), actor="op")
    store.add_device_group(DeviceGroup("pmus", members=("pmu-1", "pmu-2")), actor="op")
    store.put_network_resource(session(), actor="svc", action="qos_session.create")
    store.put_device_status(DeviceStatus("pmu-1", reachable=False, source="poll"), actor="svc")
    store.delete_device("pmu-1", actor="op")
    assert store.get_device_group("pmus").members == ("pmu-2",)
    assert store.list_network_resources() == [] and store.list_device_status() == []
    with pytest.raises(NotFoundError):
        store.get_device("pmu-1")
    store.delete_device_group("pmus", actor="op")
    assert store.list_device_groups() == [] and store.device_groups_of("pmu-2") == []


def test_a_network_resource_is_found_by_its_sink_credential_and_updated(store: Store):
    store.add_device(pmu(1), actor="op")
    made = store.put_network_resource(session(), actor="svc", action="qos_session.create")
    assert made.created_by == "svc" and made.created_at == made.updated_at
    assert store.find_network_resource(token_hash("token-s-1")) == made
    with pytest.raises(NotFoundError):
        store.find_network_resource(token_hash("a forged token"))
    extended = session(duration_s=1200, details={"capped": True})
    again = store.put_network_resource(extended, actor="svc-2", action="qos_session.extend")
    assert again.duration_s == 1200 and again.created_by == "svc"
    assert again.created_at == made.created_at and again.updated_at > made.updated_at
    assert store.get_network_resource("qos_session", "s-1") == again
    assert store.list_network_resources(device_id="pmu-1", kind="qos_session") == [again]
    store.delete_network_resource("qos_session", "s-1", actor="svc", details={"why": "ended"})
    assert store.list_network_resources() == []
    assert store.list_audit(limit=1)[0].action == "qos_session.forget"


def test_a_sink_credential_opens_one_resource_only(store: Store):
    store.add_device(pmu(1), actor="op")
    store.put_network_resource(session(), actor="svc", action="qos_session.create")
    with pytest.raises(AlreadyExistsError):
        store.put_network_resource(session(remote_id="s-2", sink_token_hash=token_hash(
            "token-s-1")), actor="svc", action="qos_session.create")  # fmt: skip
    assert [r.remote_id for r in store.list_network_resources()] == ["s-1"]


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("an unknown kind", {"kind": "slice"}),
        ("a hash that is no SHA-256", {"sink_token_hash": "plain-token"}),
        ("an unknown device", {"device_id": "pmu-404"}),
    ],
)
def test_a_bad_network_resource_is_refused(store: Store, what: str, change: dict[str, Any]):
    store.add_device(pmu(1), actor="op")
    with pytest.raises((InvalidInputError, NotFoundError)):
        store.put_network_resource(session(**change), actor="svc", action="qos_session.create")
    assert store.list_network_resources() == []


def test_the_status_of_a_device_is_the_last_one_put(store: Store):
    store.add_device(pmu(1), actor="op")
    with pytest.raises(NotFoundError):
        store.get_device_status("pmu-1")
    seen = datetime(2026, 3, 2, 8, tzinfo=UTC)
    first = DeviceStatus("pmu-1", True, ("SMS", "DATA"), False, 262, "5G", seen, "poll")
    stored = store.put_device_status(first, actor="svc")
    assert stored.connectivity == ("DATA", "SMS")
    assert store.get_device_status("pmu-1") == stored
    lost = DeviceStatus("pmu-1", reachable=False, source="notification")
    assert store.put_device_status(lost, actor="camara") == store.list_device_status()[0]
    assert store.get_device_status("pmu-1").network_type is None
    with pytest.raises(InvalidInputError):
        store.put_device_status(DeviceStatus("pmu-1", network_type="6G"), actor="svc")


def test_an_atomic_block_that_fails_keeps_no_device_change(store: Store):
    store.add_device(pmu(1), actor="op")
    with pytest.raises(RuntimeError), store.atomic() as view:
        view.put_network_resource(session(), actor="svc", action="qos_session.create")
        view.add_device(pmu(2), actor="op")
        raise RuntimeError("the group action was stopped")
    assert store.list_network_resources() == [] and [d.id for d in store.list_devices()] == [
        "pmu-1"
    ]
    with store.atomic() as view:
        for n in (1, 2, 3):
            view.put_network_resource(
                session(remote_id=f"s-{n}"), actor="svc", action="qos_session.create"
            )
    assert len(store.list_network_resources()) == 3


def test_outcomes_of_a_group_action_are_recorded_in_bulk(store: Store):
    for n in (1, 2, 3):
        store.add_device(pmu(n), actor="op")
    resources = [
        (session(f"pmu-{n}", f"s-{n}"), "device.qos_change", {"decision": "Permit"}) for n in (1, 2)
    ]
    audits = [("pmu-3", "device.qos_change", {"decision": "Deny", "result": "denied"})]
    store.record_device_outcomes(actor="op-anna", resources=resources, audits=audits)
    assert [r.remote_id for r in store.list_network_resources()] == ["s-1", "s-2"]
    assert store.list_network_resources()[0].created_by == "op-anna"
    assert store.find_network_resource(token_hash("token-s-2")).device_id == "pmu-2"
    entries = {e.object_id: e for e in store.list_audit(limit=3)}
    assert entries["pmu-3"].details == {"decision": "Deny", "result": "denied"}
    assert entries["pmu-1"].details["remote_id"] == "s-1"
    assert entries["pmu-1"].action == "device.qos_change" and store.revision() == 0


@pytest.mark.parametrize(
    ("what", "resources", "audits"),
    [
        ("a resource recorded already", [("pmu-1", "s-1")], []),
        ("a resource of an unknown device", [("pmu-404", "s-9")], []),
        ("an audit entry about an unknown device", [], ["pmu-404"]),
    ],
)
def test_a_bulk_record_is_all_or_nothing(store: Store, what: str, resources, audits):
    store.add_device(pmu(1), actor="op")
    store.put_network_resource(session(), actor="svc", action="qos_session.create")
    before = (store.list_network_resources(), store.list_audit())
    good = [(session("pmu-1", "s-new", sink_token_hash=None), "device.qos_change", {})]
    bad = [(session(d, r, sink_token_hash=None), "device.qos_change", {}) for d, r in resources]
    with pytest.raises((AlreadyExistsError, NotFoundError)):
        store.record_device_outcomes(
            actor="op", resources=good + bad, audits=[(d, "device.refresh", {}) for d in audits]
        )
    assert (store.list_network_resources(), store.list_audit()) == before
