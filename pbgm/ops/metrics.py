"""Prometheus metrics for pbgm's processes: get-or-create, and one text for many workers.

Code that counts something asks for its metric by name and gets the same object
every time, in the registry it names (default: `REGISTRY`, this process's pbgm
metrics)::

    from pbgm.ops.metrics import counter, gauge, histogram

    written = counter("pbgm_decision_log_written", "Decision log rows written")
    depth = gauge("pbgm_decision_log_queue_depth", "Rows waiting", mode="livesum")
    written.inc()

Asking again with another type or other labels is a `ValueError` (two meanings
under one name would corrupt both).

**Several workers** (`pbgm serve`): prometheus-client's multiprocess mode. The
server sets `PROMETHEUS_MULTIPROC_DIR` to an empty directory before any worker
imports prometheus-client (`pbgm.ops.multiprocess`); each worker then writes its
values to files there, and `exposition()` in whichever worker answers the scrape
sums them, so counters never go backwards whichever worker Prometheus reaches.
Gauges say how workers combine (`mode`: `livemax`, `livesum`, `liveall` keeps one
series per worker with a `pid` label, ...); `Info` and `Enum` do not work across
processes (use a gauge set to 1 with labels, as `pbgm_build_info` does). Process
metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...) are
read from `/proc` for the master and every live worker at scrape time, one series
per process with a `pid` label.
"""

from __future__ import annotations

import os
import platform
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from pbgm.ops.multiprocess import multiprocess_dir

REGISTRY = CollectorRegistry(auto_describe=True)
"""This process's pbgm metrics (prometheus-client's global registry is left alone)."""

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

M = TypeVar("M", bound=MetricWrapperBase)

_lock = threading.Lock()
_made: weakref.WeakKeyDictionary[
    CollectorRegistry, dict[str, tuple[MetricWrapperBase, tuple[str, ...]]]
] = weakref.WeakKeyDictionary()
"""The metrics made in each registry, forgotten with the registry."""


def _get_or_make(
    kind: type[M],
    name: str,
    labelnames: Sequence[str],
    registry: CollectorRegistry | None,
    **options: Any,
) -> M:
    registry = REGISTRY if registry is None else registry
    labels = tuple(labelnames)
    with _lock:
        made = _made.setdefault(registry, {})
        if name in made:
            metric, known = made[name]
            if type(metric) is not kind or known != labels:
                raise ValueError(
                    f"metric `{name}` exists as a {type(metric).__name__.lower()} "
                    f"with labels {list(known)}"
                )
            return metric
        metric = kind(name, registry=registry, labelnames=labels, **options)
        made[name] = (metric, labels)
        return metric


def counter(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    registry: CollectorRegistry | None = None,
) -> Counter:
    """The counter `name` (exported as `<name>_total`), made on first use."""
    return _get_or_make(Counter, name, labelnames, registry, documentation=documentation)


def gauge(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    mode: str = "livemax",
    registry: CollectorRegistry | None = None,
) -> Gauge:
    """The gauge `name`; `mode` says how the values of several workers combine."""
    return _get_or_make(
        Gauge,
        name,
        labelnames,
        registry,
        documentation=documentation,
        multiprocess_mode=mode,
    )


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    buckets: Sequence[float] = LATENCY_BUCKETS,
    registry: CollectorRegistry | None = None,
) -> Histogram:
    """The histogram `name` (seconds unless its name says otherwise)."""
    return _get_or_make(
        Histogram, name, labelnames, registry, documentation=documentation, buckets=buckets
    )


def build_info(version: str, *, registry: CollectorRegistry | None = None) -> None:
    """`pbgm_build_info{version, python}` = 1: which pbgm a process runs."""
    info = gauge(
        "pbgm_build_info",
        "The pbgm version and Python of the serving processes (always 1)",
        ["version", "python"],
        mode="max",
        registry=registry,
    )
    info.labels(version, platform.python_version()).set(1)


def process_collector(registry: CollectorRegistry) -> None:
    """Add this process's CPU, memory and file-descriptor metrics to `registry` (one
    process; `exposition` reports every worker of a server itself)."""
    if multiprocess_dir() is None:
        ProcessCollector(registry=registry)


def exposition(
    registry: CollectorRegistry | None = None, *, extra: Iterable[Collector] = ()
) -> bytes:
    """The Prometheus text of `registry`, or of every worker when several share a
    metrics directory (then with each server process's process metrics, and the
    `extra` collectors of `registry` that read their values at scrape time: they are
    not in the workers' files)."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY if registry is None else registry)
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]
    combined.register(ServerProcesses(directory))
    for collector in extra:
        combined.register(collector)
    return generate_latest(combined)


class ServerProcesses(Collector):
    """Process metrics of the server's master and its live workers, labelled `pid`.

    The workers are the processes that left files in the metrics directory and whose
    parent is this process's parent (the gunicorn master).
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def pids(self) -> list[int]:
        master = os.getppid()
        found = {os.getpid()}
        for path in self.directory.glob("*.db"):
            pid = path.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and _parent_of(int(pid)) == master:
                found.add(int(pid))
        return [master, *sorted(found)] if _parent_of(master) is not None else sorted(found)

    def collect(self) -> Iterable[Any]:
        families: dict[str, Any] = {}
        for pid in self.pids():
            collector = ProcessCollector(pid=_constant(pid), registry=None)
            for family in collector.collect():
                merged = families.get(family.name)
                if merged is None:
                    kind: Any = type(family)
                    merged = families[family.name] = kind(
                        family.name, family.documentation, labels=["pid"]
                    )
                    merged.type = family.type
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live process, from `/proc` (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
