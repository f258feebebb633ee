"""Reference models for tests, examples and benchmarks (like `structlog.testing`).

* `power_flow`: a full AC backward/forward-sweep power flow of a radial feeder,
  the "real plant" against which the linear controllers are checked;
* `lv_feeder`: a small LV feeder with rooftop PV, the test case of the docs;
* `simulate_swing`: synthetic frequency and power-imbalance records from the
  aggregate swing equation with damping and a droop governor (docs/domain.md §3.5,
  "Model B"), sampled like a PMU and with Gaussian noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from controls.feeder import Line, RadialFeeder, breadth_first


def power_flow(
    feeder: RadialFeeder,
    p_kw: Mapping[int, float],
    q_kvar: Mapping[int, float] | None = None,
    *,
    v_slack_pu: float = 1.0,
    tol: float = 1e-10,
) -> dict[int, float]:
    """Voltage magnitudes (pu) of a balanced radial feeder for three-phase injections."""
    q_kvar = q_kvar or {}
    ordered = breadth_first(feeder.lines, feeder.slack)
    v_base = feeder.v_nominal_v / math.sqrt(3)
    v = {feeder.slack: complex(v_slack_pu * v_base)}
    v.update({line.child: v[feeder.slack] for line in ordered})
    s = {
        ln.child: complex(p_kw.get(ln.child, 0.0), q_kvar.get(ln.child, 0.0)) * 1e3 / 3
        for ln in ordered
    }
    for _ in range(200):
        up = {n: (s[n] / v[n]).conjugate() for n in s}
        for line in reversed(ordered):
            if line.parent != feeder.slack:
                up[line.parent] += up[line.child]
        change = 0.0
        for line in ordered:
            new = v[line.parent] + complex(line.r_ohm, line.x_ohm) * up[line.child]
            change = max(change, abs(new - v[line.child]))
            v[line.child] = new
        if change < tol * v_base:
            break
    return {n: abs(v[n]) / v_base for n in s}


def lv_feeder() -> RadialFeeder:
    """A 400 V feeder of 8 cable sections (95 mm² Al: 0.32 + j0.08 ohm/km) with one lateral.

    Main line 0-1-2-3-4-5-6 (60 m sections), lateral 3-7-8 (50 m sections).
    """
    main = [Line(i, i + 1, 0.32 * 0.06, 0.08 * 0.06) for i in range(6)]
    lateral = [Line(3, 7, 0.32 * 0.05, 0.08 * 0.05), Line(7, 8, 0.32 * 0.05, 0.08 * 0.05)]
    return RadialFeeder(tuple(main + lateral), v_nominal_v=400.0)


@dataclass(frozen=True)
class SwingRecord:
    """Sampled frequency (Hz) and active-power imbalance (MW) with the truth behind them."""

    t: np.ndarray
    f_hz: np.ndarray
    p_mw: np.ndarray
    h_s: float
    t_event: float
    delta_p_mw: float
    s_base_mw: float
    f0_hz: float


def simulate_swing(
    h_s: float,
    *,
    delta_p_pu: float = -0.05,
    s_base_mw: float = 1000.0,
    f0_hz: float = 50.0,
    damping: float = 1.0,
    droop: float = 0.05,
    t_gov_s: float = 5.0,
    t_event: float = 2.0,
    duration_s: float = 8.0,
    fps: int = 50,
    f_noise_hz: float = 0.0,
    p_noise_rel: float = 0.0,
    f_drift_hz: float = 0.0,
    seed: int = 0,
) -> SwingRecord:
    """Integrate the swing equation (1 ms Euler) and sample it at `fps`.

    `p_noise_rel` is the noise standard deviation as a fraction of |ΔP|; the
    recorded power is the imbalance seen by the rotating masses (step + governor).
    `f_noise_hz` is white measurement noise on the frequency; `f_drift_hz` an
    ambient drift added to it, a Gaussian random walk whose standard deviation
    reaches `f_drift_hz` at the end of the record (the slow wander of a real grid's
    frequency: "±10 mHz of drift" is `f_drift_hz=0.01`).
    """
    dt = 1e-3
    steps = round(duration_s / dt)
    every = round(1 / (fps * dt))
    df, p_gov = 0.0, 0.0
    f_out, p_out = [], []
    for k in range(steps + 1):
        step = delta_p_pu if k * dt >= t_event else 0.0
        if k % every == 0:
            f_out.append(f0_hz + df)
            p_out.append((p_gov + step) * s_base_mw)
        ddf = f0_hz / (2 * h_s) * (p_gov + step - damping * df / f0_hz)
        dp_gov = (-(1 / droop) * df / f0_hz - p_gov) / t_gov_s
        df, p_gov = df + dt * ddf, p_gov + dt * dp_gov
    rng = np.random.default_rng(seed)
    f = np.array(f_out) + rng.normal(0.0, f_noise_hz, len(f_out))
    if f_drift_hz > 0:
        f += np.cumsum(rng.normal(0.0, f_drift_hz / math.sqrt(len(f_out)), len(f_out)))
    p = np.array(p_out) + rng.normal(0.0, p_noise_rel * abs(delta_p_pu) * s_base_mw, len(p_out))
    t = np.arange(len(f_out)) * every * dt
    return SwingRecord(t, f, p, h_s, t_event, delta_p_pu * s_base_mw, s_base_mw, f0_hz)
