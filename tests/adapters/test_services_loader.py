"""The voltage service fed by the policy loader from a real pbgm API (werkzeug on a socket).

An operator changes the band through the admin API (`PUT` with `If-Match`, then
publish); the loader polls, validates and hands the new version to the running
service, which steps with it at once. An update the service finds unsafe is refused
and the last good limits stay.
"""

from __future__ import annotations

import copy
import http.client
import json
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from adapters.services._runner import start_loader
from adapters.services.voltage import VoltageService
from pbgm.access import encode_id
from pbgm.api import create_app
from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.bus import MemoryBus
from pbgm.model import Permission, PolicyGroup
from pbgm.pap import PolicyAdministrationPoint
from pbgm.policy.documents import load_file
from pbgm.store import Grant, ServiceAccount
from pbgm.testing import memory_store

ROOT = Path(__file__).resolve().parents[2]
BAND = load_file(ROOT / "examples" / "scenario" / "limits-feeder-3.json")
SECRET = "loader-test-secret-0123456789"
ADMIN_TOKEN_SCOPES = ("admin", "policies:read")
LINES = [[0, 1, 0.0192, 0.0048], [1, 2, 0.0192, 0.0048], [2, 3, 0.0192, 0.0048]]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The example bundle plus the feeder band, a service account, served on a free port."""
    store = memory_store(ROOT / "examples" / "policies")
    pap = PolicyAdministrationPoint(store)
    pap.create(BAND, actor="seed")
    pap.publish("limits-feeder-3", actor="seed")
    store.put_policy_group(PolicyGroup("*", description="global administrators"), actor="seed")
    hashed = hash_secret(SECRET)
    accounts = {
        "svc-voltage-control": (("policies:read",), ("operational-limits", "read")),
        "svc-operator": (ADMIN_TOKEN_SCOPES, ("*", "admin")),
    }
    for client_id, (scopes, (group, permission)) in accounts.items():
        store.add_service_account(ServiceAccount(client_id, hashed, scopes), actor="seed")
        grant = Grant("service", client_id, "policy_group", group, Permission(permission))
        store.add_grant(grant, actor="seed")
    keys = tmp_path_factory.mktemp("keys")
    KeyRing(keys).generate()
    app = create_app({"keys_dir": str(keys)}, store=store)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, server.server_port
    server.shutdown()
    server.server_close()


def call(port: int, method: str, path: str, token: str, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def change_band(app, port: int, **voltage) -> float:
    """The operator's change: GET (ETag), PUT with If-Match, publish; the time it was done."""
    generation = app.extensions["pbgm"].store.get_service_account("svc-operator").token_generation
    token = app.extensions["pbgm"].issuer.issue(
        "svc-operator", ADMIN_TOKEN_SCOPES, generation=generation
    )
    path = f"/api/v1/admin/policies/{encode_id('limits-feeder-3')}"
    status, headers, body = call(port, "GET", path, token)
    assert status == 200
    document = copy.deepcopy(json.loads(body)["document"])
    document["content"]["voltage"].update(voltage)
    status, _, body = call(port, "PUT", path, token, document, {"If-Match": headers["ETag"]})
    assert status == 200, body
    version = json.loads(body)["version"]
    status, _, body = call(port, "POST", f"{path}/publish", token, {"version": version})
    assert status == 200, body
    return time.monotonic()


@pytest.fixture
def running(api, tmp_path, monkeypatch):
    """The service with its loader (1 s polls), run in a thread."""
    monkeypatch.setenv("PBGM_TEST_LOADER_SECRET", SECRET)
    _, port = api
    bus = MemoryBus()
    service = VoltageService(
        bus,
        {
            "feeder": {"v_nominal_v": 400, "lines": LINES},
            "assets": {"bess-01": {"node": 3, "kind": "ess"}},
            "band_from": "feeder-3",
            "loop_period_s": 5,
        },
    )
    loader_config = {
        "server": {
            "url": f"http://127.0.0.1:{port}",
            "client_id": "svc-voltage-control",
            "client_secret_env": "PBGM_TEST_LOADER_SECRET",
        },
        "refresh_interval_s": 1,
        "jitter": 0,
        "cache_dir": "cache",
        "policies": [
            {
                "name": "band",
                "policy_id": "limits-feeder-3",
                "policy_group": "operational-limits",
                "deliver_to": "limits",
            },
            {
                "name": "bess",
                "asset_id": "bess-01",
                "policy_type": "operational_limits",
                "deliver_to": "limits",
            },
        ],
    }
    loader = start_loader(loader_config, service, bus, tmp_path)
    service.start()
    thread = threading.Thread(target=service.run)
    thread.start()
    yield service, bus
    service.stop()
    thread.join(5)
    loader.stop()
    service.close()
    bus.close()


def wait_for(condition, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic()


def band_of(service) -> tuple[float, float] | None:
    limits = service.controller.limits if service.controller else None
    return (limits.v_min, limits.v_max) if limits else None


def test_an_admin_change_reaches_the_running_service_and_its_next_step(api, running):
    app, port = api
    service, bus = running
    statuses = []
    bus.subscribe("/voltage_control/status", lambda m: statuses.append(json.loads(m.payload)))
    wait_for(lambda: band_of(service) == (0.95, 1.08) and 3 in service.controller.limits.ess)
    voltages = {"voltage_measurements": {"node_2": 1.05, "node_3": 1.06}}
    bus.publish("/voltage_control/measuremnts/voltage", json.dumps(voltages).encode())
    changed = change_band(app, port, v_target_max_pu=1.04)
    stepped = wait_for(lambda: statuses and statuses[-1]["limits"]["v_max_pu"] == 1.04)
    assert stepped - changed < 2.5  # one poll interval (1 s) and the step it wakes
    assert service.counters["limits_applied"] >= 2


def test_an_unsafe_update_is_refused_and_the_last_good_limits_stay(api, running):
    app, port = api
    service, _ = running
    wait_for(lambda: band_of(service) is not None)
    good = band_of(service)
    change_band(app, port, v_max_pu=1.3, v_target_max_pu=1.2)  # valid for pbgm, unsafe here
    wait_for(lambda: service.counters["limits_refused"] == 1)
    assert band_of(service) == good
    change_band(app, port, v_max_pu=1.1, v_target_max_pu=1.05)  # and a good one again
    wait_for(lambda: band_of(service) == (0.95, 1.05))
