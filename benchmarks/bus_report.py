"""The report of the bus benchmark: the rounds side by side, the ratios to the floor, a table.

One round can be moved by the machine's load, so every figure of every round is kept and
printed side by side (`a / b`) rather than averaged away; the ratios of the event service
to the raw relay (the floor: the same two hops doing no work) are means of the rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.bus_middles import PATHS


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per path and QoS: the rounds' values side by side, and the ratios to the floor."""
    rows: dict[str, Any] = {}
    for path in PATHS:
        for qos in ("qos0", "qos1"):
            runs = [one[path][qos] for one in rounds]
            rows[f"{path} {qos}"] = {
                "events_per_s": [r["burst"]["events_per_s"] for r in runs],
                "drain_events_per_s": [r.get("drain", {}).get("events_per_s") for r in runs],
                "events_per_cpu_s": [r.get("drain", {}).get("events_per_cpu_s") for r in runs],
                "p50_ms": [r["steady"]["p50_ms"] for r in runs],
                "p99_ms": [r["steady"]["p99_ms"] for r in runs],
                "lost": [sum(m["sent"] - m["received"] for k, m in r.items() if k != "counters")
                         for r in runs],
            }  # fmt: skip
    rows["ratios"] = {qos: _ratios(rows, qos) for qos in ("qos0", "qos1")}
    return rows


def _ratios(rows: dict[str, Any], qos: str) -> dict[str, float]:
    ours, floor = rows[f"event service {qos}"], rows[f"raw relay {qos}"]

    def ratio(key: str) -> float:
        return round(statistics.fmean(ours[key]) / statistics.fmean(floor[key]), 2)

    relay = rows[f"pbgm relay {qos}"]
    return {
        "events/s pbgm relay / raw relay (generator running)": round(
            statistics.fmean(relay["events_per_s"]) / statistics.fmean(floor["events_per_s"]), 2
        ),
        "events/s event service / raw relay (generator running)": ratio("events_per_s"),
        "events/s event service / raw relay (drain)": ratio("drain_events_per_s"),
        "events per CPU-s event service / raw relay": ratio("events_per_cpu_s"),
        "p50 event service / raw relay (steady)": ratio("p50_ms"),
    }


def print_table(results: dict[str, Any]) -> None:
    summary = results["summary"]
    columns = ("events/s", "drain ev/s", "per CPU-s", "p50 ms", "p99 ms")
    print(f"{'path':<22}" + "".join(f"{c:>15}" for c in columns) + f"{'lost':>6}")
    for path in PATHS:
        for qos in ("qos0", "qos1"):
            row = summary[f"{path} {qos}"]
            cells = (
                _pair(row["events_per_s"], 0),
                _pair(row["drain_events_per_s"], 0),
                _pair(row["events_per_cpu_s"], 0),
                _pair(row["p50_ms"], 2),
                _pair(row["p99_ms"], 2),
            )
            print(f"{path + ' ' + qos:<22}" + "".join(f"{c:>15}" for c in cells)
                  + f"{sum(row['lost']):>6}")  # fmt: skip
    for qos, ratios in summary["ratios"].items():
        for name, value in ratios.items():
            print(f"{qos}: {name}: {value}")
    if "event service split (us per event)" in results:
        print("event service, us per event:")
        for name, value in results["event service split (us per event)"].items():
            print(f"  {name}: {value}")
    for how, row in results.get("propagation", {}).items():
        print(f"propagation by {how}: p50 {row['p50_s']:.3f} s, p99 {row['p99_s']:.3f} s "
              f"({row['samples']} changes)")  # fmt: skip


def _pair(values: list[Any], digits: int) -> str:
    return " / ".join("-" if v is None else f"{v:.{digits}f}" for v in values)
