"""One engine at one size, measured in the current process: the unit `benchmarks.pdp`
runs in a fresh subprocess per (engine, N), so that engines never share a heap.

Phases: the workload and the engine's sources are built and the requests turned into
the engine's own form (not timed); `load` is timed and its resident memory delta taken;
a warm-up stream is decided; then every measured request is timed on its own with
`time.perf_counter_ns`. Every decision, warm-up and measured, is compared with the
plain-Python reference.

Limits keep a full run within its budget: a load that takes longer than `load_limit`
seconds ends the measure as skipped; the warm-up stops after `WARMUP_BUDGET_S`; and an
engine whose warm-up shows that the measured stream would take more than
`decide_budget` seconds is measured on as many requests as fit (at least
`MIN_REQUESTS`), which the result states (`measured` < `requested`).
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import psutil

from benchmarks.pdp_workload import Triple, Workload, make_workload, reference_decide, streams

MIN_REQUESTS = 100
LOAD_LIMIT_S = 300.0
DECIDE_BUDGET_S = 60.0
WARMUP_BUDGET_S = 10.0


class Engine(Protocol):
    """What the benchmark needs from an engine (see `benchmarks.pdp_peers`)."""

    name: str
    note: str

    def load(self) -> Callable[[Any], bool]: ...

    def prepare(self, triple: Triple) -> Any: ...


def engines() -> dict[str, Callable[[Workload, Path], Engine]]:
    """Every engine by the name the command line uses, pbgm first, the floor last."""
    from benchmarks.pdp_floor import ENGINES as FLOOR
    from benchmarks.pdp_pbgm import ENGINES as PBGM
    from benchmarks.pdp_peers import PEERS

    return {**PBGM, **PEERS, **FLOOR}


def rss() -> int:
    return psutil.Process().memory_info().rss


def measure(
    name: str,
    size: int,
    requests: int,
    *,
    warmup: int | None = None,
    load_limit: float = LOAD_LIMIT_S,
    decide_budget: float = DECIDE_BUDGET_S,
) -> dict[str, Any]:
    """Load engine `name` with `size` policies and decide `requests` requests."""
    workload = make_workload(size)
    warm, measured = streams(workload, warmup or max(1_000, requests // 10), requests)
    with tempfile.TemporaryDirectory(prefix="pbgm-bench-") as workdir:
        engine = engines()[name](workload, Path(workdir))
        warm_native = [engine.prepare(t) for t in warm]
        measured_native = [engine.prepare(t) for t in measured]
        decide, load_s, rss_delta = _load(engine, load_limit)
        row = {"engine": name, "n": size, "note": engine.note, "load_s": load_s}
        row |= {"rss_mb": rss_delta / 2**20, "setup_s": getattr(engine, "setup_s", 0.0)}
        warmed, warm_mismatches, seconds_each = _warm(decide, warm_native, warm, workload)
        count = _affordable(requests, seconds_each, decide_budget)
        row |= _timed(decide, measured_native[:count], measured[:count], workload)
        row |= {"requested": requests, "warmup": warmed}
        row["mismatches"] += warm_mismatches
    return row


def _load(engine: Engine, limit: float) -> tuple[Callable[[Any], bool], float, int]:
    """Load under a watchdog: past `limit` seconds the process reports a skip and exits."""
    watchdog = threading.Timer(limit, _skip_and_exit, args=(engine.name, limit))
    watchdog.daemon = True
    gc.collect()
    before = rss()
    watchdog.start()
    start = time.perf_counter()
    decide = engine.load()
    load_s = time.perf_counter() - start
    watchdog.cancel()
    return decide, load_s, rss() - before


def _skip_and_exit(name: str, limit: float) -> None:
    import json
    import sys

    sys.stdout.write(json.dumps({"engine": name, "skipped": f"load > {limit:.0f} s"}) + "\n")
    sys.stdout.flush()
    os._exit(0)


def _warm(
    decide: Callable[[Any], bool], natives: Sequence[Any], triples: Sequence[Triple], w: Workload
) -> tuple[int, int, float]:
    """(requests decided, mismatches, seconds per decision) of the warm-up stream."""
    start = time.perf_counter()
    deadline = start + WARMUP_BUDGET_S
    decisions = []
    for request in natives:
        decisions.append(decide(request))
        if time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - start
    count = len(decisions)
    return count, _mismatches(decisions, triples[:count], w), elapsed / count


def _affordable(requests: int, seconds_each: float, budget: float) -> int:
    if seconds_each * requests <= budget:
        return requests
    return max(MIN_REQUESTS, min(requests, int(budget / seconds_each)))


def _timed(
    decide: Callable[[Any], bool], natives: Sequence[Any], triples: Sequence[Triple], w: Workload
) -> dict[str, Any]:
    clock = time.perf_counter_ns
    latencies: list[int] = []
    decisions: list[bool] = []
    for request in natives:
        start = clock()
        decision = decide(request)
        latencies.append(clock() - start)
        decisions.append(decision)
    return _figures(latencies, decisions) | {"mismatches": _mismatches(decisions, triples, w)}


def _figures(latencies: list[int], decisions: list[bool]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "measured": len(latencies),
        "p50_us": statistics.median(ordered) / 1e3,
        "p99_us": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1e3,
        "decisions_per_s": 1e9 * len(latencies) / max(sum(latencies), 1),
        "permitted_share": sum(decisions) / max(len(decisions), 1),
    }


def _mismatches(decisions: Sequence[bool], triples: Sequence[Triple], w: Workload) -> int:
    return sum(d is not reference_decide(w, *t) for d, t in zip(decisions, triples, strict=True))
