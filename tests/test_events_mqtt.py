"""The event service over the local Mosquitto (127.0.0.1:1883) through `adapters.mqtt`.

`pbgm events run` as a real process: a RoCoF excursion published over MQTT starts
inertia estimation, whose estimate comes back over MQTT; SIGTERM stops it cleanly.
In process: a data request with a JWT in the MQTT 5 `authorization` user property is
answered on its `response_topic` with its `correlation_data`. Every topic is under a
random prefix, so parallel tests on the same broker do not meet.
"""

from __future__ import annotations

import json
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from controls.testing import simulate_swing
from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.auth.tokens import TokenIssuer, TokenVerifier
from pbgm.bus import Bus, BusMessage, open_bus
from pbgm.events import EventService, EventServiceConfig
from pbgm.store.base import ServiceAccount
from pbgm.testing import memory_store, permit, policy_document
from tests.conftest import LOCAL_BROKER

pytestmark = pytest.mark.mosquitto

ROOT = Path(__file__).resolve().parent.parent
MQTT = {"factory": "adapters.mqtt:open_mqtt_bus", "host": LOCAL_BROKER[0], "port": LOCAL_BROKER[1]}
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def prefix() -> str:
    return f"/pbgm-events-test-{secrets.token_hex(4)}"


def connect(buses: list[Bus], name: str) -> Bus:
    bus = open_bus({**MQTT, "client_id": f"pbgm-events-test-{name}-{secrets.token_hex(3)}"})
    buses.append(bus)
    return bus


def collect(bus: Bus, topic: str) -> queue.Queue[BusMessage]:
    received: queue.Queue[BusMessage] = queue.Queue()
    bus.subscribe(topic, received.put, qos=1)
    return received


def trigger_policy(prefix: str) -> dict[str, Any]:
    """The example `inertia-on-rocof` policy, watching topics under `prefix`."""
    path = ROOT / "examples" / "policies" / "policies" / "inertia-on-rocof.json"
    document = json.loads(path.read_text())
    content = document["content"]
    content["event"]["topics"] = [f"{prefix}/edgeflex/+/ch0"]
    content["actions"] = [a for a in content["actions"] if a["kind"] == "run_service"]
    return document


def swing_payloads() -> list[bytes]:
    record = simulate_swing(4.0, s_base_mw=10.0, t_event=2.0, duration_s=4.0, fps=50)
    base_ms = START.timestamp() * 1000
    return [
        json.dumps(
            {"frequency": f, "active_power": p, "created": round(base_ms + t * 1000)}
        ).encode()
        for t, f, p in zip(record.t, record.f_hz, record.p_mw, strict=True)
    ]


class Process:
    """`pbgm --json events run --config FILE`, its stderr read line by line."""

    def __init__(self, config: Path) -> None:
        command = [sys.executable, "-m", "pbgm", "--json", "events", "run", "--config"]
        self.popen = subprocess.Popen(
            [*command, str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=config.parent,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"`{text}` not seen; stderr: {''.join(seen)}") from None
            seen.append(line)
            if text in line:
                return

    def stop(self) -> tuple[int, str]:
        self.popen.send_signal(signal.SIGTERM)
        stdout, _ = self.popen.communicate(timeout=30)
        return self.popen.returncode, stdout


def test_pbgm_events_run_starts_inertia_estimation_over_mqtt_and_stops_on_sigterm(
    buses: list[Bus], prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "trigger.json").write_text(json.dumps(trigger_policy(prefix)))
    config = {
        "bus": {**MQTT, "client_id": f"pbgm-events-test-{secrets.token_hex(3)}"},
        "policies": ["trigger.json"],
        "subscriptions": [
            {"topic": f"{prefix}/edgeflex/+/ch0", "kind": "measurement", "decide": False},
        ],
        "services": {
            "inertia-estimation": {
                "factory": "adapters.services.inertia:create_service",
                "topic": f"{prefix}/inertia",
            }
        },
    }
    (tmp_path / "events.yaml").write_text(yaml.safe_dump(config))
    bus = connect(buses, "pmu")
    estimates = collect(bus, f"{prefix}/inertia")
    process = Process(tmp_path / "events.yaml")
    try:
        process.wait_for("running")
        time.sleep(0.5)  # its subscription is in place (MQTT does not say when)
        payloads = swing_payloads()
        for payload in payloads:
            bus.publish(f"{prefix}/edgeflex/edgepmu3/ch0", payload, qos=1)
        estimate = json.loads(estimates.get(timeout=30).payload)
    finally:
        status, stdout = process.stop()
    assert estimate["status"] == "estimate"
    assert estimate["h_s"] == pytest.approx(4.0, rel=0.1)
    assert status == 0
    stats = json.loads(stdout)
    assert stats["received"] == len(payloads)  # QoS 1: none lost
    assert (stats["triggers_fired"], stats["trigger_permitted"]) == (1, 1)
    assert stats["services_running"] == 0
    # the bus's counters too: what arrived, and that nothing was dropped
    assert stats["bus_received"] >= len(payloads)
    assert stats["bus_dropped_inbound"] == stats["bus_unmatched"] == 0


def test_a_data_request_over_mqtt5_is_answered_on_its_response_topic(
    buses: list[Bus], prefix: str, tmp_path: Path
) -> None:
    data_topic = f"{prefix}/meters/1"
    policy = policy_document(
        "meters-to-kibernet",
        policy_group="data-sharing",
        rules=[permit("kibernet-reads", obligations=[
            {"id": "drop-fields", "attributes": {"fields": ["customer_id"]}}])],
        content={"data": {"topics": [f"{prefix}/#"]}, "consumers": {"subjects": ["svc-k"]}},
    )  # fmt: skip
    store = memory_store(policies=[policy])
    store.add_service_account(ServiceAccount("svc-k", hash_secret("s")), actor="test")
    ring = KeyRing(tmp_path / "keys")
    ring.generate()
    issuer = TokenIssuer(ring, issuer="pbgm", audience="pbgm-api")
    gen = store.get_service_account("svc-k").token_generation  # as the token endpoint binds it
    verifier = TokenVerifier(ring.verification_keys, issuer="pbgm", audience="pbgm-api")
    config = EventServiceConfig.from_mapping(
        {
            "subscriptions": [
                {"topic": f"{prefix}/meters/#", "kind": "measurement", "codec": "json",
                 "decide": False},
                {"topic": f"{prefix}/requests", "kind": "data_request",
                 "policy_group": "data-sharing"},
            ],
            "reply_topic_prefix": f"{prefix}/replies/",
        }
    )  # fmt: skip
    service_bus, client = connect(buses, "service"), connect(buses, "client")
    replies = collect(client, f"{prefix}/replies/#")
    with EventService(config, bus=service_bus, store=store, verifier=verifier):
        time.sleep(0.5)  # the subscriptions are in place (MQTT does not say when)
        for k in range(3):
            sample = {"value": k, "customer_id": "c-1", "created": 1_772_438_400_000 + k}
            client.publish(data_topic, json.dumps(sample).encode(), qos=1)
        properties = {
            "response_topic": f"{prefix}/replies/1",
            "correlation_data": b"req-7",
            "user_properties": {
                "authorization": f"Bearer {issuer.issue('svc-k', [], generation=gen)}"
            },
        }
        request = json.dumps({"topic": data_topic}).encode()
        client.publish(f"{prefix}/requests", request, qos=1, properties=properties)
        reply = replies.get(timeout=15)
    answer = json.loads(reply.payload)
    assert reply.topic == f"{prefix}/replies/1"
    assert reply.properties["correlation_data"] == b"req-7"
    assert answer["status"] == "ok"
    assert [d["value"] for d in answer["data"]] == [0, 1, 2]
    assert all("customer_id" not in d for d in answer["data"])
