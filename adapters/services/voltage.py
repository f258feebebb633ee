"""The voltage-control service: `controls.VoltageController` on the bus, driven by policies.

Inputs arrive on the topics of the active data source of the `service_config` policy
(default the edgeFLEX `/voltage_control/measuremnts/voltage` and `.../pv`, published
misspelling included), as `{"voltage_measurements": {"node_3": 1.04}}` and
`{"pv_input_measurements": {...}}`; a flat `{"node_3": 1.04, "created": ...}` object is
read too. Every loop period (`loop_period_s`, default 0.5 s) the controller steps on the
latest inputs and the set-points go out on the configured output topics as
`{"reactive_power": {...}}`, `{"active_power": {...}}`, `{"active_power_ESS": {...}}`,
followed by one status object on `status_topic` (limits in force, feasibility).

Limits come from `operational_limits` policies (sink `limits`), mapped by
`voltage_limits`: the band from the policy named by `band_from` (its `voltage`
section, the control targets when given, narrowed by per-node bands), the P/Q and
energy limits of each configured asset from the policy whose `asset_id` (or id) is
the asset's id, else from the band policy's `nodes.node_<n>`. An asset without limits
is not controlled. A mapping that is invalid or unsafe (band outside the `envelope_pu`,
nominal voltage or nodes not those of the feeder model) is refused: the last good
limits stay. New limits wake the loop, so the next step runs at once.

A new `service_config` (sink `service_config`) switches the data source while running:
the old topics are unsubscribed, the new ones subscribed and stale inputs dropped. Only
`mqtt` sources can be followed; another kind is refused (the last good source stays).
When inputs are older than `fallback.input_timeout_s`, `zero_setpoints` publishes zero
set-points once and `hold_last`/`stop` publish nothing until inputs return.

Local config section `voltage`: `feeder` (`{v_nominal_v, lines: [[parent, child, r_ohm,
x_ohm], ...]}` or `{chain: {n, r_ohm, x_ohm}}`), `assets` (`{id: {node, kind: dg|ess,
curtailable}}`), `band_from`, `envelope_pu` (default `[0.85, 1.15]`, EN 50160 +10/-15 %),
`status_topic` (default `/voltage_control/status`; null: none), `margin_pu`,
`loop_period_s` (used until a `service_config` sets one).

Reading the config, the policies and the inputs is in `adapters.services._voltage_config`;
its public names are re-exported here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters.services._runner import LoopService, PolicySink, number, section
from adapters.services._voltage_config import (
    DEFAULT_SOURCE,
    ENVELOPE_PU,
    OUTPUTS,
    Asset,
    Source,
    assets_from_config,
    feeder_from_config,
    read_inputs,
    refuse,
    source_from_config,
    voltage_band,
    voltage_limits,
)
from controls import (
    ControlError,
    VoltageController,
    VoltageLimits,
    VoltageMeasurements,
    VoltageSetpoints,
    to_messages,
)
from controls.voltage import PV_KEY, VOLTAGE_KEY
from pbgm.bus import Bus, BusMessage
from pbgm.errors import InvalidInputError

__all__ = [
    "DEFAULT_SOURCE",
    "ENVELOPE_PU",
    "OUTPUTS",
    "STATUS_TOPIC",
    "Asset",
    "Source",
    "VoltageService",
    "assets_from_config",
    "feeder_from_config",
    "make_service",
    "source_from_config",
    "voltage_band",
    "voltage_limits",
]

log = logging.getLogger(__name__)

STATUS_TOPIC = "/voltage_control/status"


# --- the service -----------------------------------------------------------------------


class VoltageService(LoopService):
    """Runs the controller each period on the latest inputs; see the module docstring."""

    name = "voltage-control"
    COUNTERS = (*LoopService.COUNTERS, "config_applied", "config_refused", "stale")

    def __init__(self, bus: Bus, config: Mapping[str, Any]) -> None:
        self.model = feeder_from_config(config.get("feeder")).sensitivities()
        self.assets = assets_from_config(config.get("assets", {}))
        self.band_from = str(config.get("band_from", ""))
        envelope = config.get("envelope_pu", ENVELOPE_PU)
        self.envelope = (float(envelope[0]), float(envelope[1]))
        self.status_topic = config.get("status_topic", STATUS_TOPIC)
        self.margin_pu = number(config, "margin_pu", 0.002, 0.0, 0.05)
        self.default_period = number(config, "loop_period_s", 0.5, 0.01, 3600)
        super().__init__(bus, self.default_period)
        self.controller: VoltageController | None = None
        self.source = DEFAULT_SOURCE
        self._inputs: dict[str, tuple[dict[int, float], float]] = {}
        self._lock = threading.Lock()
        self._zeroed = False

    # -- policies ------------------------------------------------------------------------

    def sinks(self) -> Mapping[str, PolicySink]:
        return {"limits": self.apply_limits, "service_config": self.apply_service_config}

    def build_limits(self, policies: Mapping[str, Mapping[str, Any]]) -> VoltageLimits:
        return voltage_limits(policies, self.assets, self.band_from, self.envelope)

    def install_limits(self, limits: VoltageLimits) -> None:
        try:
            if self.controller is None:
                self.controller = VoltageController(self.model, limits, margin_pu=self.margin_pu)
            else:
                self.controller.set_limits(limits)
        except ControlError as error:
            raise refuse(error.message) from None
        log.info("limits in force: band %.4f-%.4f pu", limits.v_min, limits.v_max)

    def apply_service_config(self, document: Mapping[str, Any]) -> None:
        """Take a `service_config` policy: switch source and outputs without a restart."""
        try:
            source = source_from_config(document["content"], self.name)
        except InvalidInputError:
            self.counters.bump("config_refused")
            raise
        with self._lock:
            old, self.source = self.source, source
            if old.topics != source.topics:
                self._inputs.clear()
        self.qos = source.qos
        self.ticker.period_s = source.period_s or self.default_period
        self.counters.bump("config_applied")
        if self._subscribed:
            self.resubscribe()
        log.info("data source `%s`: %s", source.name, dict(source.topics))

    # -- bus -----------------------------------------------------------------------------

    def subscriptions(self) -> dict[str, Callable[[BusMessage], None]]:
        source = self.source
        return {topic: self._handler(key, source) for key, topic in source.topics.items()}

    def _handler(self, key: str, source: Source) -> Callable[[BusMessage], None]:
        """Keeps `key` inputs while the active source still names the topic they come from."""

        def handle(message: BusMessage) -> None:
            self.counters.bump("received")
            try:
                values = read_inputs(message.payload, key)
            except InvalidInputError as error:
                self.counters.bump("malformed")
                log.warning("malformed payload on `%s`: %s", message.topic, error.message)
                return
            with self._lock:
                if self.source.topics.get(key) == source.topics[key]:
                    self._inputs[key] = (values, time.monotonic())

        return handle

    # -- the step ------------------------------------------------------------------------

    def step(self) -> bool:
        """One control step on the latest inputs; True when set-points were published."""
        with self._policy_lock:  # limits and their revision read together
            controller, revision = self.controller, self.limits_revision
            limits = controller.limits if controller else None
        with self._lock:
            source, inputs = self.source, dict(self._inputs)
        if controller is None or limits is None or VOLTAGE_KEY not in inputs:
            return False
        if _stale(inputs, source):
            return self._on_stale(controller, source)
        pv = inputs.get(PV_KEY, ({}, 0.0))[0]
        try:
            result = controller.step(VoltageMeasurements(inputs[VOLTAGE_KEY][0], pv), limits=limits)
        except ControlError as error:
            self.counters.bump("step_errors")
            log.warning("control step failed: %s", error.message)
            return False
        self._zeroed = False
        self._publish(to_messages(result), source)
        self._status(limits, revision, result, inputs[VOLTAGE_KEY][0])
        return True

    def _on_stale(self, controller: VoltageController, source: Source) -> bool:
        self.counters.bump("stale")
        if source.on_missing != "zero_setpoints" or self._zeroed:
            return False
        limits = controller.limits
        zeros = {
            "reactive_power": {f"node_{n}": 0.0 for n in limits.dg},
            "active_power_ESS": {f"node_{n}": 0.0 for n in limits.ess},
        }
        controller.reset()
        self._publish({k: {k: v} for k, v in zeros.items() if v}, source)
        self._zeroed = True
        return True

    def _publish(self, messages: Mapping[str, Any], source: Source) -> None:
        for variable, payload in messages.items():
            topic = source.outputs.get(variable)
            if topic:
                self.bus.publish(topic, json.dumps(payload).encode(), qos=1)
                self.counters.bump("published")
        self.counters.bump("steps")

    def _status(
        self, limits: VoltageLimits, revision: int, result: VoltageSetpoints, v: Mapping[int, float]
    ) -> None:
        if not self.status_topic:
            return
        status = {
            "created": round(time.time() * 1000),
            "step": self.counters["steps"],
            "limits": {"v_min_pu": limits.v_min, "v_max_pu": limits.v_max, "revision": revision},
            "source": self.source.name,
            "feasible": result.feasible,
            "v_max_measured_pu": max(v.values(), default=None),
        }
        self.bus.publish(self.status_topic, json.dumps(status).encode(), qos=0)

    def state(self) -> Mapping[str, Any]:
        limits = self.controller.limits if self.controller else None
        band = [limits.v_min, limits.v_max] if limits else None
        return {"source": self.source.name, "band_pu": band, **self.counters.snapshot()}


def _stale(inputs: Mapping[str, tuple[Any, float]], source: Source) -> bool:
    timeout = source.input_timeout_s
    return timeout is not None and time.monotonic() - inputs[VOLTAGE_KEY][1] > timeout


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> VoltageService:
    """The runner's factory: the `voltage` section of the service config."""
    return VoltageService(bus, section(config, "voltage"))
