"""The small LV feeder case shared by the voltage and MPC tests, and a closed-loop runner.

The "plant" is the full AC power flow of `controls.testing`; the controllers only
know the linear sensitivities, as in the field.
"""

from __future__ import annotations

from collections.abc import Mapping

from controls.testing import lv_feeder, power_flow
from controls.voltage import (
    DgLimits,
    EssLimits,
    VoltageController,
    VoltageLimits,
    VoltageMeasurements,
    VoltageSetpoints,
)

FEEDER = lv_feeder()
MODEL = FEEDER.sensitivities()
PV_NODES = {4: 30.0, 5: 30.0, 6: 40.0, 8: 30.0}
ESS_NODE = 6


def limits(
    q_kvar: float = 15.0, ess_kw: float = 20.0, curtailable: bool = True, **band: float
) -> VoltageLimits:
    """PV inverters at `PV_NODES` with ±`q_kvar`, one storage of ±`ess_kw` at node 6."""
    dg = {n: DgLimits(-q_kvar, q_kvar, curtailable=curtailable) for n in PV_NODES}
    ess = {ESS_NODE: EssLimits(-ess_kw, ess_kw, energy_kwh=40.0, soc_min=0.1, soc_max=0.9)}
    return VoltageLimits(dg=dg, ess=ess, **band)


def plant_voltages(
    setpoints: VoltageSetpoints | None,
    pv_kw: Mapping[int, float],
    load_kw: Mapping[int, float],
    v_slack_pu: float,
) -> dict[int, float]:
    """Voltages of the real (non-linear) feeder with the set-points applied."""
    p = {n: -load for n, load in load_kw.items()}
    q: dict[int, float] = {}
    for node, available in pv_kw.items():
        applied = setpoints.active_power.get(node, available) if setpoints else available
        p[node] = p.get(node, 0.0) + min(applied, available)
    if setpoints:
        for node, value in setpoints.active_power_ess.items():
            p[node] = p.get(node, 0.0) + value
        q.update(setpoints.reactive_power)
    return power_flow(FEEDER, p, q, v_slack_pu=v_slack_pu)


def closed_loop(
    controller: VoltageController,
    pv_kw: Mapping[int, float],
    load_kw: Mapping[int, float],
    v_slack_pu: float,
    steps: int,
) -> tuple[dict[int, float], VoltageSetpoints]:
    """Run measure -> control -> apply `steps` times; the final voltages and set-points."""
    setpoints = None
    for _ in range(steps):
        voltages = plant_voltages(setpoints, pv_kw, load_kw, v_slack_pu)
        setpoints = controller.step(VoltageMeasurements(voltages, pv_kw))
    return plant_voltages(setpoints, pv_kw, load_kw, v_slack_pu), setpoints


def within(setpoints: VoltageSetpoints, lim: VoltageLimits, pv_kw: Mapping[int, float]) -> bool:
    """Every set-point inside its asset's limits (with a float tolerance)."""
    eps = 1e-9
    q_ok = all(
        lim.dg[n].q_min_kvar - eps <= q <= lim.dg[n].q_max_kvar + eps
        for n, q in setpoints.reactive_power.items()
    )
    ess_ok = all(
        lim.ess[n].p_min_kw - eps <= p <= lim.ess[n].p_max_kw + eps
        for n, p in setpoints.active_power_ess.items()
    )
    pv_ok = all(
        -eps <= p <= min(pv_kw.get(n, 0.0), lim.dg[n].p_max_kw) + eps
        for n, p in setpoints.active_power.items()
    )
    return q_ok and ess_ok and pv_ok
