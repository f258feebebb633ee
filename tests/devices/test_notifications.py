"""CAMARA notifications sent by the operator over HTTPS to pbgm's sink: accepted only
with the credential of the resource they name, applied, published on the bus; forged,
unknown, malformed or oversized ones refused with nothing changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pbgm.bus import BusMessage
from pbgm.store import MemoryStore
from tests.camara import schemas as s
from tests.camara.server import CamaraServer, Resource
from tests.devices.api import DeviceApi, start_api
from tests.devices.world import camara_device, seed

DISCONNECTED = s.EVENT_PREFIXES["reachability"] + "reachability-disconnected"
DATA = s.EVENT_PREFIXES["reachability"] + "reachability-data"


@pytest.fixture
def api(camara: CamaraServer, tmp_path: Path) -> Iterator[DeviceApi]:
    store = MemoryStore()
    seed(store, devices=2)
    running = start_api(store, camara, tmp_path)
    yield running
    running.close()


@pytest.fixture
def events(api: DeviceApi) -> list[BusMessage]:
    seen: list[BusMessage] = []
    api.bus.subscribe("/pbgm/devices/+/events", seen.append)
    return seen


def subscribed(api: DeviceApi, n: int = 1) -> None:
    reply = api.call("POST", f"/api/v1/devices/pmu-{n}/connectivity/subscriptions")
    assert reply.status_code == 201, reply.text


def snapshot(api: DeviceApi) -> tuple:
    return (
        api.store.list_device_status(),
        api.store.list_network_resources(),
        len(api.store.list_audit(limit=1000)),
    )


def test_a_reachability_loss_is_recorded_published_and_measured(api: DeviceApi, events):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    reply = api.camara.notify(gone, DISCONNECTED)
    assert reply.status_code == 204, reply.text
    status = api.store.get_device_status("pmu-1")
    assert status.reachable is False and status.source == "notification"
    [message] = events
    payload = json.loads(message.payload)
    assert message.topic == "/pbgm/devices/pmu-1/events"
    assert payload["device"] == "pmu-1" and payload["event"] == "reachability-disconnected"
    assert payload["reachable"] == 0
    assert 'pbgm_device_reachable{device="pmu-1"} 0.0' in api.call("GET", "/metrics").text
    entry = api.store.list_audit(object_id="pmu-1", limit=2)
    assert {e.action for e in entry} >= {"device.notification", "device.status"}
    back = api.camara.subscription("reachability", camara_device(1), "reachability-data")
    assert api.camara.notify(back, DATA).status_code == 204
    assert api.store.get_device_status("pmu-1").connectivity == ("DATA",)
    assert json.loads(events[-1].payload)["reachable"] == 1


def test_a_forged_credential_is_refused(api: DeviceApi, events):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    before = snapshot(api)
    reply = api.camara.notify(gone, DISCONNECTED, token="a-guessed-credential")
    assert reply.status_code == 401 and reply.json()["code"] == "sink_credential_invalid"
    assert snapshot(api) == before and events == []


def test_a_pbgm_token_is_no_sink_credential(api: DeviceApi):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    reply = api.camara.notify(gone, DISCONNECTED, token=api.token("op-anna"))
    assert reply.status_code == 401


def test_a_credential_cannot_speak_for_another_resource(api: DeviceApi, events):
    subscribed(api, 1)
    subscribed(api, 2)
    mine = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    theirs = api.camara.subscription("reachability", camara_device(2), "reachability-disconnected")
    before = snapshot(api)
    forged = Resource(theirs.kind, theirs.id, theirs.device, theirs.body, theirs.sink, mine.token)
    reply = api.camara.notify(forged, DISCONNECTED)
    assert reply.status_code == 403 and reply.json()["code"] == "notification_mismatch"
    qod_type = s.QOD_STATUS_CHANGED
    raw = json.dumps(
        {
            "id": "e1",
            "source": "x",
            "type": qod_type,
            "specversion": "1.0",
            "time": "2026-03-02T08:00:00Z",
            "data": {"sessionId": mine.id, "qosStatus": "UNAVAILABLE"},
        }
    ).encode()
    reply = api.camara.notify(mine, qod_type, raw=raw)
    assert reply.status_code == 403 and reply.json()["code"] == "notification_mismatch"
    assert snapshot(api) == before and events == []


def test_an_expired_credential_is_refused(api: DeviceApi):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    [held] = [r for r in api.store.list_network_resources() if r.remote_id == gone.id]
    expired = replace(held, details={**held.details, "sink_expires_at": "2020-01-01T00:00:00Z"})
    api.store.put_network_resource(expired, actor="test", action="test.expire")
    assert api.camara.notify(gone, DISCONNECTED).status_code == 401


HOSTILE = [
    ("specversion 0.3", {"specversion": "0.3"}, None, 400, "unsupported_specversion"),
    ("no specversion", {"specversion": None}, None, 400, "unsupported_specversion"),
    ("an unknown event type", {"type": "org.example.reboot"}, None, 400, "unknown_event_type"),
    ("no time", {"time": None}, None, 422, "validation_failed"),
    ("a time without a zone", {"time": "2026-03-02T08:00:00"}, None, 422, "validation_failed"),
    ("data that is a list", {"data": [1]}, None, 422, "validation_failed"),
    ("a body of 70 KB", {"padding": "x" * 70_000}, None, 413, "request_too_large"),
    ("not JSON", None, b"{not json", 400, None),
    ("a JSON array", None, b"[]", 400, "invalid_notification"),
    ("a lone surrogate", None, b'{"id": "\\ud800"}', 400, None),
]


@pytest.mark.parametrize(
    ("what", "change", "raw", "status", "code"), HOSTILE, ids=[row[0] for row in HOSTILE]
)
def test_malformed_notifications_are_refused_and_change_nothing(
    api: DeviceApi, events, what, change, raw, status, code
):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    if raw is None:
        event = {
            "id": "e-1",
            "source": "operator",
            "type": DISCONNECTED,
            "specversion": "1.0",
            "time": "2026-03-02T08:00:00Z",
            "data": {"device": camara_device(1), "subscriptionId": gone.id},
        }
        event.update(change)
        raw = json.dumps({k: v for k, v in event.items() if v is not None}).encode()
    before = snapshot(api)
    reply = api.camara.notify(gone, DISCONNECTED, raw=raw)
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    if code is not None:
        assert reply.json()["code"] == code
    assert snapshot(api) == before and events == []


def test_a_notification_delivered_twice_acts_once(api: DeviceApi, events):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    first = api.camara.notify(gone, DISCONNECTED, event_id="event-7")
    again = api.camara.notify(gone, DISCONNECTED, event_id="event-7")
    assert first.status_code == again.status_code == 204
    assert len(events) == 1
    notified = [e for e in api.store.list_audit(limit=100) if e.action == "device.notification"]
    assert len(notified) == 1


def test_a_session_ended_by_the_network_is_recorded_and_published(api: DeviceApi, events):
    made = api.call("POST", "/api/v1/devices/pmu-1/qos", json={"duration_s": 600}).json()
    session = api.camara.sessions()[0]
    assert session.sink is not None and session.token
    reply = api.camara.notify(
        session,
        s.QOD_STATUS_CHANGED,
        {"qosStatus": "UNAVAILABLE", "statusInfo": "NETWORK_TERMINATED"},
    )
    assert reply.status_code == 204, reply.text
    [held] = api.store.list_network_resources(device_id="pmu-1")
    assert held.status == "UNAVAILABLE" and held.remote_id == made["session_id"]
    payload = json.loads(events[0].payload)
    assert payload["qos_available"] == 0 and payload["status_info"] == "NETWORK_TERMINATED"
    assert api.call("GET", "/api/v1/devices/pmu-1/qos").json()["qos_session"] is None


def test_the_end_of_a_subscription_forgets_it(api: DeviceApi):
    subscribed(api)
    gone = api.camara.subscription("reachability", camara_device(1), "reachability-disconnected")
    ends = s.EVENT_PREFIXES["reachability"] + s.SUBSCRIPTION_ENDS
    reply = api.camara.notify(gone, ends, {"terminationReason": "SUBSCRIPTION_EXPIRED"})
    assert reply.status_code == 204
    assert gone.id not in {r.remote_id for r in api.store.list_network_resources()}
    assert api.camara.notify(gone, DISCONNECTED).status_code == 401  # its credential is gone too
