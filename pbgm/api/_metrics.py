"""Prometheus metrics of one app, in its own `CollectorRegistry` (no global state).

With several gunicorn workers each worker counts its own requests; scrape each
worker, or aggregate behind the proxy (prometheus-client's multiprocess mode
needs process-wide environment set-up, which an app factory must not do).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class Metrics:
    """The counters and histograms the API updates."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "pbgm_decisions",
            "Decisions served by the API, by result",
            ["decision"],
            registry=self.registry,
        )
        self.decision_latency = Histogram(
            "pbgm_decision_latency_seconds",
            "Time to decide one call to the decisions endpoint (single or batch)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.policy_fetches = Counter(
            "pbgm_policy_fetches",
            "Policy fetches by result (served, not_modified, not_found, bad_request)",
            ["result"],
            registry=self.registry,
        )
        self.authentication_failures = Counter(
            "pbgm_authentication_failures",
            "Refused tokens and failed logins, by error code",
            ["code"],
            registry=self.registry,
        )
        self.requests = Counter(
            "pbgm_http_requests",
            "Answered requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )

        self.decision_log_depth = Gauge(
            "pbgm_decision_log_queue",
            "Decision log calls waiting to be written",
            registry=self.registry,
        )
        self.decision_log_batch = Histogram(
            "pbgm_decision_log_batch",
            "Calls written to the decision log per transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.decision_log_written = Counter(
            "pbgm_decision_log_written",
            "Decision log calls written",
            registry=self.registry,
        )
        self.decision_log_dropped = Counter(
            "pbgm_decision_log_dropped",
            "Decision log calls dropped: the queue was full, or the store refused them",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
