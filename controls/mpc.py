"""Model predictive voltage control over a forecast horizon, with flexibility trading.

Each cycle takes load and PV forecasts for the next `horizon` steps and plans
set-points for every step (DG reactive power, storage power, PV curtailment) that
keep all node voltages in the band at least cost, on the linear sensitivity model
(`controls.feeder`) and with the storage energy carried from step to step. The
plan is a linear programme (`controls._bandlp`; on a radial feeder in its sparse
branch-flow form, one copy of the feeder per step): the asset limits are bounds of
the optimisation, and the plan is verified against them before it is used.

When local means are not enough, the MPC asks the market: it re-plans with the
flexibility allowed at the `flex` nodes of its limits, at a higher price, and
emits what it would need there as a `FlexSchedule` (design.md §7 shape, see
`controls.flex`). pbgm turns it into FlexOffers; the market's `flex_response`
comes back through `receive_flex_response`. The traded values then become fixed
references for those nodes and steps in the following cycles (clipped to the
current flexibility limits). CoVee weights them by 1e10 in its objective; here
they are held exactly, the limit of that weight, so the LP cannot quietly plan
flexibility that was never bought. Steps beyond the traded ones may still
need, and request, more.

No response by the next cycle: the MPC logs "no flexibility response", falls back
to the safe default for that cycle (the baseline: no reactive power, storage idle,
no curtailment, as the CoVee MPC zeroes its set-points; `fallback="local"` keeps
the best local plan instead) and asks again (domain.md §6.2).

Linearisation error. The linear model drops the part of each line's voltage drop in
quadrature with the voltage and the 1/V scaling of currents, so its plans can leave
the band on the real feeder by a few mpu (more on weak feeders). When the radial
feeder is known the MPC therefore checks every plan with the full AC power flow
(`controls._acflow`) and re-plans on the linear model corrected by the error it found
at that plan (v_lin(x) + (v_ac(x_i) - v_lin(x_i)), successive linearisation), until
the AC voltages of the plan are inside the band; `feasible` and `voltages` are those
of the AC flow. With hand-made sensitivities (no feeder, no AC model), or with
`ac_check=False`, it plans inside the band narrowed by `margin_pu` (default 0.002 pu,
as `VoltageController`; 0 with the AC check), and `voltages` are the linear prediction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from controls import _bandlp
from controls._acflow import ac_voltages
from controls._common import LimitsSlot, check_range, choice, finite, frozen_mapping, setting
from controls._lindistflow import RadialModel, RadialOperator, linear_model
from controls._linear import BlockOperator, DenseModel, Operator
from controls.errors import (
    InvalidLimitsError,
    InvalidMeasurementError,
    InvalidMessageError,
    SolverError,
)
from controls.feeder import RadialFeeder, Sensitivities
from controls.flex import RESPONSE_KEY, FlexSchedule
from controls.voltage import ControlCosts, VoltageLimits, VoltageSetpoints

logger = logging.getLogger(__name__)

NO_RESPONSE = "no flexibility response"

MAX_CORRECTIONS = 8
"""Re-plans on the AC-corrected linear model at most (two or three suffice in practice)."""

LINEAR_MARGIN_PU = 0.002
"""Band narrowing without an AC model, as `VoltageController`'s default `margin_pu`."""

_Traded: TypeAlias = Mapping[tuple[int, int], float]
"""Traded flexibility (kW) by (step, node) of the current horizon."""


@dataclass(frozen=True)
class FlexLimits:
    """The active-power flexibility (kW change, + = more injection) a node may be asked for."""

    p_min_kw: float
    p_max_kw: float

    def __post_init__(self) -> None:
        check_range(self.p_min_kw, self.p_max_kw, "flexibility")
        if not self.p_min_kw <= 0.0 <= self.p_max_kw:
            raise InvalidLimitsError("flexibility range must contain 0 (no flexibility used)")


@dataclass(frozen=True)
class MpcLimits:
    voltage: VoltageLimits
    flex: Mapping[int, FlexLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flex", frozen_mapping(self.flex))


@dataclass(frozen=True)
class MpcForecast:
    """Per step: load (kW, kvar) and available PV (kW) by node; all of equal length."""

    load_kw: Sequence[Mapping[int, float]]
    pv_kw: Sequence[Mapping[int, float]]
    load_kvar: Sequence[Mapping[int, float]] = ()

    def __post_init__(self) -> None:
        load_kvar = tuple(self.load_kvar) or tuple({} for _ in self.load_kw)
        if not self.load_kw or not len(self.load_kw) == len(self.pv_kw) == len(load_kvar):
            raise InvalidMeasurementError("forecasts need one load and one pv entry per step")
        for name, steps in (("load_kw", self.load_kw), ("pv_kw", self.pv_kw), ("q", load_kvar)):
            for step in steps:
                for node, value in step.items():
                    finite(value, f"{name} forecast of node `{node}`")
        object.__setattr__(self, "load_kw", tuple(self.load_kw))
        object.__setattr__(self, "pv_kw", tuple(self.pv_kw))
        object.__setattr__(self, "load_kvar", load_kvar)

    @property
    def horizon(self) -> int:
        return len(self.load_kw)


@dataclass(frozen=True)
class MpcState:
    """Slack-node voltage (pu) and storage state of charge (0..1) at the start of the horizon.

    Every storage with an energy capacity needs its state of charge: without it
    the plan could not keep the energy window, so the step refuses to plan.
    """

    v_slack_pu: float = 1.0
    soc: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MpcPlan:
    """The plan of one cycle: per-asset trajectories and the first step as set-points.

    `status` is `ok`, `tracking` (a traded response is being followed),
    `flex_requested` (local means are not enough; see `flex_request`) or
    `fallback` (no response came: `setpoints` are the safe default). `voltages`
    (steps x nodes, pu), `feasible` and `max_violation_pu` are those of the AC power
    flow of the plan when the feeder is known (`max_violation_pu` is inf when the
    feeder has no operating point for it), of the linear model otherwise.
    """

    q_kvar: Mapping[int, tuple[float, ...]]
    p_ess_kw: Mapping[int, tuple[float, ...]]
    p_pv_kw: Mapping[int, tuple[float, ...]]
    flex_kw: Mapping[int, tuple[float, ...]]
    voltages: np.ndarray
    feasible: bool
    max_violation_pu: float
    status: str
    setpoints: VoltageSetpoints
    flex_request: FlexSchedule | None = None


class _Layout:
    """Variables per step: [q of DGs, p of ESSs, p of curtailable PVs, flex], then steps."""

    def __init__(self, model: DenseModel | RadialModel, limits: MpcLimits) -> None:
        v = limits.voltage
        self.dg = tuple(sorted(v.dg))
        self.ess = tuple(sorted(v.ess))
        self.pv = tuple(n for n in self.dg if v.dg[n].curtailable)
        self.flex = tuple(sorted(limits.flex))
        self.groups = (self.dg, self.ess, self.pv, self.flex)
        self.width = sum(len(g) for g in self.groups)
        cols = model.positions(self.dg + self.ess + self.pv + self.flex)
        is_p = np.arange(self.width) >= len(self.dg)  # dV/dQ for the DGs' q, else dV/dP
        self.block = model.operator(np.arange(len(model.nodes)), cols, is_p, None)

    def slices(self) -> list[slice]:
        out, start = [], 0
        for group in self.groups:
            out.append(slice(start, start + len(group)))
            start += len(group)
        return out


class MpcVoltageController(LimitsSlot[MpcLimits]):
    """Plans set-points over the forecast horizon; trades flexibility when it must.

    `step` and `receive_flex_response` are called from the control loop's thread;
    `set_limits` from any thread (effective at the next step). `model` is a
    `RadialFeeder` or `Sensitivities`, as for `VoltageController`.
    """

    def __init__(
        self,
        model: Sensitivities | RadialFeeder,
        limits: MpcLimits,
        *,
        step_hours: float = 0.25,
        costs: ControlCosts | None = None,
        response_timeout_cycles: int = 1,
        fallback: Literal["baseline", "local"] = "baseline",
        margin_pu: float | None = None,
        ac_check: bool = True,
    ) -> None:
        self.model = model
        self._linear = linear_model(model)
        known = isinstance(self._linear, RadialModel) and ac_check
        self._ac = self._linear if known and isinstance(self._linear, RadialModel) else None
        self.step_hours = setting(step_hours, "step_hours", "h", above=0.0)
        self.costs = costs or ControlCosts()
        if isinstance(response_timeout_cycles, bool) or not isinstance(
            response_timeout_cycles, int
        ) or response_timeout_cycles < 1:  # fmt: skip
            raise InvalidLimitsError(
                f"`response_timeout_cycles` must be a whole number >= 1 of cycles, "
                f"got `{response_timeout_cycles!r}`"
            )
        self.response_timeout_cycles = response_timeout_cycles
        self.fallback = choice(fallback, "fallback", ("baseline", "local"))
        default = 0.0 if self._ac is not None else LINEAR_MARGIN_PU
        self.margin_pu = default if margin_pu is None else setting(
            margin_pu, "margin_pu", "pu", minimum=0.0
        )  # fmt: skip
        super().__init__(limits)
        self._cycle = 0
        self._pending: tuple[int, FlexSchedule] | None = None
        self._traded: tuple[int, FlexSchedule] | None = None

    def _check(self, limits: MpcLimits) -> None:
        if limits.voltage.v_nominal_v != self._linear.v_nominal_v:
            raise InvalidLimitsError("limits and feeder model use different nominal voltages")
        for node in (*limits.voltage.dg, *limits.voltage.ess, *limits.flex):
            if node not in self._linear.index:
                raise InvalidLimitsError(f"asset node `{node}` is not in the feeder model")

    @property
    def pending_request(self) -> FlexSchedule | None:
        return None if self._pending is None else self._pending[1]

    def receive_flex_response(self, message: Mapping[str, Any] | str | bytes) -> None:
        """Accept the market's answer to the pending request (documented shape)."""
        response = FlexSchedule.from_message(message, RESPONSE_KEY)
        if self._pending is None:
            raise InvalidMessageError("no flexibility request is pending")
        cycle, request = self._pending
        if response.variable != request.variable:
            raise InvalidMessageError(f"response is for `{response.variable}`, not requested")
        flex = self.limits.flex
        for node in response.nodes:
            if node not in request.nodes or node not in flex:
                raise InvalidMessageError(f"node `{node}` was not in the flexibility request")
            for k in range(response.horizon):
                value = response.value(k, node)
                if not flex[node].p_min_kw - 1e-9 <= value <= flex[node].p_max_kw + 1e-9:
                    raise InvalidMessageError(f"response `{value}` for node `{node}` is off limits")
        self._traded, self._pending = (cycle, response), None

    def step(
        self, forecast: MpcForecast, state: MpcState = MpcState(), *,
        limits: MpcLimits | None = None,
    ) -> MpcPlan:  # fmt: skip
        """Plan this cycle. See the module docstring for the request/response cycle."""
        limits = self._current(limits)
        self._cycle += 1
        timed_out = self._expire_request()
        layout = _Layout(self._linear, limits)
        build = _Builder(self, layout, limits, forecast, state)
        traded = self._traded_now(forecast.horizon)
        local = build.solve(traded)
        request = None
        if not local.feasible and layout.flex:
            wider = build.solve(traded, open_flex=True, first_tier=3)
            request = build.request(wider.x, traded)
            self._pending = (self._cycle, request) if request else None
        status = "flex_requested" if request else "tracking" if self._traded else "ok"
        chosen = local
        if timed_out and not local.feasible and self.fallback == "baseline":
            chosen, status = build.baseline(traded), "fallback"
        build.verify(chosen.x, traded)
        return build.plan(chosen, status, request)

    def _expire_request(self) -> bool:
        if self._pending is None or self._cycle - self._pending[0] < self.response_timeout_cycles:
            return False
        logger.warning(NO_RESPONSE)
        self._pending = None
        return True

    def _traded_now(self, horizon: int) -> dict[tuple[int, int], float]:
        """Traded values by (step, node) of this cycle's horizon."""
        if self._traded is None:
            return {}
        cycle, response = self._traded
        shift = self._cycle - cycle
        if shift >= response.horizon:
            self._traded = None
            return {}
        return {
            (k - shift, n): response.value(k, n)
            for k in range(shift, min(response.horizon, shift + horizon))
            for n in response.nodes
        }


class _Builder:
    """Turns one cycle's forecast and limits into the LP, and its solution into a plan."""

    def __init__(
        self, mpc: MpcVoltageController, layout: _Layout, limits: MpcLimits,
        forecast: MpcForecast, state: MpcState,
    ) -> None:  # fmt: skip
        self.mpc, self.layout, self.limits = mpc, layout, limits
        self.forecast, self.state = forecast, state
        self.steps = forecast.horizon
        self.v_slack = finite(state.v_slack_pu, "slack voltage (pu)")
        if self.v_slack <= 0:
            raise InvalidMeasurementError(f"slack voltage must be > 0 pu, got `{self.v_slack}`")
        self.p0, self.q0 = self._fixed_injections()
        self.v_offset = self._open_loop()
        self.a: Operator = BlockOperator(layout.block, self.steps)

    def _fixed_injections(self) -> tuple[np.ndarray, np.ndarray]:
        """Per step (rows) and node: the injections no set-point changes (kW, kvar)."""
        model = self.mpc._linear
        curtailable = set(self.layout.pv)
        p, q = [], []
        for k in range(self.steps):
            fixed_pv = {n: x for n, x in self.forecast.pv_kw[k].items() if n not in curtailable}
            p.append(model.vector(fixed_pv) - model.vector(self.forecast.load_kw[k]))
            q.append(-model.vector(self.forecast.load_kvar[k]))
        return np.array(p).reshape(self.steps, -1), np.array(q).reshape(self.steps, -1)

    def _open_loop(self) -> np.ndarray:
        """Voltages of every step with all controllable assets at zero (pu)."""
        model = self.mpc._linear
        return np.concatenate(
            [model.voltages(self.p0[k], self.q0[k], self.v_slack) for k in range(self.steps)]
        )

    def ac(self, x: np.ndarray) -> np.ndarray | None:
        """The AC power flow of plan `x`, step-major like `v_offset`; None without an
        AC model or without an operating point."""
        model = self.mpc._ac
        if model is None:
            return None
        block = self.layout.block
        assert isinstance(block, RadialOperator)
        grid = x.reshape(self.steps, self.layout.width).T  # one column per step
        p = self.p0.T + block.inject_p @ grid
        q = self.q0.T + block.inject_q @ grid
        v = ac_voltages(model, np.asarray(p), np.asarray(q), self.v_slack)
        return None if v is None else v.T.ravel()

    def solve(
        self, traded: _Traded, *, open_flex: bool = False, first_tier: int = 0
    ) -> _bandlp.BandSolution:
        """The least-cost plan whose AC voltages stay in the band (successive linearisation).

        Without an AC model: the linear plan in the band narrowed by the margin.
        """
        solution = _bandlp.solve(self.problem(traded, open_flex), first_tier)
        if self.mpc._ac is None:
            return solution
        judged = self.judge(solution)
        for _ in range(MAX_CORRECTIONS):
            if judged.feasible or not math.isfinite(judged.max_violation_pu):
                break
            correction = judged.v - (self.v_offset + self.a.apply(solution.x))
            solution = _bandlp.solve(self.problem(traded, open_flex, correction), first_tier)
            judged = self.judge(solution)
            if not solution.feasible:  # not even the corrected linear model can: stop
                break
        return judged

    def judge(self, solution: _bandlp.BandSolution) -> _bandlp.BandSolution:
        """`solution` with the voltages and violation of its AC power flow (if known)."""
        if self.mpc._ac is None:
            return solution
        actual = self.ac(solution.x)
        if actual is None:
            return _bandlp.BandSolution(solution.x, solution.v, math.inf, solution.tier)
        v = self.limits.voltage
        worst = float(np.maximum(v.v_min - actual, actual - v.v_max).max(initial=0.0))
        return _bandlp.BandSolution(solution.x, actual, max(worst, 0.0), solution.tier)

    def _step_bounds(self, k: int, traded: _Traded, open_flex: bool) -> tuple[np.ndarray, ...]:
        """Bounds, references, prices and tiers of step k's variables."""
        v, c, lay = self.limits.voltage, self.mpc.costs, self.layout
        forecast_pv = self.forecast.pv_kw[k]
        pv_top = [min(max(forecast_pv.get(n, 0.0), 0.0), v.dg[n].p_max_kw) for n in lay.pv]
        flex = [self.limits.flex[n] for n in lay.flex]
        tracked = [(k, n) in traded for n in lay.flex]
        fixed = [_clip(traded.get((k, n), 0.0), f) for n, f in zip(lay.flex, flex, strict=True)]
        lower = [v.dg[n].q_min_kvar for n in lay.dg] + [v.ess[n].p_min_kw for n in lay.ess]
        upper = [v.dg[n].q_max_kvar for n in lay.dg] + [v.ess[n].p_max_kw for n in lay.ess]
        lower += [0.0] * len(pv_top) + _flex_bound(flex, tracked, fixed, open_flex, "p_min_kw")
        upper += pv_top + _flex_bound(flex, tracked, fixed, open_flex, "p_max_kw")
        ref = [0.0] * (len(lay.dg) + len(lay.ess)) + pv_top + fixed
        cost = [c.q_per_kvar] * len(lay.dg) + [c.ess_per_kw] * len(lay.ess)
        cost += [c.curtail_per_kw] * len(pv_top) + [c.flex_per_kw] * len(flex)
        tier = [0] * len(lay.dg) + [1] * len(lay.ess) + [2] * len(pv_top) + [3] * len(flex)
        return tuple(np.array(x, dtype=float) for x in (lower, upper, ref, cost, tier))

    def problem(
        self, traded: _Traded, open_flex: bool = False, correction: np.ndarray | None = None
    ) -> _bandlp.BandProblem:
        """The LP of this cycle; `correction` (pu, per row) is added to the linear model."""
        parts = [self._step_bounds(k, traded, open_flex) for k in range(self.steps)]
        lower, upper, ref, cost, tier = (np.concatenate(p) for p in zip(*parts, strict=True))
        n = len(self.mpc._linear.nodes) * self.steps
        v = self.limits.voltage
        margin = min(self.mpc.margin_pu, (v.v_max - v.v_min) / 4)
        e, e_rhs = self._energy_rows()
        offset = self.v_offset if correction is None else self.v_offset + correction
        return _bandlp.BandProblem(
            offset, self.a, np.full(n, v.v_min + margin), np.full(n, v.v_max - margin),
            lower, upper, ref, cost, tier.astype(int), e, e_rhs,
        )  # fmt: skip

    def _energy_rows(self) -> tuple[sp.csr_matrix | None, np.ndarray | None]:
        """State of charge within [soc_min, soc_max] after every step, for ESS with energy."""
        lay, v = self.layout, self.limits.voltage
        ess_slice = lay.slices()[1]
        entries: list[tuple[int, int, float]] = []  # (row, column, value)
        rhs: list[float] = []
        for i, node in enumerate(lay.ess):
            lim = v.ess[node]
            if lim.energy_kwh is None:
                continue
            if node not in self.state.soc:
                raise InvalidMeasurementError(f"no state of charge for the storage at `{node}`")
            soc0 = finite(self.state.soc[node], f"state of charge of `{node}`")
            low, high = min(lim.soc_min, soc0), max(lim.soc_max, soc0)
            per_kw = self.mpc.step_hours / lim.energy_kwh
            for k in range(self.steps):
                row, cols = len(rhs), [j * lay.width + ess_slice.start + i for j in range(k + 1)]
                entries += [(row, c, per_kw) for c in cols] + [(row + 1, c, -per_kw) for c in cols]
                rhs += [soc0 - low, high - soc0]  # soc_k = soc0 - per_kw·Σ p (discharge +)
        if not rhs:
            return None, None
        r, c, value = zip(*entries, strict=True)
        shape = (len(rhs), lay.width * self.steps)
        return sp.csr_matrix((value, (r, c)), shape=shape), np.array(rhs)

    def baseline(self, traded: _Traded) -> _bandlp.BandSolution:
        """The safe default: assets at their reference, traded flexibility as contracted."""
        problem = self.problem(traded)
        x = np.clip(problem.reference, problem.lower, problem.upper)
        return self.judge(_bandlp.evaluate(problem, x, tier=-1))

    def verify(self, x: np.ndarray, traded: _Traded) -> None:
        """The plan never leaves the asset limits or the storage energy window."""
        problem = self.problem(traded, open_flex=True)
        if np.any(x < problem.lower - 1e-9) or np.any(x > problem.upper + 1e-9):
            raise SolverError("planned set-points leave the asset limits")
        e, e_rhs = problem.e, problem.e_rhs
        if e is not None and e_rhs is not None and np.any(e @ x > e_rhs + 1e-6):
            raise SolverError("planned storage leaves its state-of-charge window")

    def request(self, x: np.ndarray, traded: _Traded) -> FlexSchedule | None:
        """The flexibility the wider plan needs beyond what is traded, where it needs any."""
        planned = self._trajectories(x)[3]
        extra = {
            n: [planned[n][k] - _clip(traded.get((k, n), 0.0), lim) for k in range(self.steps)]
            for n, lim in self.limits.flex.items()
        }
        nodes = tuple(n for n, values in extra.items() if np.max(np.abs(values)) > 1e-6)
        if not nodes:
            return None
        values = tuple(tuple(float(extra[n][k]) for n in nodes) for k in range(self.steps))
        return FlexSchedule("active_power", nodes, values)

    def _trajectories(self, x: np.ndarray) -> list[dict[int, tuple[float, ...]]]:
        grid = x.reshape(self.steps, self.layout.width)
        return [
            {n: tuple(grid[:, s.start + i].tolist()) for i, n in enumerate(group)}
            for group, s in zip(self.layout.groups, self.layout.slices(), strict=True)
        ]

    def plan(self, sol: _bandlp.BandSolution, status: str, request: FlexSchedule | None) -> MpcPlan:
        q, ess, pv, flex = self._trajectories(sol.x)
        voltages = sol.v.reshape(self.steps, -1)
        first = dict(zip(self.mpc._linear.nodes, voltages[0].tolist(), strict=True))
        setpoints = VoltageSetpoints(
            {n: v[0] for n, v in q.items()}, {n: v[0] for n, v in pv.items()},
            {n: v[0] for n, v in ess.items()}, first, sol.feasible, sol.max_violation_pu, sol.tier,
        )  # fmt: skip
        return MpcPlan(
            q, ess, pv, flex, voltages, sol.feasible, sol.max_violation_pu, status, setpoints,
            request,
        )  # fmt: skip


def _clip(value: float, limits: FlexLimits) -> float:
    return min(max(value, limits.p_min_kw), limits.p_max_kw)


def _flex_bound(
    flex: list[FlexLimits], tracked: list[bool], fixed: list[float], open_flex: bool, side: str
) -> list[float]:
    """Traded steps are fixed; others are free only in the wider (request) plan."""
    return [
        value if held else getattr(limit, side) if open_flex else 0.0
        for limit, held, value in zip(flex, tracked, fixed, strict=True)
    ]
