"""End to end on the real local Mosquitto (127.0.0.1:1883): the voltage-control service
switches its data source from the bus to KIBERNet by a `service_config` policy change
and keeps controlling, on what the KIBERNet poller reads from the stand-in platform
under its `data_access` policy and publishes on the bus."""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from pathlib import Path

import pytest

from adapters.kibernet import KibernetPoller
from adapters.kibernet.standin import KibernetStandIn
from adapters.services._runner import open_service_bus
from adapters.services.voltage import VoltageService
from pbgm.pap import PolicyAdministrationPoint
from pbgm.policy.documents import load_file
from pbgm.testing import decision_point
from tests.conftest import LOCAL_BROKER, require_local_broker
from tests.kibernet.conftest import GROUP, SUBJECT, Inbox, data_access, repository

pytestmark = pytest.mark.mosquitto

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies" / "policies"
HOST, PORT = LOCAL_BROKER
BUS = {"kind": "mqtt", "host": HOST, "port": PORT, "connect_timeout": 5}
LINES = [[0, 1, 0.0192, 0.0048], [1, 2, 0.0192, 0.0048], [2, 3, 0.0192, 0.0048]]
BAND = {
    "format": "pbgm/v1",
    "id": "limits-feeder-t",
    "asset_id": "feeder-t",
    "content": {"voltage": {"v_nominal_v": 400, "v_min_pu": 0.9, "v_max_pu": 1.04}},
}


def service_config(prefix: str, active: str) -> dict:
    document = copy.deepcopy(load_file(POLICIES / "voltage-control-config.yaml"))
    document.pop("valid_from", None)
    content = document["content"]
    content["data_sources"]["databus"]["topics"] = {
        "voltage_measurements": f"{prefix}/measuremnts/voltage"
    }
    content["data_sources"]["kibernet"]["topics"] = {
        "voltage_measurements": f"{prefix}/kibernet/voltage"
    }
    content["data_sources"]["kibernet"]["data_access_policy"] = "kibernet-test"
    content["outputs"] = {k: f"{prefix}/control/{k}" for k in content["outputs"]}
    content["loop_period_s"] = 0.2
    content["fallback"] = {"on_missing_input": "hold_last"}
    content["active_source"] = active
    return document


def test_voltage_control_switches_to_kibernet_by_policy_and_keeps_controlling():
    require_local_broker()
    prefix = f"/pbgm-test-{secrets.token_hex(4)}"
    with KibernetStandIn() as kibernet:
        kibernet.set("F3.N2.U", 1.06, live=True)  # an overvoltage, as a sensor reports it
        kibernet.set("F3.N3.U", 1.07, live=True)
        access = data_access(kibernet.url)
        access["content"]["data_points"] = {
            name: {"id": f"F3.N{n}.U", "path": "/datapoints/{id}/latest",
                   "topic": f"{prefix}/kibernet/voltage", "format": "json.edgeflex",
                   "signal": f"node_{n}"}
            for name, n in (("n2", 2), ("n3", 3))
        }  # fmt: skip
        config = service_config(prefix, "databus")
        store = repository(access, config)
        pap = PolicyAdministrationPoint(store)
        service_bus, poller_bus, peer = (open_service_bus(BUS) for _ in range(3))
        service = VoltageService(
            service_bus,
            {
                "feeder": {"v_nominal_v": 400, "lines": LINES},
                "assets": {"bess-01": {"node": 3, "kind": "ess"}},
                "band_from": "feeder-t",
                "status_topic": f"{prefix}/status",
            },
        )
        poller = KibernetPoller(
            poller_bus, decision_point(store, GROUP), subject=SUBJECT,
            groups=["vpp-services"], store=store,
        )  # fmt: skip
        statuses = Inbox(peer, f"{prefix}/status")
        outputs = Inbox(peer, f"{prefix}/control/#")
        thread = threading.Thread(target=service.run, daemon=True)
        try:
            service.apply_limits(BAND)
            service.apply_limits(load_file(POLICIES / "limits-bess-01.json"))
            service.apply_service_config(store.get_policy(config["id"]).document)
            poller.apply(store.get_policy(access["id"]).document)
            service.start()
            thread.start()
            poller.start()
            body = {"voltage_measurements": {"node_2": 1.0, "node_3": 1.0}}
            peer.publish(
                f"{prefix}/measuremnts/voltage",
                json.dumps({**body, "created": round(time.time() * 1000)}).encode(),
            )
            statuses.wait(lambda: any(s["source"] == "databus" for _, s in statuses.items))

            switched = service_config(prefix, "kibernet")  # the operator's change
            version = store.get_policy(config["id"]).version
            pap.update(config["id"], switched, expected_version=version, actor="op-anna")
            pap.publish(config["id"], actor="op-anna")
            service.apply_service_config(store.get_policy(config["id"]).document)
            assert service.source.name == "kibernet"

            def on_kibernet() -> list[dict]:
                return [s for _, s in statuses.items if s["source"] == "kibernet"]

            statuses.wait(lambda: len(on_kibernet()) >= 2, timeout=15)  # it keeps stepping
            assert on_kibernet()[-1]["v_max_measured_pu"] == 1.07  # KIBERNet's values
            charging = [
                p["active_power_ESS"]["node_3"]
                for t, p in outputs.items
                if t.endswith("active_power_ESS")
            ]
            assert charging and charging[-1] < 0  # absorbing against the overvoltage
            assert poller.stats()["published"] >= 2
        finally:
            poller.close()
            service.stop()
            thread.join(5)
            service.close()
            for bus in (service_bus, poller_bus, peer):
                bus.close()
