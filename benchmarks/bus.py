"""Bus benchmark: the event service beside the best raw paho relay, and policy propagation.

Every path runs in its own processes (each with its own GIL, as in production): a load
generator (paho) publishes numbered measurements, the middle under test handles them,
and a counting subscriber (paho) receives the output. The paths:

- `raw one hop`: generator -> broker -> counter (the broker's own round trip);
- `raw relay` (the floor): generator -> broker -> a bare paho client republishing each
  message from its `on_message` -> broker -> counter: the same two hops as the event
  service, with no decoding, no decision, no obligation;
- `MqttBus relay`: the same with `adapters.mqtt.MqttBus` in the middle (its handler thread
  republishing): what the adapter costs over raw paho;
- `event service`: generator -> broker -> `MqttBus` -> `pbgm.events.EventService`
  (json.edgeflex decode, request with RoCoF and power step over their windows, PDP
  decision, deny-biased PEP) -> `publish_notification` obligation -> broker -> counter.

Every paho client here uses paho's fastest settings (no in-flight window of its own,
TCP_NODELAY); every hop uses the same QoS, 0 or 1. Each path and QoS is measured:

- throughput, generator running: `burst` messages published as fast as the path takes
  them, at most `WINDOW` on their way (the generator reads the counter's count from
  shared memory, so no queue grows without bound); events/s from the first publish to
  the last arrival. On a small machine the generator and the counter take CPU from the
  middle, so also:
- drain: the middle process is stopped (SIGSTOP) while `burst` messages are published,
  then resumed; events/s from its resumption to the last arrival, with the generator
  idle. The middle's CPU time per event, by thread, is measured here; 1e6 / its total
  is the events per CPU-second, what the process would do with a core to itself;
- latency: 500 events/s for `steady` messages, p50/p99 of publish -> receipt
  (`perf_counter` is the system's monotonic clock, shared by the processes).

Rounds are interleaved (all paths, then all paths again) so a change in the machine's
load shows in every path alike. The split of the event service (µs per message: paho's
network thread and the handler thread from their CPU clocks in the drain; within the
handler, decode, request, decision, obligation and the publish call, timed in process
with the thread's CPU clock) says where the time goes.

Broker: by default (`--broker own`) a private mosquitto on a free port with its best
settings for this load: `set_tcp_nodelay true` (the default `false` lets Nagle hold back
small messages, ~15 ms per two-hop path) and no in-flight or queue limits of its own;
`--broker local` uses the running one on 127.0.0.1:1883 as it is configured (a default
mosquitto keeps at most 1000 QoS 1 messages for a stopped client: the rest of a drain's
burst is dropped and shows as lost).

Propagation (`pbgm.loader`): time from a policy change committed through the admin API
(REST PUT + publish on a real HTTP server) to the loader's callback, by push (the API's
change notice over MQTT) and by poll (1 s refresh interval), reusing the API and loader
test fixtures (`tests.api.conftest`, `tests.test_loader`).

Broker-side enforcement (`benchmarks.bus_enforcement`): the `pbgm relay` and the
event service on a plain broker and on the same broker with the dynamic-security
plugin enforcing pbgm's plan, rounds interleaved; ratio dynsec / plain (target:
at least 0.9). Restarts (`benchmarks.bus_restart`): broker and subscriber restarts
(SIGTERM and kill -9) in the middle of a QoS 1 stream with persistent sessions; lost
messages counted.

Run: `.venv/bin/python -m benchmarks.bus [--quick] [--broker own|local] [--source DIR]
[--parts paths split propagation enforcement restarts]`; results in
`benchmarks/results/bus.json` (`bus-local-broker.json` for `--broker local`; a run of
some parts only writes `bus-<parts>.json`).
`--source DIR` imports `pbgm` and `adapters` of the middles from another source tree,
to compare two versions on the same machine state.

The parts: `benchmarks.bus_load` (the numbered measurements, the generator and the
counter), `bus_middles` (the middles under test), `bus_measure` (one path at one QoS:
its processes, latency, throughput, drain), `bus_split` (where the event service's time
goes), `bus_propagation`, `bus_broker` (the private mosquitto) and `bus_report` (summary,
ratios, table). This module runs them and writes the results.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bus_broker import OWN_BROKER_CONFIG, own_broker
from benchmarks.bus_enforcement import enforcement, print_enforcement
from benchmarks.bus_load import (
    BASE_MS,
    DEVICES,
    HOST,
    PERIOD_MS,
    SPAWN,
    paho_client,
    sample,
    seq_of_notification,
    seq_of_sample,
    stop,
)
from benchmarks.bus_measure import STEADY_RATE, WINDOW, Session, latency, measure_path, throughput
from benchmarks.bus_middles import BUS_QUEUES, MIDDLES, PATHS, bench_policy, event_service
from benchmarks.bus_propagation import propagation
from benchmarks.bus_report import print_table, summarise
from benchmarks.bus_restart import print_restarts, restarts
from benchmarks.bus_split import NullBus, network_share, split

__all__ = [  # the names this module had before it was split, still importable from it
    "BASE_MS",
    "BUS_QUEUES",
    "DEVICES",
    "HOST",
    "MIDDLES",
    "OWN_BROKER_CONFIG",
    "PATHS",
    "PERIOD_MS",
    "RESULTS",
    "SPAWN",
    "STEADY_RATE",
    "WINDOW",
    "NullBus",
    "Session",
    "bench_policy",
    "event_service",
    "latency",
    "main",
    "measure_path",
    "network_share",
    "own_broker",
    "paho_client",
    "print_table",
    "propagation",
    "run",
    "sample",
    "seq_of_notification",
    "seq_of_sample",
    "split",
    "stop",
    "summarise",
    "throughput",
]

RESULTS = Path(__file__).parent / "results" / "bus.json"
PARTS = ("paths", "split", "propagation", "enforcement", "restarts")


def run(
    quick: bool,
    broker: str,
    port: int,
    source: str | None,
    rounds: int,
    parts: tuple[str, ...] = PARTS,
) -> dict[str, Any]:
    steady, burst = (1000, 5000) if quick else (2500, 20000)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": psutil.cpu_count(),
            "load_average": [round(x, 2) for x in psutil.getloadavg()],
        },
        "settings": {
            "broker": f"{HOST}:{port} ({broker})",
            "steady_rate": STEADY_RATE,
            "steady": steady,
            "burst": burst,
            "burst_window": WINDOW,
            "rounds": rounds,
            "source": source or "this tree",
        },
        "rounds": [],
    }
    if "paths" in parts:
        for _ in range(rounds):
            results["rounds"].append(
                {
                    path: {
                        f"qos{q}": measure_path(path, q, port, source, steady, burst)
                        for q in (0, 1)
                    }
                    for path in PATHS
                }
            )
        results["summary"] = summarise(results["rounds"])
    if "split" in parts:
        results["event service split (us per event)"] = {
            **split(port, source, 2000 if quick else 5000),
            **(network_share(results["rounds"]) if results["rounds"] else {}),
        }
    if "propagation" in parts:
        results["propagation"] = propagation(port, *((5, 2) if quick else (20, 5)))
    if "enforcement" in parts:
        results["enforcement"] = enforcement(rounds, steady // 2, burst // 2)
    if "restarts" in parts:
        results["restarts"] = restarts(*((900, 300.0) if quick else (3000, 300.0)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and changes")
    parser.add_argument(
        "--broker",
        choices=("own", "local"),
        default="own",
        help="own: a private mosquitto with its best settings on a free port (default); "
        "local: the running broker on 127.0.0.1:1883 as configured",
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--source", help="import pbgm and adapters of the middles from this source tree"
    )
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run (all)"
    )
    arguments = parser.parse_args()
    source = str(Path(arguments.source).resolve()) if arguments.source else None
    parts = tuple(arguments.parts)
    if arguments.broker == "own":
        with own_broker() as port:
            results = run(arguments.quick, "own", port, source, arguments.rounds, parts)
        target = RESULTS
    else:
        results = run(
            arguments.quick, "local, as configured", 1883, source, arguments.rounds, parts
        )
        target = RESULTS.with_name("bus-local-broker.json")
    if parts != PARTS:
        target = target.with_name(f"{target.stem}-{'-'.join(parts)}.json")
    if "paths" in parts:
        print_table(results)
    if "enforcement" in parts:
        print_enforcement(results["enforcement"])
    if "restarts" in parts:
        print_restarts(results["restarts"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {target}")


if __name__ == "__main__":
    main()
