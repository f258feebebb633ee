"""A QoS change fanned out to a group of 1,000 devices, beside a raw HTTP client.

The operator is `tests.camara.server.CamaraServer` on 127.0.0.1 in a process of its
own (werkzeug, a thread per connection; its schema checks are off here: they are the
operator's cost, the same for both). Two clients create one QoD session per device,
`CONCURRENCY` calls in flight, rounds taking turns so that other load on the machine
weighs on both:

- `raw httpx`: a bare `httpx.Client` (one token, the same bodies), threads, nothing else;
- `pbgm group action`: `DeviceManager.act_on_group("start", ...)` on a SQLite
  repository: per device a read of its groups, a decision by the PDP with the
  `device_qos` policy, the call through `adapters.camara` (token reuse,
  `x-correlator`), the session and its audit entry recorded (in batches).

Figures: wall time of the 1,000 calls (median of `ROUNDS`), pbgm's ratio to the raw
client, and pbgm's overhead per device call = (pbgm - raw) / 1,000 at that
concurrency; then, with no network, what one device costs pbgm alone: a decision
(median of 1,000) and a recorded outcome (a batch of 1,000 / 1,000).
Target: the group of 1,000 in under 2 s.
Run: `.venv/bin/python -m benchmarks.devices`; results in `benchmarks/results/devices.json`.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results" / "devices.json"
DEVICES = 1_000
CONCURRENCY = 16
ROUNDS = 3
TARGET_S = 2.0


class Operator:
    """The CAMARA operator in a child process (its own interpreter, its own GIL)."""

    def __init__(self) -> None:
        code = (
            "import sys; from tests.camara.server import CamaraServer; "
            "s = CamaraServer(validate=False); print(s.port, flush=True); sys.stdin.read()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        self.token_url = f"{self.url}/oauth2/token"

    def reset(self) -> None:
        assert httpx.post(f"{self.url}/_reset").status_code == 204

    def token(self) -> str:
        from tests.camara.server import CLIENT_ID, CLIENT_SECRET

        form = {"grant_type": "client_credentials"}
        reply = httpx.post(self.token_url, data=form, auth=(CLIENT_ID, CLIENT_SECRET))
        return str(reply.json()["access_token"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def _world(directory: Path) -> tuple[Any, Any, Any]:
    from adapters.camara import CamaraNetwork
    from pbgm.devices import DeviceManager, DeviceSettings
    from pbgm.network import NetworkConfig
    from pbgm.store.sql import SqlStore
    from pbgm.store.sql.migrate import upgrade
    from tests.camara.server import CLIENT_ID, CLIENT_SECRET
    from tests.devices.world import seed

    camara = Operator()
    url = f"sqlite:///{directory / 'pbgm.db'}"
    upgrade(url)
    store = SqlStore(url)
    seed(store, devices=DEVICES)
    (directory / "secret").write_text(CLIENT_SECRET)
    config = NetworkConfig.from_mapping(
        {
            "base_url": camara.url,
            "token_url": camara.token_url,
            "client_id": CLIENT_ID,
            "client_secret_file": "secret",
            "concurrency": CONCURRENCY,
            "timeout_s": 30,
        },
        base_dir=directory,
    )
    network = CamaraNetwork(config)
    settings = DeviceSettings.from_network(config, batch=200)
    return camara, store, DeviceManager(store, network, settings=settings)


def _raw_round(camara: Any, token: str, devices: list[dict[str, str]]) -> float:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=camara.url, limits=limits, headers=headers, timeout=30) as client:

        def one(device: dict[str, str]) -> int:
            body = {
                "device": device,
                "applicationServer": {"ipv4Address": "198.51.100.10"},
                "qosProfile": "LOW_LATENCY",
                "duration": 600,
            }
            reply = client.post(
                "/quality-on-demand/v1/sessions",
                json=body,
                headers={"x-correlator": str(uuid.uuid4())},
            )
            return reply.status_code

        began = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            statuses = list(pool.map(one, devices))
        spent = time.perf_counter() - began
    assert statuses == [201] * len(devices), sorted(set(statuses))
    return spent


def _pbgm_round(manager: Any) -> float:
    began = time.perf_counter()
    result = manager.act_on_group("start", "op-anna", "pmus", duration_s=600)
    spent = time.perf_counter() - began
    assert result.outcome == "all", result.as_json()["failed"][:3]
    return spent


def _reset(camara: Any, store: Any) -> None:
    camara.reset()
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM network_resources")


def _core_costs(store: Any, manager: Any) -> dict[str, float]:
    """What one device costs pbgm with no network: a decision, a recorded outcome."""
    from pbgm.devices import Ask
    from pbgm.devices._results import DeviceResult, Outcome
    from pbgm.store.base import NetworkResource

    device = store.get_device("pmu-1")
    groups = tuple(store.device_groups_of("pmu-1"))
    ask = Ask("op-anna", "qos_change", device, groups, qos_profile="LOW_LATENCY", duration_s=600)
    manager.decisions.refresh()
    timings = []
    for _ in range(DEVICES):
        began = time.perf_counter()
        assert manager.decisions.decide(ask).allowed
        timings.append(time.perf_counter() - began)
    outcomes = [
        Outcome(
            DeviceResult(f"pmu-{n}", "done"),
            "qos_change",
            "op-anna",
            {"decision": "Permit"},
            resources=(
                NetworkResource(
                    "qos_session",
                    f"bench-{n}",
                    f"pmu-{n}",
                    "AVAILABLE",
                    qos_profile="LOW_LATENCY",
                    duration_s=600,
                ),
            ),
        )
        for n in range(1, DEVICES + 1)
    ]
    began = time.perf_counter()
    for start in range(0, DEVICES, 200):
        manager.recorder.record(outcomes[start : start + 200])
    recorded = (time.perf_counter() - began) / DEVICES
    return {"decision_us": statistics.median(timings) * 1e6, "record_us": recorded * 1e6}


def run() -> dict[str, Any]:
    from tests.devices.world import camara_device

    with tempfile.TemporaryDirectory() as directory:
        camara, store, manager = _world(Path(directory))
        try:
            devices = [camara_device(n) for n in range(1, DEVICES + 1)]
            manager.network.get().reachability(devices[0])  # pbgm's token, fetched once
            token = camara.token()
            raw, pbgm = [], []
            for _ in range(ROUNDS):
                _reset(camara, store)
                raw.append(_raw_round(camara, token, devices))
                _reset(camara, store)
                pbgm.append(_pbgm_round(manager))
            _reset(camara, store)
            costs = _core_costs(store, manager)
        finally:
            manager.close()
            store.close()
            camara.close()
    raw_s, pbgm_s = statistics.median(raw), statistics.median(pbgm)
    return {
        "devices": DEVICES,
        "concurrency": CONCURRENCY,
        "raw_httpx_s": round(raw_s, 3),
        "pbgm_group_action_s": round(pbgm_s, 3),
        "ratio_pbgm_to_raw": round(pbgm_s / raw_s, 2),
        "pbgm_overhead_per_device_ms": round((pbgm_s - raw_s) / DEVICES * 1000, 3),
        "decision_us_per_device": round(costs["decision_us"], 1),
        "record_us_per_device": round(costs["record_us"], 1),
        "rounds": {"raw_s": [round(x, 3) for x in raw], "pbgm_s": [round(x, 3) for x in pbgm]},
        "target_s": TARGET_S,
        "target_met": pbgm_s < TARGET_S,
    }


def main() -> None:
    result = run()
    print(f"QoS change to a group of {DEVICES:,} devices, {CONCURRENCY} calls in flight")
    print(f"  raw httpx client            {result['raw_httpx_s']:>7.3f} s")
    print(
        f"  pbgm group action           {result['pbgm_group_action_s']:>7.3f} s"
        f"  ({result['ratio_pbgm_to_raw']}x raw)"
    )
    print(f"  pbgm overhead per device    {result['pbgm_overhead_per_device_ms']:>7.3f} ms (wall)")
    print(f"  decision alone              {result['decision_us_per_device']:>7.1f} us")
    print(f"  recorded outcome alone      {result['record_us_per_device']:>7.1f} us")
    verdict = "met" if result["target_met"] else "NOT met"
    print(f"target: under {TARGET_S} s: {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "time": time.time()}
    RESULTS.write_text(json.dumps({"meta": meta, "result": result}, indent=2) + "\n")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
