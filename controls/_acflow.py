"""The full AC power flow of a radial feeder, vectorised: what the linear model approximates.

A balanced radial feeder, per phase, solved by the backward/forward sweep (Kersting,
"Distribution System Modeling and Analysis", ch. 10): node currents
I_k = conj(S_k / V_k) from the injections, branch currents as the sums over each
subtree (the same triangular solve `controls._lindistflow.RadialModel.up` uses for
branch flows), then node voltages V = V_slack + Σ z_l·I_l along the path from the
slack (`RadialModel.down`), repeated until the voltages settle. Columns of 2-d inputs
are separate cases (e.g. the steps of an MPC horizon), solved together.

The MPC checks its plans with it: the linear (LinDistFlow) model drops the voltage
drop across each line that is in quadrature with the voltage, and the 1/V scaling of
currents, so a plan that is inside the band on the linear model can leave it on the
real feeder. `controls.testing.power_flow` is an independent, per-node implementation
of the same sweep, used by the tests to check this one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from controls._lindistflow import RadialModel

MAX_SWEEPS = 100
TOLERANCE_PU = 1e-10


def ac_voltages(
    model: RadialModel,
    p_kw: npt.NDArray[np.float64],
    q_kvar: npt.NDArray[np.float64],
    v_slack_pu: float,
) -> npt.NDArray[np.float64] | None:
    """Node voltage magnitudes (pu) for three-phase injections (kW, kvar, generation +).

    Rows follow `model.nodes`; a 2-d input gives one column per case. None when the
    sweep does not settle (no operating point: the feeder cannot carry the injections).
    """
    if len(model.nodes) == 0:
        return np.zeros_like(p_kw)
    v_base = model.v_nominal_v / math.sqrt(3)
    z = model.r_ohm + 1j * model.x_ohm
    if p_kw.ndim == 2:
        z = z[:, None]
    s = (p_kw + 1j * q_kvar) * (1e3 / 3)  # per-phase VA
    v_slack = v_slack_pu * v_base
    v = np.full(p_kw.shape, v_slack, dtype=complex)
    for _ in range(MAX_SWEEPS):
        current = np.conj(s / v)
        branch = _solve(model.up, current)
        new = v_slack + _solve(model.down, z * branch)
        if not np.all(np.isfinite(new)):
            return None
        change = float(np.abs(new - v).max(initial=0.0))
        v = new
        if change < TOLERANCE_PU * v_base:
            magnitudes: npt.NDArray[np.float64] = np.abs(v) / v_base
            return magnitudes
    return None


def _solve(
    solve: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    values: npt.NDArray[np.complex128],
) -> npt.NDArray[np.complex128]:
    """A real triangular solve applied to the real and imaginary parts."""
    out: npt.NDArray[np.complex128] = solve(values.real) + 1j * solve(values.imag)
    return out
