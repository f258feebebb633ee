"""Benchmark: REST peers. KIBERNet polling through pbgm vs the same polling without it.

One period reads 1,000 data points (`--points`) from the stand-in KIBERNet
(`python -m adapters.kibernet.standin`, a local threading HTTP server with live values,
in its own process as a peer is) over one keep-alive connection, in turn:

* `pbgm`: `KibernetPoller.poll_once` -- per data point a PDP decision (a permit with a
  `drop-fields` obligation, pbgm.pep), the endpoint's rate limit (limits, sliding
  window), a GET through `adapters.rest` (retry policy, bounded body), the reading
  checked (finite number, time with a zone), the obligation applied, and the readings
  encoded as `json.edgeflex` (10 topics of 100 signals) and published on an in-memory
  bus;
* `raw httpx`: an `httpx.Client` GET per data point, `response.json()`, the value and
  the ISO time read (`datetime.fromisoformat`), nothing decided, nothing published.

Both run against the same server in alternation, `--rounds` periods each; the median
period is shown, and the ratio reported is the median of each round's pbgm/raw ratio
(docs/benchmarks.md: ratios, because absolute times drift on a shared machine).
Target: pbgm <= 1.2x raw. The server's own time is in both: that is what polling a peer
costs.

Then the market part (`benchmarks.peers_market`): flex request to first FlexOffer
submitted, 10 nodes x 24 steps (target p99 < 50 ms).

Run: `python -m benchmarks.peers [--points N] [--rounds N] [--part kibernet|market]`;
writes `benchmarks/results/peers.json` (and the market's own results file).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from adapters.kibernet import KibernetPoller
from pbgm.bus import MemoryBus
from pbgm.testing import decision_point, memory_store

RESULTS = Path(__file__).resolve().parent / "results" / "peers.json"
TARGET_RATIO = 1.2
SUBJECT = "svc-voltage-control"


def _policy(url: str, points: int) -> dict[str, Any]:
    data_points = {
        f"p{i}": {
            "id": f"P{i}",
            "path": "/datapoints/{id}/latest",
            "topic": f"/kibernet/feeder-{i % 10}/voltage",
            "format": "json.edgeflex",
            "signal": f"node_{i}",
        }
        for i in range(points)
    }
    return {
        "format": "pbgm/v1",
        "id": "kibernet-bench",
        "type": "data_access",
        "policy_group": "bench",
        "rules": [
            {
                "id": "vpp-services-poll",
                "effect": "Permit",
                "target": {"action": {"id": "poll"}, "resource": {"endpoint": "kibernet"}},
                "condition": {
                    "apply": "at-least-one-member-of",
                    "args": [{"attr": "subject.groups"}, ["vpp-services"]],
                },
                "obligations": [{"id": "drop-fields", "attributes": {"fields": ["meter_serial"]}}],
            }
        ],
        "content": {
            "data": {"measurements": ["voltage"]},
            "consumers": {"groups": ["vpp-services"]},
            "endpoints": {"kibernet": {"base_url": url, "timeout_s": 5}},
            "polling": {"endpoint": "kibernet", "interval_s": 60},
            "rate_limit": {"requests_per_minute": 100 * points},
            "data_points": data_points,
        },
    }


def _raw(url: str, points: int) -> Callable[[], int]:
    client = httpx.Client(base_url=url, timeout=5)

    def period() -> int:
        read = 0
        for i in range(points):
            answer = client.get(f"/datapoints/P{i}/latest").json()
            value, moment = answer["value"], datetime.fromisoformat(answer["time"])
            read += value is not None and moment is not None
        return read

    return period


def _pbgm(url: str, points: int) -> tuple[Callable[[], int], KibernetPoller]:
    policy = _policy(url, points)
    store = memory_store(policies=[policy])
    poller = KibernetPoller(
        MemoryBus(),
        decision_point(store, "bench"),
        subject=SUBJECT,
        groups=["vpp-services"],
        registry=CollectorRegistry(),
    )
    poller.apply(policy)

    def period() -> int:
        return poller.poll_once().get("published", 0)

    return period, poller


def _timed(period: Callable[[], int], points: int) -> float:
    started = time.perf_counter()
    read = period()
    elapsed = time.perf_counter() - started
    assert read == points, f"{read} of {points} data points read"
    return elapsed


def run_kibernet(points: int = 1000, rounds: int = 5) -> dict[str, Any]:
    command = [sys.executable, "-m", "adapters.kibernet.standin", str(points)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        raw = _raw(url, points)
        ours, poller = _pbgm(url, points)
        try:
            raw()  # warm both: connections, compiled policies
            ours()
            times: dict[str, list[float]] = {"pbgm": [], "raw httpx": []}
            for _ in range(rounds):
                times["raw httpx"].append(_timed(raw, points))
                times["pbgm"].append(_timed(ours, points))
        finally:
            poller.close()
    finally:
        server.communicate(timeout=10)
    medians = {name: statistics.median(values) for name, values in times.items()}
    # The ratio of each round's pair (run back to back), then their median: a drift of
    # the machine between rounds moves both of a pair, not the ratio.
    ratio = statistics.median(p / r for p, r in zip(times["pbgm"], times["raw httpx"], strict=True))
    return {
        "points": points,
        "rounds": rounds,
        "period_s": {k: round(v, 4) for k, v in medians.items()},
        "us_per_point": {k: round(v / points * 1e6, 1) for k, v in medians.items()},
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def _print_kibernet(result: dict[str, Any]) -> None:
    print(f"KIBERNet polling, {result['points']:,} data points per period, median of "
          f"{result['rounds']} periods")  # fmt: skip
    print(f"{'':12} {'period s':>10} {'us/point':>10}")
    for name in ("raw httpx", "pbgm"):
        print(f"{name:12} {result['period_s'][name]:>10} {result['us_per_point'][name]:>10}")
    verdict = "met" if result["met"] else "NOT met"
    print(f"pbgm / raw = {result['ratio']}x, the median of the rounds' ratios "
          f"(target <= {result['target_ratio']}x): {verdict}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--part", choices=("kibernet", "market"), help="only this part")
    args = parser.parse_args()
    if args.part in (None, "kibernet"):
        results: dict[str, Any] = {"kibernet": run_kibernet(args.points, args.rounds)}
        _print_kibernet(results["kibernet"])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "time": time.time(),
        }
        RESULTS.write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
        print(f"results written to {RESULTS}")
    if args.part in (None, "market"):
        from benchmarks import peers_market

        peers_market.main()


if __name__ == "__main__":
    main()
