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
the old topics are unsubscribed, the new ones subscribed and stale inputs dropped. An
`mqtt` source is read on its topics; a `rest` source (KIBERNet) is read through the
KIBERNet poller (`adapters.kibernet`), which reads the REST API under the source's
`data_access_policy` and publishes on the topics the source names (`topics` required,
typically `json.edgeflex` `{"node_3": 1.02, "created": ms}`). Another kind is refused
(the last good source stays).

Inputs: every sample passes one gate (`adapters.services._inputs.SampleGate`) before it
counts. Its time (`created` ms, or `time`/`timestamp`; required when the source's
`format` is `json.edgeflex`, else the arrival) must be at most `max_input_age_s` old
(default 10 s), at most `max_clock_skew_s` ahead (5 s) and later than the last sample
taken from that input (an older, replayed or repeated sample is refused). Its nodes
must be nodes of the feeder model (others are left out and counted, `unknown_nodes`;
a sample with none is refused); its values plausible under the operational limits
(`Plausible`): voltages within the band policy's `v_min_pu`-`v_max_pu` widened by
`plausible_margin_pu` (default 0.3 pu; before any band policy, the envelope widened
so), PV power from 0 to 1.5 times the rating of the generator at the node (else
10 MW). A refused sample is counted under its reason and changes nothing.

When the inputs in hand are older than `fallback.input_timeout_s` (by their own time),
or a step fails (the optimiser raises, an output cannot be encoded), `zero_setpoints`
publishes zero set-points once and `hold_last`/`stop` publish nothing until a good step.

Local config section `voltage`: `feeder` (`{v_nominal_v, lines: [[parent, child, r_ohm,
x_ohm], ...]}` or `{chain: {n, r_ohm, x_ohm}}`), `assets` (`{id: {node, kind: dg|ess,
curtailable}}`), `band_from`, `envelope_pu` (default `[0.85, 1.15]`, EN 50160 +10/-15 %),
`status_topic` (default `/voltage_control/status`; null: none), `margin_pu`,
`loop_period_s` (used until a `service_config` sets one), `max_input_age_s`,
`max_clock_skew_s`, `plausible_margin_pu`.

Reading the config, the policies and the inputs is in `adapters.services._voltage_config`;
its public names are re-exported here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters._rules import publish_topic
from adapters.services._inputs import TIMED_FORMATS, SampleGate, Taken, Timing
from adapters.services._runner import LoopService, PolicySink, number, section
from adapters.services._voltage_config import (
    DEFAULT_SOURCE,
    ENVELOPE_PU,
    OUTPUTS,
    PLAUSIBLE_MARGIN_PU,
    Asset,
    Plausible,
    Source,
    assets_from_config,
    envelope_from_config,
    feeder_from_config,
    input_section,
    node_readings,
    plausible_ranges,
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
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError, InvalidInputError

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
JSON = get_codec("json")  # refuses duplicate keys and non-finite numbers both ways


# --- the service -----------------------------------------------------------------------


class VoltageService(LoopService):
    """Runs the controller each period on the latest inputs; see the module docstring."""

    name = "voltage-control"
    COUNTERS = (
        *LoopService.COUNTERS, "config_applied", "config_refused", "stale", "unknown_nodes",
        "fallbacks",
    )  # fmt: skip

    def __init__(self, bus: Bus, config: Mapping[str, Any]) -> None:
        feeder = feeder_from_config(config.get("feeder"))
        self.model = feeder.sensitivities()
        self.nodes = frozenset(feeder.nodes)
        self.assets = assets_from_config(config.get("assets", {}))
        band_from = config.get("band_from")
        if not isinstance(band_from, str) or not band_from:
            raise ConfigurationError("`voltage.band_from` must name the band policy")
        self.band_from = band_from
        self.envelope = envelope_from_config(config.get("envelope_pu", ENVELOPE_PU))
        status_topic = config.get("status_topic", STATUS_TOPIC)
        self.status_topic = (
            None if status_topic is None else publish_topic(status_topic, "voltage.status_topic")
        )
        self.margin_pu = number(config, "margin_pu", 0.002, 0.0, 0.05)
        self.plausible_margin_pu = number(
            config, "plausible_margin_pu", PLAUSIBLE_MARGIN_PU, 0.0, 1.0
        )
        self.default_period = number(config, "loop_period_s", 0.5, 0.01, 3600)
        super().__init__(bus, self.default_period)
        self.controller: VoltageController | None = None
        self.source = DEFAULT_SOURCE
        self.gate = SampleGate(Timing.from_config(config), self.counters.bump)
        self.plausible = plausible_ranges({}, self.band_from, self.envelope)
        self._inputs: dict[str, Taken[dict[int, float]]] = {}
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

    def apply_limits(self, document: Mapping[str, Any]) -> None:
        """Take an `operational_limits` policy, then re-derive the plausible inputs from
        the limits in force (held samples now implausible are dropped)."""
        super().apply_limits(document)
        with self._policy_lock:
            policies = dict(self._policies)
        ranges = plausible_ranges(
            policies, self.band_from, self.envelope, self.assets, self.plausible_margin_pu
        )
        with self._lock:
            self.plausible = ranges
            for key, taken in list(self._inputs.items()):
                if not _within(taken.values, key, ranges):
                    del self._inputs[key]

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
                self.gate.forget()
        self.qos = source.qos
        self.ticker.period_s = source.period_s or self.default_period
        self.counters.bump("config_applied")
        if self._subscribed:
            self.resubscribe()
        via = (
            f" (REST, via data_access `{source.data_access_policy}`)"
            if source.kind == "rest"
            else ""
        )
        log.info("data source `%s`%s: %s", source.name, via, dict(source.topics))

    # -- bus -----------------------------------------------------------------------------

    def subscriptions(self) -> dict[str, Callable[[BusMessage], None]]:
        source = self.source
        return {topic: self._handler(key, source) for key, topic in source.topics.items()}

    def _handler(self, key: str, source: Source) -> Callable[[BusMessage], None]:
        """Keeps `key` inputs while the active source still names the topic they come from."""

        def handle(message: BusMessage) -> None:
            self.counters.bump("received")
            try:
                payload = JSON.decode(message.payload)
            except InvalidInputError as error:
                self.counters.bump("malformed")
                log.warning("malformed payload on `%s`: %s", message.topic, error.message)
                return
            with self._lock:
                if self.source.topics.get(key) != source.topics[key]:
                    return  # a message of a source no longer active
                ranges = self.plausible
                timed = source.format in TIMED_FORMATS
                taken = self.gate.admit(
                    key, payload, lambda: self._readings(key, payload, ranges),
                    timed=timed, where=message.topic,
                )  # fmt: skip
                if taken is not None:
                    self._inputs[key] = taken

        return handle

    def held_inputs(self) -> dict[str, Taken[dict[int, float]]]:
        """The inputs in force: per input key, the node values and their time."""
        with self._lock:
            return dict(self._inputs)

    def _readings(
        self, key: str, payload: Mapping[str, Any], ranges: Plausible
    ) -> dict[int, float]:
        values, unknown = node_readings(input_section(payload, key), key, self.nodes, ranges)
        if unknown:
            self.counters.bump("unknown_nodes", len(unknown))
            log.debug("nodes not in the feeder model left out: %s", unknown[:5])
        return values

    # -- the step ------------------------------------------------------------------------

    def step(self) -> bool:
        """One control step on the latest inputs; True when set-points were published.

        A step that fails is a failed step (`step_failed`: counted, logged, fallback)."""
        with self._policy_lock:  # limits and their revision read together
            controller, revision = self.controller, self.limits_revision
            limits = controller.limits if controller else None
        with self._lock:
            source, inputs = self.source, dict(self._inputs)
        if controller is None or limits is None or VOLTAGE_KEY not in inputs:
            return False
        if self._stale(inputs[VOLTAGE_KEY], source):
            self.counters.bump("stale")
            return self._fallback(controller, source)
        pv = inputs[PV_KEY].values if PV_KEY in inputs else {}
        voltages = inputs[VOLTAGE_KEY].values
        try:
            result = controller.step(VoltageMeasurements(voltages, pv), limits=limits)
            messages = {name: JSON.encode(body) for name, body in to_messages(result).items()}
        except Exception as error:
            self.step_failed(error)
            return False
        self._zeroed = False
        self._publish(messages, source)
        self._status(limits, revision, result, voltages)
        return True

    def missing_policies(self) -> list[str]:
        """The band policy, until limits are in force."""
        return [] if self.controller is not None else [self.band_from]

    def on_step_failure(self) -> None:
        """A failed step: the source's fallback, as for stale inputs."""
        controller = self.controller
        if controller is not None:
            self._fallback(controller, self.source)

    def _stale(self, taken: Taken[dict[int, float]], source: Source) -> bool:
        timeout = source.input_timeout_s
        return timeout is not None and self.gate.age(taken.t) > timeout

    def _fallback(self, controller: VoltageController, source: Source) -> bool:
        """`zero_setpoints`: zero set-points once; `hold_last`/`stop`: nothing."""
        if source.on_missing != "zero_setpoints" or self._zeroed:
            return False
        limits = controller.limits
        zeros = {
            "reactive_power": {f"node_{n}": 0.0 for n in limits.dg},
            "active_power_ESS": {f"node_{n}": 0.0 for n in limits.ess},
        }
        controller.reset()
        self._publish({k: JSON.encode({k: v}) for k, v in zeros.items() if v}, source)
        self._zeroed = True
        self.counters.bump("fallbacks")
        return True

    def _publish(self, messages: Mapping[str, bytes], source: Source) -> None:
        for variable, payload in messages.items():
            topic = source.outputs.get(variable)
            if topic:
                self.bus.publish(topic, payload, qos=1)
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
        self.bus.publish(self.status_topic, JSON.encode(status), qos=0)

    def state(self) -> Mapping[str, Any]:
        limits = self.controller.limits if self.controller else None
        band = [limits.v_min, limits.v_max] if limits else None
        return {"source": self.source.name, "band_pu": band, **self.counters.snapshot()}


def _within(values: Mapping[int, float], key: str, ranges: Plausible) -> bool:
    for node, value in values.items():
        low, high = ranges.v_pu if key == VOLTAGE_KEY else ranges.pv_range(node)
        if not low <= value <= high:
            return False
    return True


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> VoltageService:
    """The runner's factory: the `voltage` section of the service config."""
    return VoltageService(bus, section(config, "voltage"))
