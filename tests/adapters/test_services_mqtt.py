"""The control services against the real local Mosquitto (127.0.0.1:1883), in process and
as `pbgm-service` subprocesses stopped by SIGTERM.

Every test uses topics under its own random prefix: the broker is shared with other
tests running at the same time.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters.services._runner import open_service_bus
from adapters.services.frequency import FrequencyService
from adapters.services.voltage import VoltageService
from pbgm.policy.documents import load_file
from tests.adapters.pmu_peer import OK_STAT, SOC, DataFrame, make_config, udp_sender
from tests.conftest import LOCAL_BROKER, require_local_broker

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


@pytest.fixture(scope="module")
def broker() -> None:
    require_local_broker()


@pytest.fixture
def prefix() -> str:
    return f"/pbgm-test-{secrets.token_hex(4)}"


@pytest.fixture
def peer(broker):
    bus = open_service_bus(BUS)
    yield bus
    bus.close()


class Inbox:
    """Messages received on a filter, decoded, with a wait."""

    def __init__(self, bus, topic_filter: str) -> None:
        self.items: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        bus.subscribe(topic_filter, self._take, qos=1)

    def _take(self, message) -> None:
        with self._lock:
            self.items.append((message.topic, json.loads(message.payload)))

    def wait(self, count: int = 1, timeout: float = 10.0, poke=None) -> list[tuple[str, dict]]:
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.items) >= count:
                    return list(self.items)
            assert time.monotonic() < end, f"{len(self.items)} of {count} messages arrived"
            if poke is not None:
                poke()
            time.sleep(0.1)


def service_config(prefix: str) -> dict:
    """The example `service_config` with this test's topics for inputs and outputs."""
    document = copy.deepcopy(load_file(POLICIES / "voltage-control-config.yaml"))
    content = document["content"]
    content["data_sources"]["databus"]["topics"] = {
        "voltage_measurements": f"{prefix}/measuremnts/voltage",
        "pv_input_measurements": f"{prefix}/measuremnts/pv",
    }
    content["data_sources"]["spare"] = {
        "kind": "mqtt",
        "format": "json.edgeflex",
        "topics": {"voltage_measurements": f"{prefix}/spare/voltage"},
    }
    content["outputs"] = {k: f"{prefix}/control/{k}" for k in content["outputs"]}
    content["loop_period_s"] = 0.2
    return document


def voltages(value: float = 1.06) -> bytes:
    """A json.edgeflex-stamped sample (the source's format promises `created`)."""
    body = {"voltage_measurements": {"node_2": value, "node_3": value}}
    return json.dumps({**body, "created": now_ms()}).encode()


_last_ms = [0]


def now_ms() -> int:
    _last_ms[0] = max(_last_ms[0] + 1, round(time.time() * 1000))
    return _last_ms[0]


# --- in process ------------------------------------------------------------------------


def test_voltage_service_switches_its_source_over_mqtt(peer, prefix):
    bus = open_service_bus(BUS)
    service = VoltageService(
        bus,
        {
            "feeder": {"v_nominal_v": 400, "lines": LINES},
            "assets": {"bess-01": {"node": 3, "kind": "ess"}},
            "band_from": "feeder-t",
            "status_topic": f"{prefix}/status",
        },
    )
    try:
        service.apply_limits(BAND)
        service.apply_limits(load_file(POLICIES / "limits-bess-01.json"))
        service.apply_service_config(service_config(prefix))
        service.start()
        out = Inbox(peer, f"{prefix}/control/#")
        Inbox(peer, f"{prefix}/status")

        def poke(topic: str) -> None:
            peer.publish(topic, voltages())
            time.sleep(0.1)
            service.step()

        out.wait(1, poke=lambda: poke(f"{prefix}/measuremnts/voltage"))
        switched = service_config(prefix)
        switched["content"]["active_source"] = "spare"
        service.apply_service_config(switched)
        received = service.counters["received"]
        peer.publish(f"{prefix}/measuremnts/voltage", voltages())  # the old source
        time.sleep(0.5)
        assert service.counters["received"] == received
        assert not service.step()
        count = len(out.items)
        out.wait(count + 1, poke=lambda: poke(f"{prefix}/spare/voltage"))
        assert service.source.name == "spare"
    finally:
        service.close()
        bus.close()


def test_frequency_service_over_mqtt(peer, prefix):
    bus = open_service_bus(BUS)
    inputs = {
        "frequency": {"topic": f"{prefix}/pmu", "signal": "edgePMU3 frequency"},
        "units": {"bess-01": {"topic": f"{prefix}/bess", "signal": "value"}},
    }
    service = FrequencyService(bus, {"inputs": inputs, "output_topic": f"{prefix}/out"})
    try:
        service.apply_limits(load_file(POLICIES / "limits-bess-01.json"))
        service.start()
        out = Inbox(peer, f"{prefix}/out")

        def poke() -> None:
            pmu = {"edgePMU3 frequency": 49.8, "created": now_ms()}
            peer.publish(f"{prefix}/pmu", json.dumps(pmu).encode())
            bess = {"value": 100.0, "created": now_ms()}
            peer.publish(f"{prefix}/bess", json.dumps(bess).encode())
            time.sleep(0.1)
            service.step()

        _, setpoints = out.wait(1, poke=poke)[0]
        assert setpoints["active_power"]["bess-01"] > 100.0
    finally:
        service.close()
        bus.close()


# --- pbgm-service subprocesses ---------------------------------------------------------


def start(tmp_path: Path, name: str, config: dict) -> subprocess.Popen:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "adapters.cli", name, "--config", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def terminate(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


def final_state(stderr: str) -> dict:
    line = next(x for x in stderr.splitlines() if "final state:" in x)
    return json.loads(line.split("final state:", 1)[1])


def test_voltage_service_process_runs_and_stops_cleanly_on_sigterm(tmp_path, peer, prefix):
    (tmp_path / "band.json").write_text(json.dumps(BAND))
    (tmp_path / "config.json").write_text(json.dumps(service_config(prefix)))
    config = {
        "bus": BUS,
        "policy_files": {
            "limits": ["band.json", str(POLICIES / "limits-bess-01.json")],
            "service_config": ["config.json"],
        },
        "voltage": {
            "feeder": {"v_nominal_v": 400, "lines": LINES},
            "assets": {"bess-01": {"node": 3, "kind": "ess"}},
            "band_from": "feeder-t",
            "status_topic": f"{prefix}/status",
        },
    }
    out = Inbox(peer, f"{prefix}/control/#")
    process = start(tmp_path, "voltage", config)
    try:
        topic, payload = out.wait(
            1, timeout=20, poke=lambda: peer.publish(f"{prefix}/measuremnts/voltage", voltages())
        )[0]
        assert topic == f"{prefix}/control/active_power_ESS"
        assert payload["active_power_ESS"]["node_3"] < 0  # charging against the overvoltage
        peer.publish(f"{prefix}/measuremnts/voltage", b"{not json")
        peer.publish(f"{prefix}/measuremnts/voltage", voltages())
        out.wait(len(out.items) + 1)  # still running after the malformed payload
    finally:
        status, stderr = terminate(process)
    assert status == 0, stderr
    state = final_state(stderr)
    assert state["band_pu"] == [0.9, 1.04]
    assert state["published"] >= 2 and state["source"] == "databus"
    assert state["malformed"] == 1
    assert "SIGTERM" in stderr


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def test_pmu_service_process_publishes_frames_and_stops_on_sigterm(tmp_path, peer, prefix):
    port = free_udp_port()
    config = {"bus": BUS, "pmu": {"port": port, "topic": prefix + "/{station}"}}
    out = Inbox(peer, f"{prefix}/#")
    process = start(tmp_path, "pmu", config)
    cfg = make_config(station="edgePMU3")
    frame = DataFrame(7734, OK_STAT, [(230.0, 0.0)] * 3, -25, -50, [1.0], [0], cfg, soc=SOC)
    try:
        with udp_sender() as sock:

            def poke() -> None:
                sock.sendto(cfg.convert2bytes(), (HOST, port))
                sock.sendto(frame.convert2bytes(), (HOST, port))

            topic, payload = out.wait(1, timeout=20, poke=poke)[0]
        assert topic == f"{prefix}/edgePMU3"
        assert payload["edgePMU3 frequency"] == pytest.approx(49.975)
    finally:
        status, stderr = terminate(process)
    assert status == 0, stderr
    assert final_state(stderr)["published"] >= 1


def test_a_bad_config_file_exits_with_the_configuration_status(tmp_path):
    process = start(tmp_path, "voltage", {"bus": {"kind": "memory"}, "voltage": {"feeder": 3}})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 9
    assert stderr.startswith("error: configuration_error: ")
