"""Flex request to first FlexOffer submitted: the market half of the REST-peer benchmark.

Target (issue 14): under 50 ms p99 for a 24-step horizon on 10 nodes. Measured from the
publish of the MPC's request (CoVee shape) on the event service's bus to the moment the
stand-in market (a real HTTP server on 127.0.0.1) receives the first offer: the event
service's trigger decision, the start of the grid service, the request decision, ten
asset decisions, ten offers built and validated against their templates, the decision
log written (one batch), and the first POST over the socket. Each run then completes
its whole life cycle (submit, poll, schedules checked, result published) before the next
starts. A memory bus stands for MQTT: broker latency is not pbgm's.

Run: `.venv/bin/python -m benchmarks.peers_market`; results go to
`benchmarks/results/peers_market.json`.
"""

from __future__ import annotations

import copy
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from adapters.market import MarketService, MarketSettings
from adapters.market.testing import StandInMarket
from controls import FlexSchedule
from pbgm.bus import MemoryBus
from pbgm.events import EventService, EventServiceConfig
from pbgm.testing import memory_store

NODES = 10
HORIZON = 24
RUNS = 200
WARMUP = 10
TARGET_P99_MS = 50.0
REQUEST = "/edgeflex/goflex/flex_request"
POLICIES = Path(__file__).resolve().parent.parent / "examples" / "market" / "policies"
RESULTS = Path(__file__).parent / "results" / "peers_market.json"


def _policies() -> list[dict[str, Any]]:
    """The example trigger and one load template per node, 1..NODES."""
    trigger = yaml.safe_load((POLICIES / "market-on-flex-request.yaml").read_text())
    load = yaml.safe_load((POLICIES / "fo-market-load-05.yaml").read_text())
    documents = [trigger]
    for node in range(1, NODES + 1):
        document = copy.deepcopy(load)
        asset = f"load-{node:02d}"
        document.update(id=f"fo-market-{asset}", asset_id=asset)
        document["target"] = {"resource": {"asset_id": asset}}
        document["content"].update(asset_id=asset, grid_node=node)
        documents.append(document)
    return documents


def _request() -> bytes:
    nodes = tuple(range(1, NODES + 1))
    rows = tuple(tuple(-10.0 - (k + n) % 5 for n in nodes) for k in range(HORIZON))
    return json.dumps(FlexSchedule("active_power", nodes, rows).to_covee()).encode()


def run() -> dict[str, Any]:
    store = memory_store(policies=_policies())
    bus = MemoryBus()
    subscription = {"topic": REQUEST, "kind": "measurement", "codec": "json",
                    "policy_group": "flexibility", "decide": False}  # fmt: skip
    config = EventServiceConfig.from_mapping({"subscriptions": [subscription]})
    payload = _request()
    samples: list[float] = []
    statuses: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    bus.subscribe("/edgeflex/goflex/flex_result", lambda m: results.append(json.loads(m.payload)))
    with StandInMarket(assign_after_s=0.0) as market:
        options = {"markets": {"goflex": {"base_url": market.url}}, "poll_interval_s": 0.01}
        service = MarketService(bus, store=store, settings=MarketSettings.from_options(options))
        services = {"flexibility-market": service}
        with EventService(config, bus=bus, store=store, services=services) as events:
            for index in range(WARMUP + RUNS):
                seen = len(market.requests("POST"))
                start = time.perf_counter()
                bus.publish(REQUEST, payload)
                events.wait_idle(timeout=30)
                first = market.requests("POST")[seen].at
                if index >= WARMUP:
                    samples.append((first - start) * 1000)
        service.close()
    for result in results[WARMUP:]:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    ordered = sorted(samples)
    return {
        "nodes": NODES,
        "horizon": HORIZON,
        "runs": RUNS,
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[max(0, round(0.99 * len(ordered)) - 1)],
        "max_ms": ordered[-1],
        "statuses": statuses,
        "target_p99_ms": TARGET_P99_MS,
    }


def main() -> None:
    row = run()
    print(
        f"flex request -> first FlexOffer submitted, {row['nodes']} nodes x {row['horizon']} "
        f"steps, {row['runs']} runs: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
        f"max {row['max_ms']:.1f} ms; results {row['statuses']}"
    )
    verdict = "met" if row["p99_ms"] < TARGET_P99_MS else "NOT met"
    print(f"target p99 < {TARGET_P99_MS:.0f} ms: {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "time": time.time()}
    RESULTS.write_text(json.dumps({"meta": meta, "rows": [row]}, indent=2) + "\n")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
