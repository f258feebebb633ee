"""A PMU becomes unreachable -> the operator notifies pbgm -> the device event goes on
the bus -> the event service's `service_trigger` policy fires -> the grid service
`device-qos-session` (found by its `pbgm.services` entry point) starts a QoS session
for the PMU's backup link, decided by the device policies like any other action, and
an alert is published. Every hop is real: HTTPS, the bus, the repository on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbgm.bus import BusMessage
from pbgm.events import EventService, EventServiceConfig
from pbgm.model import PolicyGroup
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Device, DeviceGroup
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade
from tests.camara import schemas as s
from tests.camara.server import CamaraServer
from tests.devices.api import DeviceApi, start_api
from tests.devices.world import camara_device, phone, seed

TRIGGER = {
    "id": "backup-link-when-a-pmu-is-lost",
    "type": "service_trigger",
    "policy_group": "grid-services",
    "rules": [
        {
            "id": "the-event-service-may-trigger",
            "effect": "Permit",
            "target": {"action": {"id": "trigger"}, "subject": {"id": "svc-events"}},
        }
    ],
    "content": {
        "event": {
            "topics": ["/pbgm/devices/+/events"],
            "conditions": [{"variable": "reachable", "operator": "less_than", "threshold": 0.5}],
        },
        "actions": [
            {
                "kind": "run_service",
                "service": "device-qos-session",
                "parameters": {
                    "group": "backup-links",
                    "qos_profile": "LOW_LATENCY",
                    "duration_s": 900,
                },
            },
            {
                "kind": "publish_notification",
                "topic": "/pbgm/alerts",
                "payload": {"alert": "PMU unreachable: backup link prioritised"},
            },
        ],
        "cooldown_s": 0,
    },
}


@pytest.fixture
def world(camara: CamaraServer, tmp_path: Path) -> Iterator[tuple[DeviceApi, EventService]]:
    url = f"sqlite:///{tmp_path / 'pbgm.db'}"
    upgrade(url)
    store = SqlStore(url)
    seed(store, devices=2)
    backup = Device("pmu-1-lte", {"phoneNumber": phone(901)}, asset_id="substation-1")
    other = Device("pmu-2-lte", {"phoneNumber": phone(902)}, asset_id="substation-2")
    store.add_device(backup, actor="seed")
    store.add_device(other, actor="seed")
    store.add_device_group(
        DeviceGroup("backup-links", members=("pmu-1-lte", "pmu-2-lte")), actor="seed"
    )
    store.put_policy_group(PolicyGroup("grid-services", "deny-unless-permit"), actor="seed")
    pap = PolicyAdministrationPoint(store)
    pap.create(TRIGGER, actor="seed")
    pap.publish(TRIGGER["id"], actor="seed")
    api = start_api(store, camara, tmp_path)
    config = EventServiceConfig.from_mapping(
        {
            "service_id": "svc-events",
            "policy_group": "grid-services",
            "refresh_ms": 0,
            "subscriptions": [
                {
                    "topic": "/pbgm/devices/+/events",
                    "kind": "measurement",
                    "codec": "json",
                    "decide": False,
                    "device_level": 3,
                }
            ],
            "services": {
                "device-qos-session": {
                    "store": url,
                    "network_config": str(tmp_path / "network.json"),
                    "actor": "svc-events",
                }
            },
        }
    )
    service = EventService(config, bus=api.bus, store=store).start()
    yield api, service
    service.close()
    api.close()
    store.close()


def test_a_lost_pmu_gets_a_qos_session_for_its_backup_link(world):
    api, service = world
    alerts: list[BusMessage] = []
    api.bus.subscribe("/pbgm/alerts", alerts.append)
    assert api.call("POST", "/api/v1/devices/pmu-1/connectivity/subscriptions").status_code == 201
    lost = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    reply = api.camara.notify(lost, s.EVENT_PREFIXES["reachability"] + "reachability-disconnected")
    assert reply.status_code == 204
    assert service.wait_idle(10)
    [call] = api.camara.calls("createSession")
    assert call.body["device"] == {"phoneNumber": phone(901)}  # the backup of substation-1 only
    assert call.body["qosProfile"] == "LOW_LATENCY" and call.body["duration"] == 900
    [session] = api.store.list_network_resources(kind="qos_session")
    assert session.device_id == "pmu-1-lte" and session.created_by == "svc-events"
    decided = api.store.list_audit(object_id="pmu-1-lte", limit=1)[0]
    assert decided.details["decision"] == "Permit" and decided.actor == "svc-events"
    [alert] = alerts
    assert json.loads(alert.payload)["event"]["device"] == "pmu-1"
    assert service.stats()["triggers_fired"] == 1


def test_a_reachable_pmu_triggers_nothing(world):
    api, service = world
    api.call("POST", "/api/v1/devices/pmu-1/connectivity/subscriptions")
    back = api.camara.subscription("reachability", camara_device(1), "reachability-data")
    assert (
        api.camara.notify(back, s.EVENT_PREFIXES["reachability"] + "reachability-data").status_code
        == 204
    )
    assert service.wait_idle(10)
    assert api.camara.calls("createSession") == [] and service.stats().get("triggers_fired") is None
