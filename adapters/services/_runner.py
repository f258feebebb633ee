"""Plumbing shared by the control services: config file, bus, policies, signals, run loop.

A service runs from one config file (JSON or YAML) with these sections:

================  =========================================================================
`bus`             how to reach the bus: `{kind: mqtt, host, port, ...}` (`adapters.mqtt`;
                  `kind: mqtt` without a `factory` uses `adapters.mqtt:open_mqtt_bus`, so no
                  installed entry point is needed) or `{kind: memory}`
`loader`          the policy loader's config (`pbgm.loader`); its policies name the sinks the
                  service offers (`limits`, `service_config`)
`policy_files`    `{sink: [path, ...]}`: policy documents read at start, before the loader
                  delivers (offline runs and tests); paths are relative to the config file
`log_level`       `debug`, `info` (default), `warning`, `error` (any case)
`log_format`      `text` (default) or `json`
`require_policies` true: refuse to start (`no_policies`, exit 9) while the policies the
                  service needs are missing after the policy files and a first fetch;
                  false (default): start, and say so as an error in the log
`<service>`       the service's own section (`voltage`, `frequency`, `pmu`)
================  =========================================================================

`run_service` wires it all, blocks until SIGTERM or SIGINT, then unsubscribes, stops
the loader, closes the bus, logs the final state (one JSON line, with every counter of
the service and, prefixed `bus_`, of its bus) and returns 0. A policy a sink refuses is
logged and counted by the service; the last good one stays in force.

A control service never dies on input: every sample passes the service's
`adapters.services._inputs.SampleGate` before it counts, and any failure of a step (an
optimiser that raises, an output that cannot be encoded) is a failed step: counted
(`step_errors`), logged at most every ten seconds, and the service's fallback run
(`on_step_failure`); the loop goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from adapters.services._inputs import REASONS, WARN_EVERY_S
from pbgm.bus import Bus, BusMessage, open_bus
from pbgm.errors import ConfigurationError, InvalidInputError, PbgmError
from pbgm.policy import load_file

log = logging.getLogger("adapters.services")

MQTT_FACTORY = "adapters.mqtt:open_mqtt_bus"

PolicySink = Callable[[Mapping[str, Any]], None]
"""Takes one policy document (`pbgm/v1`, with `content`); raises to refuse it."""


class Service(Protocol):
    """What `run_service` drives; `stop` may be called from any thread (or a signal)."""

    name: str

    def sinks(self) -> Mapping[str, PolicySink]: ...

    def start(self) -> None: ...

    def run(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def state(self) -> Mapping[str, Any]: ...

    def missing_policies(self) -> list[str]:
        """The policies the service waits for before it can act (none: it can)."""
        ...

    def stats(self) -> dict[str, int]:
        """Named integer counters (drops included), for logs and a metrics exporter."""
        ...


class Counters:
    """Named event counters, safe to bump from the bus and the loop threads."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(names, 0)

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + by

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class Ticker:
    """A loop period that can be cut short: `wait` returns early after `wake`."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._wake = threading.Event()
        self._next = time.monotonic()

    def wake(self) -> None:
        self._wake.set()

    def wait(self) -> bool:
        """Sleep until the next tick or a wake-up; True when woken early."""
        woke = self._wake.wait(max(0.0, self._next - time.monotonic()))
        self._wake.clear()
        self._next = time.monotonic() + self.period_s
        return woke


class LoopService:
    """Base of the control services: limits from policies, subscriptions, a periodic step.

    `stats()` is the service's counters as one mapping of names to integers (with the
    bus's, prefixed `bus_`): what a metrics exporter reads.

    Subclasses give `name`, `build_limits(policies)` (contents by policy id -> limits,
    raising `InvalidInputError`; code `limits_incomplete` means "not all there yet"),
    `install_limits(limits)`, `subscriptions()` (topic filter -> handler) and `step()`.
    New limits wake the loop, so the next step runs at once rather than a period later.
    """

    name = "service"
    COUNTERS: tuple[str, ...] = ("received", "malformed", "steps", "published")
    COUNTERS += ("limits_applied", "limits_refused", "step_errors", *REASONS)

    def __init__(self, bus: Bus, period_s: float) -> None:
        self.bus = bus
        self.counters = Counters(*self.COUNTERS)
        self.ticker = Ticker(period_s)
        self.limits_revision = 0
        self.qos = 1
        self._policies: dict[str, Mapping[str, Any]] = {}
        self._policy_lock = threading.Lock()
        self._subscribe_lock = threading.Lock()
        self._subscribed: set[str] = set()
        self._stopped = threading.Event()
        self._quiet_until = 0.0

    # -- what subclasses provide ---------------------------------------------------------

    def build_limits(self, policies: Mapping[str, Mapping[str, Any]]) -> Any:
        raise NotImplementedError

    def install_limits(self, limits: Any) -> None:
        raise NotImplementedError

    def subscriptions(self) -> Mapping[str, Callable[[BusMessage], None]]:
        raise NotImplementedError

    def step(self) -> bool:
        raise NotImplementedError

    # -- policies ------------------------------------------------------------------------

    def apply_limits(self, document: Mapping[str, Any]) -> None:
        """Take an `operational_limits` policy; a refused one keeps the last good limits."""
        policy_id = str(document.get("id") or document.get("asset_id") or "")
        content = {"asset_id": document.get("asset_id"), **document["content"]}
        with self._policy_lock:
            candidate = {**self._policies, policy_id: content}
            try:
                self.install_limits(self.build_limits(candidate))
            except InvalidInputError as error:
                if error.code == "limits_incomplete":  # kept until the rest arrives
                    self._policies = candidate
                    return
                self.counters.bump("limits_refused")
                raise
            self._policies = candidate
            self.limits_revision += 1
        self.counters.bump("limits_applied")
        self.ticker.wake()

    # -- bus and loop --------------------------------------------------------------------

    def start(self) -> None:
        self.resubscribe()

    def resubscribe(self) -> None:
        """Subscribe what `subscriptions()` names now; drop what it no longer names."""
        with self._subscribe_lock:
            wanted = dict(self.subscriptions())
            for topic in self._subscribed - set(wanted):
                self.bus.unsubscribe(topic)
            for topic, handler in wanted.items():
                self.bus.subscribe(topic, handler, qos=self.qos)
            self._subscribed = set(wanted)

    def run(self) -> None:
        """Step every period (or at once after new limits) until `stop`."""
        while not self._stopped.is_set():
            self.ticker.wait()
            if not self._stopped.is_set():
                self.safe_step()

    def safe_step(self) -> bool:
        """`step`, with any failure taken as a failed step (`step_failed`); never raises."""
        try:
            return self.step()
        except Exception as error:
            self.step_failed(error)
            return False

    def step_failed(self, error: BaseException) -> None:
        """Count and log a failed step, then run the service's fallback."""
        self.counters.bump("step_errors")
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + WARN_EVERY_S
            log.warning(
                "%s: control step failed (%s: %s); fallback applied, more failures within "
                "%g s are counted, not logged",
                self.name, type(error).__name__, error, WARN_EVERY_S,
                exc_info=not isinstance(error, PbgmError),
            )  # fmt: skip
        try:
            self.on_step_failure()
        except Exception:
            log.exception("%s: the fallback after a failed step failed too", self.name)

    def on_step_failure(self) -> None:
        """What a failed step leaves behind; by default nothing is published."""

    def missing_policies(self) -> list[str]:
        """The policies the service waits for before it can act (subclasses say which)."""
        return []

    def stats(self) -> dict[str, int]:
        """Every counter of the service and, prefixed `bus_`, of its bus."""
        out = self.counters.snapshot()
        bus_stats = getattr(self.bus, "stats", None)
        if callable(bus_stats):
            out.update({f"bus_{k}": int(v) for k, v in bus_stats().items()})
        return out

    def stop(self) -> None:
        self._stopped.set()
        self.ticker.wake()

    def close(self) -> None:
        """Unsubscribe everything (the bus itself is closed by the runner)."""
        with self._subscribe_lock:
            for topic in self._subscribed:
                self.bus.unsubscribe(topic)
            self._subscribed = set()


# --- configuration ---------------------------------------------------------------------


def load_config(path: str | Path) -> dict[str, Any]:
    """The service config file as a mapping; any problem is a `ConfigurationError`."""
    try:
        data = load_file(path)
    except PbgmError as error:
        raise ConfigurationError(f"service config `{path}`: {error.message}") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"service config `{path}` must be a mapping")
    return dict(data)


def section(config: Mapping[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    """`config[name]` as a mapping (empty when optional and absent)."""
    value = config.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"the service config needs a `{name}` mapping")
    return dict(value)


def number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """A number setting within [low, high]."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"`{key}` must be a number from {low} to {high}, not `{value}`")
    return float(value)


def open_service_bus(config: Mapping[str, Any]) -> Bus:
    """`pbgm.bus.open_bus`, with `kind: mqtt` defaulting to the adapters' MQTT factory."""
    bus_config = dict(config)
    if bus_config.get("kind") == "mqtt" and "factory" not in bus_config:
        bus_config["factory"] = MQTT_FACTORY
    return open_bus(bus_config)


def configure_logging(level: Any, fmt: Any = None) -> None:
    """`log_level` (any case) and `log_format` (`text` or `json`) of the config file,
    else `$PBGM_LOG_LEVEL` and `$PBGM_LOG_FORMAT` (`pbgm.ops.logs`)."""
    from pbgm.ops import logs

    name = str(level or os.environ.get("PBGM_LOG_LEVEL") or "info").lower()
    form = str(fmt or os.environ.get("PBGM_LOG_FORMAT") or "text").lower()
    if name not in ("debug", "info", "warning", "error"):
        raise ConfigurationError(f"`log_level` must be debug, info, warning or error: `{level}`")
    if form not in ("text", "json"):
        raise ConfigurationError(f"`log_format` must be text or json: `{fmt}`")
    logs.configure_logging(name, form)


# --- policies --------------------------------------------------------------------------


def refuse(message: str, code: str = "invalid_limits") -> InvalidInputError:
    """The error `build_limits` raises to refuse limits: the service keeps the last good ones."""
    return InvalidInputError(message, code=code)


def find_policy(policies: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """Of the contents `build_limits` gets, the one of policy `name`, or whose asset id is it."""
    if name in policies:
        return policies[name]
    return next((c for c in policies.values() if c.get("asset_id") == name), None)


def deliver_policy(service: Service, sink: str, document: Any) -> bool:
    """Hand one policy document to a sink; a refusal is logged, never raised."""
    target = service.sinks().get(sink)
    if target is None:
        log.warning("%s: no sink `%s`; policy ignored", service.name, sink)
        return False
    if isinstance(document, Mapping) and isinstance(document.get("content"), Mapping):
        try:
            target(document)
            return True
        except PbgmError as error:
            log.warning("%s: policy `%s` refused: %s", service.name, _id(document), error.message)
            return False
    log.warning("%s: a policy without `content` was ignored", service.name)
    return False


def _id(document: Mapping[str, Any]) -> str:
    return str(document.get("id", "?"))


def feed_policy_files(service: Service, files: Any, base: Path) -> None:
    """`policy_files: {sink: [path, ...]}`: read each file and hand it to its sink."""
    if not files:
        return
    if not isinstance(files, Mapping):
        raise ConfigurationError("`policy_files` must map sink names to lists of paths")
    for sink, paths in files.items():
        for path in [paths] if isinstance(paths, str) else list(paths):
            try:
                document = load_file(base / path)
            except PbgmError as error:
                raise ConfigurationError(f"policy file `{path}`: {error.message}") from None
            deliver_policy(service, str(sink), document)


def start_loader(config: Any, service: Service, bus: Bus, base: Path) -> Any:
    """A started `pbgm.loader.PolicyLoader` whose callbacks feed the service, or None.

    The loader's `deliver_to` names the service's sinks (`limits`, `service_config`).
    A policy the service refuses is logged and counted by the service and not handed
    back to the loader as a failure: the loader would retry the same content forever.
    """
    if not config:
        return None
    from pbgm.loader import PolicyLoader, parse_config  # only needed when configured

    def sink(name: str) -> Callable[[Any], None]:
        def take(loaded: Any) -> None:
            deliver_policy(service, name, loaded.document)

        return take

    parsed = parse_config(config, base_dir=base, source="the `loader` section")
    loader = PolicyLoader(parsed, sinks={name: sink(name) for name in service.sinks()}, bus=bus)
    loader.start()
    return loader


# --- running ---------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` on SIGTERM or SIGINT (main thread only); restore the handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received, stopping", signal.Signals(signum).name)
        stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_service(
    make: Callable[[Mapping[str, Any], Bus, Path], Service],
    config_path: str | Path,
    *,
    metrics: tuple[int, str] | None = None,
) -> int:
    """Run one service from its config file until SIGTERM/SIGINT; returns the exit status 0.

    `metrics` (port, host) serves `/metrics`, `/healthz` and `/readyz` there
    (`pbgm.ops.endpoint`).
    """
    path = Path(config_path)
    config = load_config(path)
    configure_logging(config.get("log_level"), config.get("log_format"))
    bus = open_service_bus(section(config, "bus", required=False) or {"kind": "memory"})
    loader = service = endpoint = None
    try:
        service = make(config, bus, path.parent)
        endpoint = _endpoint(metrics, service, bus)
        feed_policy_files(service, config.get("policy_files"), path.parent)
        with stop_on_signals(service.stop):
            loader = start_loader(config.get("loader"), service, bus, path.parent)
            check_policies(service, loader, require=config.get("require_policies", False))
            service.start()
            log.info("%s running", service.name)
            service.run()
    finally:
        if endpoint is not None:
            endpoint.close()
        _shut_down(service, loader, bus)
    return 0


def _endpoint(metrics: tuple[int, str] | None, service: Service, bus: Bus) -> Any:
    """The service's metrics and health endpoint, when a port is given."""
    if metrics is None:
        return None
    from pbgm.ops.endpoint import bus_counters, bus_ready, numbers, start_endpoint

    port, host = metrics
    return start_endpoint(
        port,
        service.name,
        counters=lambda: {**numbers(service.state()), **bus_counters(bus)},
        gauges=lambda: {"policy_revision": _policy_revision(service)},
        ready=lambda: bus_ready(bus),
        host=host,
    )


def _policy_revision(service: Service) -> float:
    """The relay's policy revision, a control service's count of limits applied."""
    return float(getattr(service, "policy_revision", getattr(service, "limits_revision", 0)))


def check_policies(service: Service, loader: Any, *, require: Any = False) -> None:
    """Say loudly when the service starts without the policies it needs to act (it
    would then do nothing); with `require`, refuse to start (`no_policies`). A loader
    is given one fetch first when it is required."""
    if not isinstance(require, bool):
        raise ConfigurationError("`require_policies` must be true or false")
    if require and loader is not None:
        loader.refresh_now()
    missing = service.missing_policies()
    if not missing:
        return
    shown = ", ".join(f"`{name}`" for name in missing)
    where = "" if loader is not None else " (no `loader` is configured)"
    message = (
        f"{service.name}: no policy for {shown} yet{where}; the service does not act "
        "until it arrives"
    )
    if require:
        raise ConfigurationError(message, code="no_policies")
    log.error(message)


def _shut_down(service: Service | None, loader: Any, bus: Bus) -> None:
    """Unsubscribe, stop the loader, close the bus; log the final state."""
    if loader is not None:
        with contextlib.suppress(Exception):
            loader.stop()
    if service is not None:
        service.close()
    bus_stats = getattr(bus, "stats", None)
    counters = bus_stats() if callable(bus_stats) else {}
    bus.close()
    if service is not None:
        state = {**service.state(), **{f"bus_{k}": v for k, v in counters.items()}}
        final = json.dumps(state, sort_keys=True, default=str)
        log.info("%s stopped, final state: %s", service.name, final)
