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
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.services._runner import LoopService, PolicySink, number, section
from controls import (
    ControlError,
    DgLimits,
    EssLimits,
    Line,
    RadialFeeder,
    VoltageController,
    VoltageLimits,
    VoltageMeasurements,
    VoltageSetpoints,
    chain_feeder,
    from_message,
    to_messages,
)
from controls.voltage import DEFAULT_TOPICS, PV_KEY, VOLTAGE_KEY
from pbgm.bus import Bus, BusMessage
from pbgm.errors import ConfigurationError, InvalidInputError

log = logging.getLogger(__name__)

ENVELOPE_PU = (0.85, 1.15)
STATUS_TOPIC = "/voltage_control/status"
OUTPUTS = ("reactive_power", "active_power", "active_power_ESS")


def _refuse(message: str, code: str = "invalid_limits") -> InvalidInputError:
    return InvalidInputError(message, code=code)


# --- the local configuration -----------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    """A controllable asset of the feeder: a generator (`dg`) or a storage (`ess`)."""

    id: str
    node: int
    kind: str
    curtailable: bool = False


def feeder_from_config(data: Any) -> RadialFeeder:
    """`{v_nominal_v, lines: [[parent, child, r_ohm, x_ohm], ...]}` or `{chain: {...}}`."""
    if not isinstance(data, Mapping):
        raise ConfigurationError("`voltage.feeder` must be a mapping")
    try:
        if "chain" in data:
            return chain_feeder(**data["chain"], v_nominal_v=data.get("v_nominal_v", 400.0))
        lines = tuple(Line(int(p), int(c), float(r), float(x)) for p, c, r, x in data["lines"])
        return RadialFeeder(lines, float(data.get("v_nominal_v", 400.0)))
    except ControlError as error:
        raise ConfigurationError(f"`voltage.feeder`: {error.message}") from None
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError(
            "`voltage.feeder` needs `lines: [[parent, child, r_ohm, x_ohm], ...]` or `chain`"
        ) from None


def assets_from_config(data: Any) -> tuple[Asset, ...]:
    if not isinstance(data, Mapping):
        raise ConfigurationError("`voltage.assets` must map asset ids to `{node, kind}`")
    assets = []
    for asset_id, spec in data.items():
        kind = spec.get("kind") if isinstance(spec, Mapping) else None
        node = spec.get("node") if isinstance(spec, Mapping) else None
        if kind not in ("dg", "ess") or not isinstance(node, int) or isinstance(node, bool):
            raise ConfigurationError(f"asset `{asset_id}` needs an integer `node`, `kind` dg|ess")
        assets.append(Asset(str(asset_id), node, kind, bool(spec.get("curtailable", False))))
    return tuple(assets)


# --- policies -> controller limits -----------------------------------------------------


def _find(policies: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The content of the policy with this id, or whose asset id is `name`."""
    if name in policies:
        return policies[name]
    return next((c for c in policies.values() if c.get("asset_id") == name), None)


def voltage_band(content: Mapping[str, Any]) -> tuple[float, float, float]:
    """(v_min, v_max, v_nominal_v): the control targets if given, narrowed by node bands."""
    voltage = content.get("voltage")
    if not isinstance(voltage, Mapping):
        raise _refuse("the band policy has no `voltage` section")
    v_min = max(voltage["v_min_pu"], voltage.get("v_target_min_pu", 0.0))
    v_max = min(voltage["v_max_pu"], voltage.get("v_target_max_pu", math.inf))
    for node in (content.get("nodes") or {}).values():
        v_min = max(v_min, node.get("v_min_pu", v_min))
        v_max = min(v_max, node.get("v_max_pu", v_max))
    return float(v_min), float(v_max), float(voltage["v_nominal_v"])


def _asset_limits(
    asset: Asset, own: Mapping[str, Any] | None, node: Mapping[str, Any] | None
) -> DgLimits | EssLimits | None:
    power = (own or {}).get("power") or node
    if not power:
        return None
    if asset.kind == "dg":
        return DgLimits(
            power.get("q_min_kvar", 0.0),
            power.get("q_max_kvar", 0.0),
            power.get("p_max_kw", math.inf),
            asset.curtailable,
        )
    if "p_min_kw" not in power or "p_max_kw" not in power:
        raise _refuse(f"storage `{asset.id}` needs `p_min_kw` and `p_max_kw`")
    energy = (own or {}).get("energy") or {}
    return EssLimits(
        power["p_min_kw"],
        power["p_max_kw"],
        energy.get("capacity_kwh"),
        energy.get("soc_min_pct", 0.0) / 100,
        energy.get("soc_max_pct", 100.0) / 100,
    )


def voltage_limits(
    policies: Mapping[str, Mapping[str, Any]],
    assets: tuple[Asset, ...],
    band_from: str,
    envelope: tuple[float, float] = ENVELOPE_PU,
) -> VoltageLimits:
    """Map `operational_limits` contents (by policy id) to the controller's limits.

    Raises `InvalidInputError`: code `limits_incomplete` while the band policy is
    missing, `invalid_limits` when the band leaves the envelope or the contents do not
    make valid limits.
    """
    band = _find(policies, band_from)
    if band is None:
        raise _refuse(f"no limits policy for `{band_from}` yet", "limits_incomplete")
    try:
        return _map(policies, band, assets, envelope)
    except ControlError as error:
        raise _refuse(error.message) from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _refuse(f"limits policy content cannot be read: `{error}`") from None


def _map(
    policies: Mapping[str, Mapping[str, Any]],
    band: Mapping[str, Any],
    assets: tuple[Asset, ...],
    envelope: tuple[float, float],
) -> VoltageLimits:
    v_min, v_max, v_nominal = voltage_band(band)
    if not envelope[0] <= v_min < v_max <= envelope[1]:
        raise _refuse(
            f"voltage band `{v_min}`-`{v_max}` pu is not inside the safe envelope "
            f"`{envelope[0]}`-`{envelope[1]}` pu"
        )
    dg: dict[int, DgLimits] = {}
    ess: dict[int, EssLimits] = {}
    nodes = band.get("nodes") or {}
    for asset in assets:
        limits = _asset_limits(asset, _find(policies, asset.id), nodes.get(f"node_{asset.node}"))
        if limits is not None:
            if isinstance(limits, DgLimits):
                dg[asset.node] = limits
            else:
                ess[asset.node] = limits
    return VoltageLimits(v_min, v_max, v_nominal, dg, ess)


# --- the data source -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The active data source and outputs of one `service_config` version."""

    name: str
    topics: Mapping[str, str]
    qos: int
    outputs: Mapping[str, str]
    period_s: float | None
    on_missing: str
    input_timeout_s: float | None


DEFAULT_SOURCE = Source(
    "default",
    {k: DEFAULT_TOPICS[k] for k in (VOLTAGE_KEY, PV_KEY)},
    1,
    {k: DEFAULT_TOPICS[k] for k in OUTPUTS},
    None,
    "hold_last",
    None,
)


def source_from_config(content: Mapping[str, Any], service: str) -> Source:
    """The active source of a `service_config` content; only `mqtt` sources are followed."""
    if content.get("service") != service:
        raise InvalidInputError(
            f"configuration for `{content.get('service')}`, not `{service}`", code="invalid_config"
        )
    name = content.get("active_source")
    source = (content.get("data_sources") or {}).get(name)
    if not isinstance(source, Mapping):
        raise InvalidInputError(f"active source `{name}` is not defined", code="invalid_config")
    if source.get("kind") != "mqtt" or VOLTAGE_KEY not in (source.get("topics") or {}):
        raise InvalidInputError(
            f"source `{name}` must be an `mqtt` source with a `{VOLTAGE_KEY}` topic",
            code="unsupported_source",
        )
    fallback = content.get("fallback") or {}
    return Source(
        str(name),
        {k: v for k, v in source["topics"].items() if k in (VOLTAGE_KEY, PV_KEY)},
        int(source.get("qos", 1)),
        {**DEFAULT_SOURCE.outputs, **(content.get("outputs") or {})},
        content.get("loop_period_s"),
        fallback.get("on_missing_input", "hold_last"),
        fallback.get("input_timeout_s"),
    )


def _read(payload: bytes, key: str) -> dict[int, float]:
    """`{key: {"node_3": v}}` or a flat `{"node_3": v, "created": ms}` into `{3: v}`."""
    try:
        message = json.loads(payload)
        if isinstance(message, dict) and key not in message:
            message = {key: {k: v for k, v in message.items() if k != "created"}}
        if key == VOLTAGE_KEY:
            return dict(from_message(message).voltages)
        return dict(from_message({VOLTAGE_KEY: {}}, message).pv_kw)
    except (ValueError, ControlError) as error:
        raise InvalidInputError(f"`{key}`: {error}", code="malformed_payload") from None


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
            raise _refuse(error.message) from None
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
                values = _read(message.payload, key)
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
