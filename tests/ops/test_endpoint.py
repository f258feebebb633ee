"""`/metrics`, `/healthz`, `/readyz` of a long-running service on its own port (real
sockets), and `pbgm events run --metrics-port` serving them from the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pbgm.ops.endpoint import ServiceEndpoint, bus_counters
from tests.api.test_api_serve import free_port


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class FakeBus:
    """A bus that keeps counters as `MqttBus.stats()` does (its shape, not a mock of pbgm)."""

    connected = True

    def stats(self) -> dict[str, int]:
        return {"received": 7, "dropped_inbound": 2, "queued": 3, "connected": 1}


def test_counters_gauges_staleness_and_readiness():
    counts: dict[str, Any] = {"received": 0, "malformed": 1}
    ready = {"now": False}
    bus = FakeBus()
    endpoint = ServiceEndpoint(
        "voltage",
        counters=lambda: {**counts, **bus_counters(bus)},
        gauges=lambda: {"policy_revision": 4},
        ready=lambda: ready["now"],
    ).start(0)
    try:
        port = endpoint.port
        assert get(port, "/healthz") == (200, b'{"status": "ok", "service": "voltage"}')
        status, body = get(port, "/readyz")
        assert status == 503 and json.loads(body)["status"] == "not ready"
        ready["now"] = True
        assert get(port, "/readyz")[0] == 200
        found = samples(get(port, "/metrics")[1])
        service = (("service", "voltage"),)
        assert found[("pbgm_service_events_total", (("event", "malformed"), *service))] == 1
        assert (
            found[("pbgm_service_events_total", (("event", "bus_dropped_inbound"), *service))] == 2
        )
        assert found[("pbgm_service_bus_queued", service)] == 3  # a state, not a total
        assert found[("pbgm_service_bus_connected", service)] == 1
        assert found[("pbgm_service_policy_revision", service)] == 4
        assert found[("pbgm_service_ready", service)] == 1
        assert found[("pbgm_service_up", service)] == 1
        assert any(name == "pbgm_build_info" for name, _ in found)
        assert any(name == "process_resident_memory_bytes" for name, _ in found)
        time.sleep(0.3)
        stale = samples(get(port, "/metrics")[1])
        first = stale[("pbgm_service_staleness_seconds", service)]
        assert first >= 0.3
        counts["received"] = 1  # input arrives: staleness starts again
        found_staleness = samples(get(port, "/metrics")[1])
        assert found_staleness[("pbgm_service_staleness_seconds", service)] < first
        assert get(port, "/elsewhere")[0] == 404
    finally:
        endpoint.close()


def test_a_failing_readiness_check_is_not_ready_and_not_a_crash():
    def broken() -> bool:
        raise RuntimeError("the check itself failed")

    endpoint = ServiceEndpoint("x", counters=dict, ready=broken).start(0)
    try:
        assert get(endpoint.port, "/readyz")[0] == 503
        assert get(endpoint.port, "/metrics")[0] == 200
    finally:
        endpoint.close()


@pytest.mark.slow
def test_the_event_service_serves_its_metrics_port(tmp_path: Path):
    (tmp_path / "p.json").write_text(
        '{"format": "pbgm/v1", "id": "p", "type": "data_access", "policy_group": "g",'
        ' "rules": [], "content": {"data": {"topics": ["/a"]}, "consumers": {"groups": ["x"]}}}'
    )
    (tmp_path / "events.yaml").write_text(
        "service_id: events-test\npolicies: [p.json]\nbus: {kind: memory}\n"
        "subscriptions: [{topic: /a, kind: measurement, policy_group: g}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pbgm", "events", "run", "--config", str(tmp_path / "events.yaml"),
         "--metrics-port", str(port), "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if get(port, "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert get(port, "/readyz")[0] == 200
        found = samples(get(port, "/metrics")[1])
        assert found[("pbgm_service_up", (("service", "events-test"),))] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(line["message"].startswith("metrics and health of") for line in lines)
    assert all({"time", "level", "pid", "logger", "message"} <= set(line) for line in lines)
