"""The metrics the API keeps, in one registry per app (`pbgm.ops.metrics` underneath).

Under `pbgm serve` the workers share one metrics directory (prometheus-client's
multiprocess mode, set up by the server before any worker starts), so `/metrics`
answers the totals of every worker whichever worker Prometheus reaches, and
counters never go backwards. A test or a single process (`create_app` alone)
counts in the app's own registry.

Other parts of the API (and extensions mounted on it) add theirs with
`metrics.counter(...)`, `metrics.gauge(...)` and `metrics.histogram(...)`, which
return the existing metric of that name; `metrics.on_scrape(callback)` runs
`callback()` before each `/metrics` answer, to set gauges from current state, and
`metrics.collector(c)` adds a collector whose values are read at each scrape (from
the repository, say: the same in every worker, so it is not summed across them).

=======================================  ==================================================
metric                                   what
=======================================  ==================================================
pbgm_http_requests_total                 answered requests by endpoint and status
pbgm_http_request_duration_seconds       time to answer, by route (the URL rule, e.g.
                                         `/api/v1/policy`), method and status
pbgm_decisions_total                     decisions by result and kind (`single` request
                                         or `batch`; an XACML call of several requests is
                                         a batch)
pbgm_decision_latency_seconds            time to decide one call, by kind
pbgm_decision_batch_size                 requests per batch call
pbgm_policy_fetches_total                policy fetches by result
pbgm_authentication_failures_total       refused tokens and logins, by code
pbgm_policy_revision                     the repository revision (read at each scrape)
pbgm_policy_revision_worker              the revision each worker last served with (`pid`)
pbgm_devices, pbgm_devices_reachable,    devices under management, their connectivity
pbgm_device_*                            (`pbgm.api._device_metrics`, read at each scrape)
pbgm_build_info                          version and Python (1)
process_*                                CPU, memory, file descriptors, per process (`pid`
                                         under `pbgm serve`)
=======================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

import pbgm
from pbgm.ops import metrics as ops

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000)
SINGLE, BATCH = "single", "batch"
MAX_CHILDREN = 10_000
"""Labelled series `Metrics.labelled` remembers (routes, not raw paths, label them)."""
T = TypeVar("T", Counter, Gauge, Histogram)


class Metrics:
    """The counters, gauges and histograms the API updates (module docstring)."""

    content_type = ops.CONTENT_TYPE

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._hooks: list[Callable[[], None]] = []
        self._collectors: list[Collector] = []
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        ops.process_collector(self.registry)
        ops.build_info(pbgm.__version__, registry=self.registry)
        self.requests = self.counter(
            "pbgm_http_requests", "Answered requests by endpoint and status", ["endpoint", "status"]
        )
        self.request_duration = self.histogram(
            "pbgm_http_request_duration_seconds",
            "Time to answer a request, by route, method and status",
            ["route", "method", "status"],
        )
        self.decisions = self.counter(
            "pbgm_decisions",
            "Decisions served by the API, by result and kind",
            ["decision", "kind"],
        )
        self.decision_latency = self.histogram(
            "pbgm_decision_latency_seconds",
            "Time to decide one call to the decisions endpoint, by kind (single or batch)",
            ["kind"],
        )
        self.batch_size = self.histogram(
            "pbgm_decision_batch_size", "Requests per batch call", buckets=BATCH_BUCKETS
        )
        self.policy_fetches = self.counter(
            "pbgm_policy_fetches",
            "Policy fetches by result (served, not_modified, not_found, bad_request)",
            ["result"],
        )
        self.authentication_failures = self.counter(
            "pbgm_authentication_failures", "Refused tokens and failed logins, by code", ["code"]
        )
        self.policy_revision = self.gauge(
            "pbgm_policy_revision", "The policy repository revision, read at each scrape"
        )
        self.worker_revision = self.gauge(
            "pbgm_policy_revision_worker",
            "The repository revision each worker last served a request with",
            mode="liveall",
        )
        self.worker_revision_set: int | None = None  # what `worker_revision` holds

        self.decision_log_depth = self.gauge(
            "pbgm_decision_log_queue", "Decision log calls waiting to be written", mode="livesum"
        )
        self.decision_log_batch = self.histogram(
            "pbgm_decision_log_batch",
            "Calls written to the decision log per transaction",
            buckets=BATCH_BUCKETS,
        )
        self.decision_log_written = self.counter(
            "pbgm_decision_log_written", "Decision log calls written"
        )
        self.decision_log_dropped = self.counter(
            "pbgm_decision_log_dropped",
            "Decision log calls dropped: the queue was full, or the store refused them",
        )

    def labelled(self, metric: T, *values: str) -> T:
        """`metric.labels(*values)`, remembered: requests update the same few series,
        and prometheus-client checks and converts the label values on every call."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*values)
            if len(self._children) < MAX_CHILDREN:
                self._children[key] = child
        return child

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        return ops.counter(name, documentation, labelnames, registry=self.registry)

    def gauge(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        mode: str = "livemax",
    ) -> Gauge:
        return ops.gauge(name, documentation, labelnames, mode=mode, registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] = ops.LATENCY_BUCKETS,
    ) -> Histogram:
        return ops.histogram(
            name, documentation, labelnames, buckets=buckets, registry=self.registry
        )

    def on_scrape(self, callback: Callable[[], None]) -> None:
        """Run `callback()` before each `/metrics` answer (to set gauges from state)."""
        self._hooks.append(callback)

    def collector(self, collector: Collector) -> None:
        """Add `collector`, read at each scrape by whichever worker answers it."""
        self.registry.register(collector)
        self._collectors.append(collector)

    def render(self) -> bytes:
        for hook in self._hooks:
            hook()
        return ops.exposition(self.registry, extra=self._collectors)
