"""Coordinated voltage control of an LV feeder (after the edgeFLEX/SOGNO CoVee service).

Each step takes the node voltages and PV availability published on
`/voltage_control/measuremnts/voltage` and `/voltage_control/measuremnts/pv` and
computes set-points for the controllable assets: DG reactive power, PV active
power (curtailment) and storage (ESS) active power, published on
`/voltage_control/control/{reactive_power,active_power,active_power_ESS}`.

The controller is incremental: the measured voltages already contain the effect of
the set-points it issued last time, so it predicts v = v_measured + A·(x - x_last)
on the linear sensitivity model (`controls.feeder`; each row divided by the measured
voltage, since ΔV ≈ (R·P + X·Q)/V) and solves the least-cost problem of
`controls._bandlp` (on a radial feeder, in its sparse branch-flow form): reactive
power first, then storage, then curtailment, each within its asset limits. If
even all means cannot restore the band, the set-points minimise the remaining
violation and `feasible` is False.

Conventions: powers in kW / kvar, positive = injected into the grid (ESS positive
= discharging); voltages in pu of `v_nominal_v` (line-to-line). Nodes without a
voltage measurement are not constrained in that step; a curtailable PV without an
availability measurement gets no active-power set-point in that step (it is not
curtailed blindly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controls import _bandlp
from controls._common import (
    LimitsSlot,
    check_range,
    finite,
    frozen_mapping,
    load_message,
    node_key,
    node_values,
    setting,
)
from controls._lindistflow import RadialModel, linear_model
from controls._linear import DenseModel
from controls.errors import InvalidLimitsError, InvalidMeasurementError, InvalidMessageError
from controls.feeder import RadialFeeder, Sensitivities

VOLTAGE_KEY = "voltage_measurements"
PV_KEY = "pv_input_measurements"
PV_KEY_ALIASES = (PV_KEY, "pv_measurements")
REACTIVE_POWER, ACTIVE_POWER, ACTIVE_POWER_ESS = (
    "reactive_power",
    "active_power",
    "active_power_ESS",
)

DEFAULT_TOPICS: Mapping[str, str] = frozen_mapping(
    {
        VOLTAGE_KEY: "/voltage_control/measuremnts/voltage",
        PV_KEY: "/voltage_control/measuremnts/pv",
        REACTIVE_POWER: "/voltage_control/control/reactive_power",
        ACTIVE_POWER: "/voltage_control/control/active_power",
        ACTIVE_POWER_ESS: "/voltage_control/control/active_power_ESS",
    }
)
"""The edgeFLEX topic names (with the published misspelling `measuremnts`)."""


@dataclass(frozen=True)
class DgLimits:
    """A distributed generator (typically PV): reactive range and curtailment."""

    q_min_kvar: float = 0.0
    q_max_kvar: float = 0.0
    p_max_kw: float = math.inf
    curtailable: bool = False

    def __post_init__(self) -> None:
        check_range(self.q_min_kvar, self.q_max_kvar, "dg reactive power (kvar)")
        if not self.p_max_kw >= 0:  # infinity (no limit) is allowed, NaN is not
            raise InvalidLimitsError(
                f"`p_max_kw` must be a number >= 0 kW, got `{self.p_max_kw!r}`"
            )
        if not isinstance(self.curtailable, bool):
            raise InvalidLimitsError(
                f"`curtailable` must be true or false, got `{self.curtailable!r}`"
            )


@dataclass(frozen=True)
class EssLimits:
    """A storage unit: active power range (positive = discharge) and energy window.

    The range must contain 0: idling is the storage's safe state, and with it a
    state-of-charge window can always be kept.
    """

    p_min_kw: float
    p_max_kw: float
    energy_kwh: float | None = None
    soc_min: float = 0.0
    soc_max: float = 1.0

    def __post_init__(self) -> None:
        check_range(self.p_min_kw, self.p_max_kw, "ess active power (kW)")
        if not self.p_min_kw <= 0.0 <= self.p_max_kw:
            raise InvalidLimitsError("ess power range must allow idling (contain 0)")
        check_range(self.soc_min, self.soc_max, "ess state of charge (0..1)")
        if not 0.0 <= self.soc_min <= self.soc_max <= 1.0:
            raise InvalidLimitsError(
                "ess state of charge window must lie in [0, 1], "
                f"got `{self.soc_min}`-`{self.soc_max}`"
            )
        if self.energy_kwh is not None:
            setting(self.energy_kwh, "energy_kwh", "kWh", above=0.0)


@dataclass(frozen=True)
class VoltageLimits:
    """The operational band and the assets the controller may use, by node."""

    v_min: float = 0.95
    v_max: float = 1.05
    v_nominal_v: float = 400.0
    dg: Mapping[int, DgLimits] = field(default_factory=dict)
    ess: Mapping[int, EssLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range(self.v_min, self.v_max, "voltage band (pu)")
        setting(self.v_min, "v_min", "pu", above=0.0)
        setting(self.v_nominal_v, "v_nominal_v", "V", above=0.0)
        object.__setattr__(self, "dg", frozen_mapping(self.dg))
        object.__setattr__(self, "ess", frozen_mapping(self.ess))


@dataclass(frozen=True)
class ControlCosts:
    """Relative prices of the means (per kvar or kW of deviation from the reference)."""

    q_per_kvar: float = 1.0
    ess_per_kw: float = 10.0
    curtail_per_kw: float = 100.0
    flex_per_kw: float = 1000.0

    def __post_init__(self) -> None:
        setting(self.q_per_kvar, "q_per_kvar", "per kvar", above=0.0)
        for name in ("ess_per_kw", "curtail_per_kw", "flex_per_kw"):
            setting(getattr(self, name), name, "per kW", above=0.0)


@dataclass(frozen=True)
class VoltageMeasurements:
    """Node voltages (pu) and available PV power (kW) by node."""

    voltages: Mapping[int, float]
    pv_kw: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = {n: finite(x, f"voltage of node `{n}`") for n, x in self.voltages.items()}
        if any(x <= 0 for x in v.values()):
            raise InvalidMeasurementError("voltages must be positive")
        pv = {n: finite(x, f"pv power of node `{n}`") for n, x in self.pv_kw.items()}
        object.__setattr__(self, "voltages", frozen_mapping(v))
        object.__setattr__(self, "pv_kw", frozen_mapping({n: max(x, 0.0) for n, x in pv.items()}))


@dataclass(frozen=True)
class VoltageSetpoints:
    """One step's set-points, with the voltages the linear model predicts for them."""

    reactive_power: Mapping[int, float]
    active_power: Mapping[int, float]
    active_power_ess: Mapping[int, float]
    predicted_voltages: Mapping[int, float]
    feasible: bool
    max_violation_pu: float
    tier: int


def from_message(
    voltage_message: Mapping[str, Any] | str | bytes,
    pv_message: Mapping[str, Any] | str | bytes | None = None,
) -> VoltageMeasurements:
    """Read `{"voltage_measurements": {...}}` and, optionally, `{"pv_input_measurements": {...}}`.

    The PV key is the one the CoVee power flow publishes; `pv_measurements` is
    accepted as an alias.
    """
    voltages = node_values(load_message(voltage_message), VOLTAGE_KEY)
    pv: dict[int, float] = {}
    if pv_message is not None:
        message = load_message(pv_message)
        key = next((k for k in PV_KEY_ALIASES if k in message), None)
        if key is None:
            raise InvalidMessageError(f"message has no `{PV_KEY}` object")
        pv = node_values(message, key)
    return VoltageMeasurements(voltages, pv)


def to_messages(setpoints: VoltageSetpoints) -> dict[str, dict[str, dict[str, float]]]:
    """Payloads by variable name, e.g. `{"reactive_power": {"reactive_power": {"node_3": q}}}`.

    Variables without any controllable asset are left out. Publish each payload on
    `DEFAULT_TOPICS[variable]` (or the configured topic).
    """
    out = {}
    for name, values in (
        (REACTIVE_POWER, setpoints.reactive_power),
        (ACTIVE_POWER, setpoints.active_power),
        (ACTIVE_POWER_ESS, setpoints.active_power_ess),
    ):
        if values:
            out[name] = {name: {node_key(n): float(v) for n, v in sorted(values.items())}}
    return out


class _Assets:
    """Variable layout x = [q of DGs, p of ESSs, p of curtailable PVs] for one limits object."""

    def __init__(
        self, model: DenseModel | RadialModel, limits: VoltageLimits, pv_kw: Mapping[int, float]
    ) -> None:
        self.dg = tuple(sorted(limits.dg))
        self.ess = tuple(sorted(limits.ess))
        self.pv = tuple(n for n in self.dg if limits.dg[n].curtailable and n in pv_kw)
        self.cols = model.positions(self.dg + self.ess + self.pv)
        self.is_p = np.arange(self.cols.size) >= len(self.dg)

    def split(self, x: np.ndarray) -> tuple[dict[int, float], ...]:
        i, j = len(self.dg), len(self.dg) + len(self.ess)
        parts = ((self.dg, x[:i]), (self.ess, x[i:j]), (self.pv, x[j:]))
        return tuple(dict(zip(nodes, v.tolist(), strict=True)) for nodes, v in parts)


class VoltageController(LimitsSlot[VoltageLimits]):
    """Closed-loop voltage controller on a linear sensitivity model.

    `step` is called from one thread; `set_limits` may be called from any thread
    and takes effect at the next step. The controller remembers the set-points it
    issued (it assumes they were applied); `reset` forgets them. It aims at the band
    narrowed by `margin_pu` on each side, which absorbs the linearisation error so
    that the real voltages land inside the band itself.

    `model` is a `RadialFeeder` or `Sensitivities`; when the radial feeder is known
    (given, or remembered by its sensitivities) the LP is the sparse branch-flow form,
    O(n) instead of O(n²) non-zeros, with the same result.
    """

    def __init__(
        self,
        model: Sensitivities | RadialFeeder,
        limits: VoltageLimits,
        costs: ControlCosts = ControlCosts(),
        *,
        margin_pu: float = 0.002,
    ) -> None:
        self.model = model
        self._linear = linear_model(model)
        if not isinstance(costs, ControlCosts):
            raise InvalidLimitsError("costs must be a `ControlCosts`")
        self.costs = costs
        self.margin_pu = setting(margin_pu, "margin_pu", "pu", minimum=0.0)
        super().__init__(limits)
        self.reset()

    def reset(self) -> None:
        self._last: dict[str, dict[int, float]] = {"q": {}, "ess": {}, "pv": {}}

    def _check(self, limits: VoltageLimits) -> None:
        if limits.v_nominal_v != self._linear.v_nominal_v:
            raise InvalidLimitsError(
                f"limits are in pu of `{limits.v_nominal_v}` V but the feeder model of "
                f"`{self._linear.v_nominal_v}` V"
            )
        for node in (*limits.dg, *limits.ess):
            if node not in self._linear.index:
                raise InvalidLimitsError(f"asset node `{node}` is not in the feeder model")

    def step(
        self, measurements: VoltageMeasurements, *, limits: VoltageLimits | None = None
    ) -> VoltageSetpoints:
        """Set-points for this step; `limits` overrides the held limits for this step only."""
        limits = self._current(limits)
        assets = _Assets(self._linear, limits, measurements.pv_kw)
        margin = min(self.margin_pu, (limits.v_max - limits.v_min) / 4)
        rows = self._linear.positions(measurements.voltages.keys())
        lower, upper, reference, cost, tier = self._bounds(assets, limits, measurements)
        last = self._last_vector(assets, measurements)
        v_meas = np.array(list(measurements.voltages.values()))
        a = self._linear.operator(rows, assets.cols, assets.is_p, 1.0 / v_meas)
        problem = _bandlp.BandProblem(
            v_offset=v_meas - a.apply(last),
            a=a,
            v_min=np.full(rows.size, limits.v_min + margin),
            v_max=np.full(rows.size, limits.v_max - margin),
            lower=lower,
            upper=upper,
            reference=reference,
            cost=cost,
            tier=tier,
        )
        solution = _bandlp.solve(problem)
        q, ess, pv = assets.split(solution.x)
        self._last = {"q": q, "ess": ess, "pv": pv}
        predicted = dict(zip(measurements.voltages, solution.v.tolist(), strict=True))
        return VoltageSetpoints(
            q, pv, ess, predicted, solution.feasible, solution.max_violation_pu, solution.tier
        )

    def _bounds(
        self, assets: _Assets, limits: VoltageLimits, m: VoltageMeasurements
    ) -> tuple[np.ndarray, ...]:
        """Bounds, cost-free references, prices and priority tiers of every variable."""
        dg = [limits.dg[n] for n in assets.dg]
        ess = [limits.ess[n] for n in assets.ess]
        pv_top = [min(m.pv_kw.get(n, 0.0), limits.dg[n].p_max_kw) for n in assets.pv]
        lower = np.array(
            [d.q_min_kvar for d in dg] + [e.p_min_kw for e in ess] + [0.0] * len(pv_top)
        )
        upper = np.array([d.q_max_kvar for d in dg] + [e.p_max_kw for e in ess] + pv_top)
        reference = np.concatenate([np.zeros(len(dg) + len(ess)), pv_top])
        c = self.costs
        sizes = (len(dg), len(ess), len(pv_top))
        cost = np.repeat([c.q_per_kvar, c.ess_per_kw, c.curtail_per_kw], sizes)
        tier = np.repeat([0, 1, 2], sizes)
        return lower, upper, reference, cost, tier

    def _last_vector(self, assets: _Assets, m: VoltageMeasurements) -> np.ndarray:
        """The injections in force when the voltages were measured (reference if unknown)."""
        q = [self._last["q"].get(n, 0.0) for n in assets.dg]
        ess = [self._last["ess"].get(n, 0.0) for n in assets.ess]
        pv = [min(m.pv_kw.get(n, 0.0), self._last["pv"].get(n, math.inf)) for n in assets.pv]
        return np.array(q + ess + pv, dtype=float)
