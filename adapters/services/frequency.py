"""The frequency-control service: VPP fast frequency response or AGC on the bus.

Inputs are signals read from configured topics: the frequency (e.g. a PMU's
`json.edgeflex` object, signal `edgePMU3 frequency`) and the active power of every
unit (e.g. the field trial's `{"time", "value"}` objects, signal `value`), each a
number in a JSON object, times an optional `scale`. Every loop period the controller
steps on the latest values and publishes `{"active_power": {"<unit>": kW},
"delta_p_kw": ..., "saturated": ..., "created": ms}` on `output_topic`.

The controller (`controller`, `ffr.mode`):

* `ffr`, mode `proportional` (the default): `controls.FastFrequencyResponse`, a
  response proportional to the deviation beyond the deadband, as National Grid ESO's
  Dynamic Containment (gain `control_gains.ffr_gain_per_hz` of the VPP policy);
* `ffr`, mode `triggered`: `controls.TriggeredFastFrequencyResponse`, the full
  contracted capacity once the frequency reaches the activation level, as the Nordic
  TSOs' Fast Frequency Reserve, named as its technical requirements name them:
  `capacity_kw`, `activation_level_hz` (49.7, 49.6 or 49.5 Hz in the Nordic product;
  above the nominal frequency: an over-frequency product), `full_activation_time_s`
  (0 = at once; Nordic: at most 1.3, 1.0 or 0.7 s at those levels),
  `support_duration_s` (5) and `deactivation_time_s` (5: at most 20 % of the capacity
  per second);
* `agc`: `controls.AutomaticGenerationControl`.

Every sample passes `adapters.services._inputs.SampleGate` first: its time (`created`
or `time`, else its arrival) at most `max_input_age_s` old, at most `max_clock_skew_s`
ahead, later than the last one of its signal; its value plausible under the limits in
force: the frequency within 10 % of the nominal frequency, a unit's power within its
`p_min_kw`-`p_max_kw` widened by the width of that range on each side (before the
limits arrive: within 1 GW). A refused sample is counted under its reason. A step that
fails (a controller that raises, an output that cannot be encoded) is a failed step:
counted, logged, nothing published.

Bounds come live from `operational_limits` policies (sink `limits`), mapped by
`frequency_limits`: each unit's `power.p_min_kw`/`p_max_kw` and `frequency.droop_pct`
from the policy whose `asset_id` (or id) is the unit id; the nominal frequency, the
deadband (half the width of `deadband_low_hz`-`deadband_high_hz`) and the gains
(`control_gains`: `k_p`, `k_i`, `ffr_gain_per_hz`, `agc_bias_kw_per_hz`) from the
policy named by `vpp` (the controller waits for it, as for a unit's), else the controller
defaults. The controller starts once every unit has limits; a mapping that is invalid
keeps the last good bounds.

Local config section `frequency`:

```yaml
frequency:
  controller: ffr                     # or agc
  ffr:                                # optional; only with controller ffr
    mode: triggered                   # or proportional (the default, no other keys)
    capacity_kw: 400
    activation_level_hz: 49.7
    full_activation_time_s: 1.3
    support_duration_s: 5
    deactivation_time_s: 5
  vpp: vpp-wunsiedel                  # optional
  inputs:
    frequency: {topic: /edgeflex/edgepmu3/ch1, signal: edgePMU3 frequency}
    units:
      bess-01: {topic: /location_4/4/operationPower, signal: value, scale: 1.0}
  output_topic: /vpp/control/active_power
  loop_period_s: 0.2
  input_timeout_s: 2                  # older inputs: no step, nothing published
  max_input_age_s: 10                 # older samples are refused on arrival
```
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters._rules import publish_topic, subscribe_topic
from adapters.services._inputs import Refusal, SampleGate, Taken, Timing, plausible
from adapters.services._runner import (
    LoopService,
    PolicySink,
    find_policy,
    number,
    refuse,
    section,
)
from controls import (
    AutomaticGenerationControl,
    ControlError,
    FastFrequencyResponse,
    FrequencyLimits,
    TriggeredFastFrequencyResponse,
    TriggeredFfr,
    UnitLimits,
    VppMeasurement,
)
from pbgm.bus import Bus, BusMessage
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError, InvalidInputError

log = logging.getLogger(__name__)

OUTPUT_TOPIC = "/vpp/control/active_power"
JSON = get_codec("json")  # refuses duplicate keys and non-finite numbers both ways
FREQUENCY_SPAN = 0.1  # a plausible frequency is within 10 % of the nominal one
POWER_BEFORE_LIMITS_KW = 1e6
CONTROLLERS = ("ffr", "agc")
FFR_MODES = ("proportional", "triggered")
TRIGGERED_FFR = {  # config key (as the Nordic FFR requirements name it) -> TriggeredFfr field
    "capacity_kw": "capacity_kw",
    "activation_level_hz": "threshold_hz",
    "full_activation_time_s": "activation_time_s",
    "support_duration_s": "support_duration_s",
    "deactivation_time_s": "deactivation_time_s",
}
GAINS = {
    "k_p": "agc_kp",
    "k_i": "agc_ki_per_s",
    "ffr_gain_per_hz": "ffr_gain_per_hz",
    "agc_bias_kw_per_hz": "agc_bias_kw_per_hz",
}


@dataclass(frozen=True)
class Signal:
    """A number read from a JSON object on a topic: `payload[signal] * scale`."""

    topic: str
    signal: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        """Checked however the signal was made (`signal_from_config` or in code): a topic
        the bus cannot subscribe to would stop the service at start, a name that is no
        text or a scale that is no finite number would refuse every sample."""
        subscribe_topic(self.topic, "topic")
        if not isinstance(self.signal, str) or not self.signal:
            raise ConfigurationError("`signal` must be the name of a number, such as `value`")
        object.__setattr__(self, "scale", number({"scale": self.scale}, "scale", 1.0, -1e9, 1e9))

    def read(self, message: Mapping[str, Any]) -> float:
        """The signal's value times the scale; `Refusal("malformed")` without a number."""
        value = message.get(self.signal)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Refusal("malformed", f"no number `{self.signal}`")
        scaled = float(value) * self.scale
        if not math.isfinite(scaled):
            raise Refusal("implausible", f"`{self.signal}` times the scale is not finite")
        return scaled


def signal_from_config(data: Any, where: str) -> Signal:
    """The signal at `where`, checked by `Signal` itself; its errors name `where`."""
    if not isinstance(data, Mapping) or "topic" not in data:
        raise ConfigurationError(f"`{where}` needs `topic` and `signal`")
    try:
        return Signal(data["topic"], data.get("signal", "value"), data.get("scale", 1.0))
    except ConfigurationError as error:
        raise ConfigurationError(f"`{where}`: {error.message}") from None


def ffr_product(config: Mapping[str, Any], kind: str) -> TriggeredFfr | None:
    """The triggered FFR product of the `ffr` section, or None for proportional FFR."""
    ffr = config.get("ffr")
    if ffr is None:
        return None
    if kind != "ffr":
        raise ConfigurationError("`frequency.ffr` is for `controller: ffr`, not `agc`")
    if not isinstance(ffr, Mapping):
        raise ConfigurationError("`frequency.ffr` must be a mapping with `mode`")
    mode = ffr.get("mode", "proportional")
    if mode not in FFR_MODES:
        raise ConfigurationError(
            f"`frequency.ffr.mode` must be proportional or triggered, not `{mode}`"
        )
    keys = set(ffr) - {"mode"}
    if mode == "proportional":
        if keys:
            raise ConfigurationError(
                f"`frequency.ffr.{sorted(keys)[0]}` is for `mode: triggered`; proportional "
                "ffr takes its gain from the vpp policy (`control_gains.ffr_gain_per_hz`)"
            )
        return None
    unknown = sorted(keys - set(TRIGGERED_FFR))
    if unknown:
        raise ConfigurationError(
            f"`frequency.ffr.{unknown[0]}` is not a triggered ffr setting (known: "
            f"{', '.join(TRIGGERED_FFR)})"
        )
    if "capacity_kw" not in ffr:
        raise ConfigurationError("`frequency.ffr` with `mode: triggered` needs `capacity_kw`")
    for key in keys:
        value = ffr[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f"`frequency.ffr.{key}` must be a number, not `{value}`")
    try:
        return TriggeredFfr(**{TRIGGERED_FFR[key]: float(ffr[key]) for key in keys})
    except ControlError as error:
        named = error.message
        for key, field in TRIGGERED_FFR.items():
            named = named.replace(f"`{field}`", f"`frequency.ffr.{key}`")
        raise ConfigurationError(named) from None


# --- policies -> controller bounds ----------------------------------------------------


def _unit(unit_id: str, content: Mapping[str, Any]) -> UnitLimits:
    power = content.get("power") or {}
    if "p_min_kw" not in power or "p_max_kw" not in power:
        raise refuse(f"unit `{unit_id}` needs `power.p_min_kw` and `power.p_max_kw`")
    droop = (content.get("frequency") or {}).get("droop_pct", 5.0) / 100
    return UnitLimits(power["p_min_kw"], power["p_max_kw"], droop)


def _vpp_parameters(content: Mapping[str, Any] | None) -> dict[str, float]:
    if content is None:
        return {}
    out: dict[str, float] = {}
    frequency = content.get("frequency") or {}
    if "f_nominal_hz" in frequency:
        out["f_nominal_hz"] = frequency["f_nominal_hz"]
    low, high = frequency.get("deadband_low_hz"), frequency.get("deadband_high_hz")
    if low is not None and high is not None:
        nominal = out.get("f_nominal_hz", 50.0)
        if not low <= nominal <= high:
            raise refuse(f"deadband `{low}`-`{high}` Hz does not contain `{nominal}` Hz")
        out["deadband_hz"] = (high - low) / 2
    gains = content.get("control_gains") or {}
    out.update({field: gains[name] for name, field in GAINS.items() if name in gains})
    return out


def frequency_limits(
    policies: Mapping[str, Mapping[str, Any]], units: tuple[str, ...], vpp: str | None
) -> FrequencyLimits:
    """Map `operational_limits` contents (by policy id) to the controllers' bounds."""
    missing = [u for u in units if find_policy(policies, u) is None]
    if missing:
        raise refuse(f"no limits policy for unit `{missing[0]}` yet", "limits_incomplete")
    vpp_content = find_policy(policies, vpp) if vpp else None
    if vpp and vpp_content is None:  # the controller waits for the gains it was told to use
        raise refuse(f"no policy `{vpp}` (the vpp's deadband and gains) yet", "limits_incomplete")
    try:
        limits = {u: _unit(u, find_policy(policies, u) or {}) for u in units}
        return FrequencyLimits(limits, **_vpp_parameters(vpp_content))
    except ControlError as error:
        raise refuse(error.message) from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise refuse(f"limits policy content cannot be read: `{error}`") from None


# --- the service ---------------------------------------------------------------------


class FrequencyService(LoopService):
    """Steps FFR or AGC on the latest frequency and unit powers; see the module docstring."""

    name = "frequency-control"

    def __init__(self, bus: Bus, config: Mapping[str, Any]) -> None:
        kind = config.get("controller", "ffr")
        if kind not in CONTROLLERS:
            raise ConfigurationError(f"`frequency.controller` must be ffr or agc, not `{kind}`")
        inputs = config.get("inputs")
        if not isinstance(inputs, Mapping) or not isinstance(inputs.get("units"), Mapping):
            raise ConfigurationError("`frequency.inputs` needs `frequency` and `units`")
        self.kind = kind
        self.product = ffr_product(config, kind)
        self.frequency = signal_from_config(inputs.get("frequency"), "frequency.inputs.frequency")
        self.units = {
            str(u): signal_from_config(s, f"frequency.inputs.units.{u}")
            for u, s in inputs["units"].items()
        }
        if not self.units:
            raise ConfigurationError("`frequency.inputs.units` lists no unit")
        self.vpp = config.get("vpp")
        if self.vpp is not None and (not isinstance(self.vpp, str) or not self.vpp):
            raise ConfigurationError(
                "`frequency.vpp` must name the policy (id or asset id) of the vpp's gains"
            )
        self.output_topic = publish_topic(
            config.get("output_topic", OUTPUT_TOPIC), "frequency.output_topic"
        )
        self.timeout_s = number(config, "input_timeout_s", 2.0, 0.01, 3600)
        super().__init__(bus, number(config, "loop_period_s", 0.2, 0.01, 3600))
        self.controller: (
            FastFrequencyResponse
            | TriggeredFastFrequencyResponse
            | AutomaticGenerationControl
            | None
        ) = None
        self.gate = SampleGate(Timing.from_config(config), self.counters.bump)
        self._values: dict[str, Taken[float]] = {}
        self._lock = threading.Lock()

    def sinks(self) -> Mapping[str, PolicySink]:
        return {"limits": self.apply_limits}

    def build_limits(self, policies: Mapping[str, Mapping[str, Any]]) -> FrequencyLimits:
        return frequency_limits(policies, tuple(sorted(self.units)), self.vpp)

    def install_limits(self, limits: FrequencyLimits) -> None:
        try:
            if self.controller is None:
                self.controller = self._controller(limits)
            else:
                self.controller.set_limits(limits)
        except ControlError as error:
            raise refuse(error.message) from None
        log.info("bounds in force for %s", ", ".join(sorted(limits.units)))

    def _controller(
        self, limits: FrequencyLimits
    ) -> FastFrequencyResponse | TriggeredFastFrequencyResponse | AutomaticGenerationControl:
        if self.kind == "agc":
            return AutomaticGenerationControl(limits)
        if self.product is None:
            return FastFrequencyResponse(limits)
        return TriggeredFastFrequencyResponse(limits, self.product)

    def subscriptions(self) -> dict[str, Callable[[BusMessage], None]]:
        topics = {self.frequency.topic: self._handler("frequency", self.frequency)}
        for unit, signal in self.units.items():
            topics[signal.topic] = self._handler(unit, signal)
        return topics

    def _handler(self, key: str, signal: Signal) -> Callable[[BusMessage], None]:
        def handle(message: BusMessage) -> None:
            self.counters.bump("received")
            try:
                payload = JSON.decode(message.payload)
            except InvalidInputError as error:
                self.counters.bump("malformed")
                log.warning("malformed payload on `%s`: %s", message.topic, error.message)
                return
            low, high = self._plausible(key)
            taken = self.gate.admit(
                key,
                payload,
                lambda: plausible(signal.read(payload), low, high, f"`{signal.signal}`"),
                where=message.topic,
            )
            if taken is not None:
                with self._lock:
                    self._values[key] = taken

        return handle

    def _plausible(self, key: str) -> tuple[float, float]:
        """The plausible range of a signal under the limits in force (module docstring)."""
        controller = self.controller
        if key == "frequency":
            nominal = controller.limits.f_nominal_hz if controller is not None else 50.0
            return nominal * (1 - FREQUENCY_SPAN), nominal * (1 + FREQUENCY_SPAN)
        unit = controller.limits.units.get(key) if controller is not None else None
        if unit is None:
            return -POWER_BEFORE_LIMITS_KW, POWER_BEFORE_LIMITS_KW
        span = max(unit.p_max_kw - unit.p_min_kw, 1.0)
        return unit.p_min_kw - span, unit.p_max_kw + span

    def step(self) -> bool:
        """One step on the latest inputs; True when set-points were published.

        A step that fails is a failed step (`step_failed`): counted, logged, nothing sent."""
        controller = self.controller
        with self._lock:
            values = dict(self._values)
        needed = ("frequency", *self.units)
        if controller is None or any(
            k not in values or self.gate.age(values[k].t) > self.timeout_s for k in needed
        ):
            return False
        try:
            measurement = VppMeasurement(
                values["frequency"].values,
                {u: values[u].values for u in self.units},
                time_s=time.monotonic(),
            )
            result = controller.step(measurement)
            payload = JSON.encode(
                {
                    "active_power": dict(result.p_kw),
                    "delta_p_kw": result.delta_p_kw,
                    "saturated": result.saturated,
                    "created": round(time.time() * 1000),
                }
            )
        except Exception as error:
            self.step_failed(error)
            return False
        self.bus.publish(self.output_topic, payload, qos=1)
        self.counters.bump("published")
        self.counters.bump("steps")
        return True

    def missing_policies(self) -> list[str]:
        """The units without limits, until the controller can start."""
        if self.controller is not None:
            return []
        with self._policy_lock:
            policies = dict(self._policies)
        missing = [u for u in sorted(self.units) if find_policy(policies, u) is None]
        if self.vpp and find_policy(policies, self.vpp) is None:
            missing.append(self.vpp)
        return missing or ["vpp"]

    def state(self) -> Mapping[str, Any]:
        units = sorted(self.controller.limits.units) if self.controller else []
        mode: dict[str, Any] = {}
        if self.kind == "ffr":
            mode["mode"] = "proportional" if self.product is None else "triggered"
        if isinstance(self.controller, TriggeredFastFrequencyResponse):
            mode["ffr_state"] = self.controller.state
        return {"controller": self.kind, **mode, "units": units, **self.counters.snapshot()}


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> FrequencyService:
    """The runner's factory: the `frequency` section of the service config."""
    return FrequencyService(bus, section(config, "frequency"))
