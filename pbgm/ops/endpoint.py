"""`/metrics`, `/healthz` and `/readyz` of a long-running service, on a port of its own.

The event service, the policy loader and the control services run for months
without an HTTP server of their own; `--metrics-port PORT` gives each this
endpoint (prometheus-client's WSGI app and threading server, as its
`start_http_server` uses, with two more paths)::

    endpoint = ServiceEndpoint("voltage", counters=service_counters, ready=is_ready)
    endpoint.start(9311)          # 127.0.0.1 unless told otherwise
    ...
    endpoint.close()

It reads what the service already keeps, at scrape time, through two callables:

- `counters()`: the service's counter snapshot (`{"received": 10, "dropped_inbound": 0,
  ...}`), exported as `pbgm_service_events_total{service, event}`; the names in
  `GAUGE_NAMES` (`connected`, `queued`, ...) are states, not totals, and become
  `pbgm_service_<name>{service}` instead;
- `gauges()` (optional): current values such as `policy_revision` (the last policy
  revision the service applied) or `policy_age_seconds`, each exported as
  `pbgm_service_<name>{service}`.

The endpoint adds `pbgm_service_up{service}` (1), `pbgm_service_ready{service}`
(0 or 1), `pbgm_build_info`, the process metrics, and
`pbgm_service_staleness_seconds{service}`: seconds since the `received` counter
last grew (observed at each scrape or readiness check; since the start while
nothing arrived). `/healthz` answers 200 while the process runs; `/readyz` 200
when `ready()` is true, else 503 — with a JSON body in both cases.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from pbgm.ops.metrics import build_info

log = logging.getLogger(__name__)

GAUGE_NAMES = frozenset(
    {"connected", "queued", "inbound_queued", "topics", "services_running", "policies"}
)
"""Snapshot keys that are states rather than totals."""

RECEIVED = "received"
BUS_PREFIX = "bus_"
_METRIC_NAME = re.compile(r"[a-z_][a-z0-9_]*")

Values = Callable[[], Mapping[str, float]]
StartResponse = Callable[..., Any]


class _Quiet(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ServiceCollector(Collector):
    """The service's counters and gauges, read at each scrape (module docstring)."""

    def __init__(self, service: str, counters: Values, gauges: Values | None) -> None:
        self.service = service
        self.counters = counters
        self.gauges = gauges
        self._lock = threading.Lock()
        self._received: float | None = None
        self._changed = time.monotonic()

    def staleness(self, snapshot: Mapping[str, float]) -> float:
        """Seconds since `received` last grew, as observed by the calls of this method."""
        now, received = time.monotonic(), snapshot.get(RECEIVED)
        with self._lock:
            if received is not None and received != self._received:
                self._received, self._changed = received, now
            return now - self._changed

    def collect(self) -> Iterator[Any]:
        snapshot = dict(self.counters())
        events = CounterMetricFamily(
            "pbgm_service_events",
            "Events counted by the service, by name",
            labels=["service", "event"],
        )
        states: dict[str, float] = {"staleness_seconds": self.staleness(snapshot)}
        for name, value in sorted(snapshot.items()):
            if name.removeprefix(BUS_PREFIX) in GAUGE_NAMES:
                states[name] = value
            else:
                events.add_metric([self.service, name], float(value))
        yield events
        states.update(self.gauges() if self.gauges is not None else {})
        for name, value in sorted(states.items()):
            if _METRIC_NAME.fullmatch(name) and value is not None:
                family = GaugeMetricFamily(
                    f"pbgm_service_{name}", f"The service's `{name}`", labels=["service"]
                )
                family.add_metric([self.service], float(value))
                yield family


class ServiceEndpoint:
    """The HTTP endpoint of one service (module docstring)."""

    def __init__(
        self,
        service: str,
        *,
        counters: Values,
        ready: Callable[[], bool],
        gauges: Values | None = None,
        version: str | None = None,
    ) -> None:
        self.service = service
        self.ready = ready
        self.registry = CollectorRegistry()
        self.collector = ServiceCollector(service, counters, gauges)
        self.registry.register(self.collector)
        self.registry.register(_Constant(service, self))
        ProcessCollector(registry=self.registry)
        build_info(version or _version(), registry=self.registry)
        self._metrics = make_wsgi_app(self.registry)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return int(self._server.server_address[1])

    def is_ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:  # a readiness check that fails says "not ready", never crashes
            log.exception("the readiness check of `%s` failed", self.service)
            return False

    def start(self, port: int, host: str = "127.0.0.1") -> ServiceEndpoint:
        """Serve on `host:port` (port 0: any free port, see `port`) in a daemon thread."""
        self._server = make_server(host, port, self, ThreadingWSGIServer, handler_class=_Quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"metrics-{self.service}", daemon=True
        )
        self._thread.start()
        log.info("metrics and health of `%s` on http://%s:%d", self.service, host, self.port)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, 200, {"status": "ok", "service": self.service})
        if path == "/readyz":
            ready = self.is_ready()
            self.collector.staleness(dict(self.collector.counters()))
            body = {"status": "ready" if ready else "not ready", "service": self.service}
            return _json(start_response, 200 if ready else 503, body)
        if path == "/metrics":
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        return _json(start_response, 404, {"status": "not found"})


class _Constant(Collector):
    def __init__(self, service: str, endpoint: ServiceEndpoint) -> None:
        self.service, self.endpoint = service, endpoint

    def collect(self) -> Iterator[Any]:
        for name, value in (("up", 1.0), ("ready", float(self.endpoint.is_ready()))):
            family = GaugeMetricFamily(
                f"pbgm_service_{name}", f"Service {name}", labels=["service"]
            )
            family.add_metric([self.service], value)
            yield family


def _json(start_response: StartResponse, status: int, body: Mapping[str, Any]) -> list[bytes]:
    phrase = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    data = json.dumps(body).encode()
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
    )
    return [data]


def _version() -> str:
    from pbgm import __version__

    return __version__


def start_endpoint(
    port: int | None,
    service: str,
    *,
    counters: Values,
    ready: Callable[[], bool],
    gauges: Values | None = None,
    host: str = "127.0.0.1",
) -> ServiceEndpoint | None:
    """A started endpoint on `port`, or None when no port is given (what the
    `--metrics-port` options of the service commands call)."""
    if port is None:
        return None
    endpoint = ServiceEndpoint(service, counters=counters, ready=ready, gauges=gauges)
    return endpoint.start(port, host)


def bus_counters(bus: object) -> dict[str, float]:
    """The counters of a bus that keeps some (`MqttBus.stats()`), each name prefixed
    `bus_` (`bus_received`, `bus_dropped_inbound`, `bus_connected`, ...)."""
    stats = getattr(bus, "stats", None)
    if stats is None:
        return {}
    return {f"{BUS_PREFIX}{name}": value for name, value in stats().items()}


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a state mapping (booleans and texts left out)."""
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def bus_ready(bus: object) -> bool:
    """Connected, for a bus that says (`connected`); any other bus is taken as ready."""
    return bool(getattr(bus, "connected", True))
