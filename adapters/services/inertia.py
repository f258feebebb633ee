"""Inertia estimation as a grid service: started by the event service, answers on the bus.

The event service starts it through a `run_service` obligation (service name
`inertia-estimation`, e.g. the example policy `inertia-on-rocof`) with the window of
the triggering topic: samples with frequency (Hz) and active-power imbalance (MW,
generation minus load). `controls.inertia.InertiaEstimator` finds the RoCoF events in
that window and the service publishes, as JSON on its topic, the result for the
latest event at or before the trigger:

    {"status": "estimate", "service", "trigger", "topic", "t0", "h_s", "stderr_s",
     "h_low_s", "h_high_s", "rocof_hz_s", "delta_p_mw", "r2", "samples", "method"}

`h_low_s`-`h_high_s` is the estimator's 95 % interval (`null` for an unbounded side).
    {"status": "rejected", "service", "trigger", "topic", "t0", "reason", "message"}

`reason` is one of `controls.inertia`'s `REJECT_*` codes, or `no_event` when the
window holds no RoCoF event, `too_few_samples` when it holds too few samples with
both signals, `estimation_failed` when the estimator raised (extreme samples, say:
the service never raises), `non_finite_result` when the estimate is not a finite
number (nothing non-finite is published). Times are seconds since the epoch. The
last `MAX_RESULTS` outcomes are kept in `results`.

Run parameters (from the obligation, over the service's own settings): `f0_hz`,
`s_base_mw` or `s_base_mva`, `fit_window_ms`, `h_min_s`, `h_max_s`,
`rocof_threshold_hz_s`, `method` (`least_squares` or `swing`).

Registered for the event service as `inertia-estimation = adapters.services.inertia:
create_service` in the entry-point group `pbgm.services`, or named in its config
(`services: {inertia-estimation: {factory: adapters.services.inertia:create_service,
topic: ..., s_base_mw: ...}}`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from adapters._rules import publish_topic, qos_setting
from controls import ControlError
from controls.inertia import (
    METHODS,
    EventRejected,
    InertiaEstimate,
    InertiaEstimator,
    InertiaLimits,
    base_power,
    nominal_frequency,
)
from pbgm.bus import Bus
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.events import ServiceRun

log = logging.getLogger(__name__)

SERVICE_NAME = "inertia-estimation"
OUTPUT_TOPIC = "/pbgm/services/inertia-estimation"
LIMIT_FIELDS = frozenset(f.name for f in dataclasses.fields(InertiaLimits))
MAX_RESULTS = 100
JSON = get_codec("json")


class InertiaService:
    """Estimates H from a service run's window and publishes the outcome.

    Its settings are checked here, whether from `create_service`'s options or given in
    code: a bad topic or QoS would fail every publish, a bad `f0_hz`, `s_base_mw` or
    `limits` would reject every run (`invalid_parameters`).
    """

    def __init__(
        self,
        bus: Bus,
        *,
        topic: str = OUTPUT_TOPIC,
        s_base_mw: float | None = None,
        f0_hz: float = 50.0,
        limits: InertiaLimits | None = None,
        method: str = "least_squares",
        qos: int = 1,
    ) -> None:
        if method not in METHODS:
            raise ConfigurationError(f"inertia `method` must be one of {', '.join(METHODS)}")
        if limits is not None and not isinstance(limits, InertiaLimits):
            raise ConfigurationError("inertia `limits` must be an `InertiaLimits`")
        try:
            self.s_base_mw = None if s_base_mw is None else base_power(s_base_mw)
            self.f0_hz = nominal_frequency(f0_hz)
        except ControlError as error:
            raise ConfigurationError(f"inertia service: {error.message}") from None
        self.bus, self.method = bus, method
        self.topic = publish_topic(topic, f"{SERVICE_NAME}.topic")
        self.qos = qos_setting(qos, f"{SERVICE_NAME}.qos")
        self.limits = limits or InertiaLimits()
        self.results: deque[dict[str, Any]] = deque(maxlen=MAX_RESULTS)
        self._lock = threading.Lock()

    def __call__(self, run: ServiceRun) -> dict[str, Any]:
        """Estimate, publish and return the outcome of one run; never raises on data."""
        try:
            outcome = self._estimate(run)
        except (ControlError, ValueError, TypeError) as error:
            outcome = _rejected(run, run.t_event, "invalid_parameters", str(error))
        except Exception as error:  # an estimator that fails on extreme data
            log.warning("inertia estimation failed: %s: %s", type(error).__name__, error)
            outcome = _rejected(run, run.t_event, "estimation_failed", type(error).__name__)
        try:
            payload = JSON.encode(outcome)
        except InvalidInputError:
            outcome = _rejected(run, run.t_event, "non_finite_result", "not a finite estimate")
            payload = JSON.encode(outcome)
        self.bus.publish(self.topic, payload, qos=self.qos)
        with self._lock:
            self.results.append(outcome)
        return outcome

    def _estimate(self, run: ServiceRun) -> dict[str, Any]:
        parameters = run.parameters
        s_base = parameters.get("s_base_mw", parameters.get("s_base_mva", self.s_base_mw))
        if s_base is None:
            return _rejected(run, run.t_event, "invalid_parameters", "no system base power")
        method = str(parameters.get("method", self.method))
        estimator = InertiaEstimator(
            float(s_base), float(parameters.get("f0_hz", self.f0_hz)), self._limits(parameters)
        )
        points = [(s.t, s.frequency, s.power) for s in run.window]
        usable = [p for p in points if p[1] is not None and p[2] is not None]
        if len(usable) < max(estimator.limits.min_samples * 2, 10):
            return _rejected(run, run.t_event, "too_few_samples", "too few samples in the window")
        t, f, p = (np.array(column, dtype=float) for column in zip(*usable, strict=True))
        origin = float(t[0])  # fits on seconds since the window start, not since 1970
        results = estimator.run(t - origin, f, p, method=method)  # type: ignore[arg-type]
        chosen = _latest(results, run.t_event - origin)
        if chosen is None:
            return _rejected(run, run.t_event, "no_event", "no rocof event in the window")
        return _outcome(run, chosen, origin)

    def _limits(self, parameters: Mapping[str, Any]) -> InertiaLimits:
        changes = {k: v for k, v in parameters.items() if k in LIMIT_FIELDS}
        if "fit_window_ms" in parameters:
            changes["fit_window_s"] = float(parameters["fit_window_ms"]) / 1000
        return dataclasses.replace(self.limits, **changes) if changes else self.limits


def _latest(
    results: list[InertiaEstimate | EventRejected], t_event: float
) -> InertiaEstimate | EventRejected | None:
    before = [r for r in results if r.t0 <= t_event + 1e-9]
    return before[-1] if before else (results[0] if results else None)


def _base(run: ServiceRun) -> dict[str, Any]:
    return {"service": run.service, "trigger": run.trigger, "topic": run.topic}


def _rejected(run: ServiceRun, t0: float, reason: str, message: str) -> dict[str, Any]:
    return {"status": "rejected", **_base(run), "t0": t0, "reason": reason, "message": message}


def _outcome(
    run: ServiceRun, result: InertiaEstimate | EventRejected, origin: float
) -> dict[str, Any]:
    if isinstance(result, EventRejected):
        return _rejected(run, result.t0 + origin, result.reason, result.message)
    return {
        "status": "estimate",
        **_base(run),
        "t0": result.t0 + origin,
        "h_s": result.h_s,
        "stderr_s": result.stderr_s,
        "h_low_s": _bound(result.h_low_s),
        "h_high_s": _bound(result.h_high_s),
        "rocof_hz_s": result.rocof_hz_s,
        "delta_p_mw": result.delta_p_mw,
        "r2": result.r2,
        "samples": result.samples,
        "method": result.method,
    }


def _bound(value: float) -> float | None:
    """An interval end for JSON: an infinite (unbounded) one is null."""
    return value if math.isfinite(value) else None


def create_service(bus: Bus, options: Mapping[str, Any]) -> InertiaService:
    """The `pbgm.services` factory: options `topic`, `s_base_mw`, `f0_hz`, `method`,
    `qos` and `limits` (fields of `controls.inertia.InertiaLimits`)."""
    known = {"topic", "s_base_mw", "f0_hz", "method", "qos", "limits"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(f"unknown inertia service option `{unknown[0]}`")
    limits = options.get("limits") or {}
    if not isinstance(limits, Mapping):
        raise ConfigurationError("inertia `limits` must map limit names to values")
    bad = sorted(set(limits) - LIMIT_FIELDS)
    if bad:
        raise ConfigurationError(f"unknown inertia limit `{bad[0]}`")
    try:
        return InertiaService(
            bus,
            topic=options.get("topic", OUTPUT_TOPIC),
            s_base_mw=options.get("s_base_mw"),
            f0_hz=options.get("f0_hz", 50.0),
            limits=InertiaLimits(**limits),
            method=str(options.get("method", "least_squares")),
            qos=options.get("qos", 1),
        )
    except ControlError as error:
        raise ConfigurationError(f"inertia service: {error}") from None
