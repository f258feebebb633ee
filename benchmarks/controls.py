"""Benchmark: one step of each control module at 10, 100 and 1,000 nodes.

Each controller is timed beside a plain numpy baseline of the same arithmetic
without the controller's constraints, checks and bookkeeping, and reported as a
ratio (docs/benchmarks.md: absolute times drift on shared machines):

* voltage: `VoltageController.step` (LP with limits, tiers, lazy rows) vs the
  sensitivity product and an unconstrained least-squares Q;
* mpc: `MpcVoltageController.step` (horizon 4) vs open-loop products over the
  horizon and a least-squares Q per step;
* ffr, agc: one `step` vs a vector share-and-clip;
* metering: `meter_regulation` over 10 s at 50 fps per device vs the correlation
  of first differences;
* inertia: `InertiaEstimator.run` per record (detection + least squares) vs a
  `polyfit` slope at the known onset.

Voltage and MPC are measured in both forms of the same feeder model: `dense`
(hand-made `Sensitivities`, n x n matrices in the LP) and `lindistflow` (the
`RadialFeeder`, branch-flow LP with O(n) non-zeros). "diff" is the largest
difference between the two forms' set-points (kW / kvar, whole MPC plan); the
forms must agree, like peers in the PDP benchmark. "cpu ms" is the controller's
process time, steadier than the wall time on a shared machine.

"nodes" is feeder nodes (voltage, mpc), VPP units (ffr, agc), metered devices,
or PMU records (inertia: 10 and 100; each costs about 50 ms, mostly the bootstrap of
its interval). PMU parsing has its own benchmark (`benchmarks.pmu`).
The MPC's LP forms are compared with its AC check off (the dense form has no feeder
to check with); the row `lindistflow+ac` is the default MPC, whose plans are checked
and corrected with the AC power flow until they hold the band on the real feeder.

Inertia accuracy (not a timing): `InertiaEstimator.run` on simulated records
(`controls.testing.simulate_swing`, 5 % generation loss at t = 2 s, 8 s records) for
H in {1.5, 3, 5.5, 7, 9} s at 10, 50 and 100 frames/s, `--inertia-runs` seeds each, in
two noise cases:

* `noise`: white noise of 2 % of |ΔP| on the power and of 2 % of the largest
  frequency excursion in the first second on the frequency;
* `drift`: ambient drift, a random walk reaching ±10 mHz (one standard deviation)
  over the record, plus 1 mHz white noise on the frequency and 1 % on the power.

Per case: events missed (no estimate within 0.1 s of the true onset), the p95 and
largest |error|, the share of runs within 5 % and the share whose stated 95 %
interval [h_low_s, h_high_s] holds the true H; the rms error beside the Cramér-Rao
bound of the case (`cramer_rao`: the least spread any unbiased estimator of the same
samples can have) and the share of runs such an estimator must leave beyond 5 %.
Targets (least squares): within 5 %, nothing missed, interval coverage >= 90 %; under
the drift at H = 7 and 9 s the bound itself leaves 0.25 % and 2.6-2.8 % of runs beyond
5 % (docs/controls.md, "Inertia estimation").

Run: `python -m benchmarks.controls [--part timing|inertia] [--inertia-runs N]`; writes
`benchmarks/results/controls.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from controls import (
    AutomaticGenerationControl,
    DgLimits,
    EssLimits,
    FastFrequencyResponse,
    FrequencyLimits,
    InertiaEstimate,
    InertiaEstimator,
    InertiaLimits,
    MpcForecast,
    MpcLimits,
    MpcState,
    MpcVoltageController,
    RadialFeeder,
    UnitLimits,
    VoltageController,
    VoltageLimits,
    VoltageMeasurements,
    VppMeasurement,
    chain_feeder,
    meter_regulation,
)
from controls.feeder import Sensitivities
from controls.testing import simulate_swing

SIZES = (10, 100, 1000)
FORMS = ("dense", "lindistflow")
INERTIA_H = (1.5, 3.0, 5.5, 7.0, 9.0)
INERTIA_FPS = (10, 50, 100)
INERTIA_CASES = ("noise", "drift")
RESULTS = Path(__file__).parent / "results" / "controls.json"
BUDGET_S = 0.4


def timed(fn: Callable[[], Any], budget_s: float = BUDGET_S, most: int = 25) -> float:
    """Median wall time of `fn` in ms: repeated within a time budget (3 runs at least),
    or a single run when one run alone exceeds the budget."""
    return timed_cpu(fn, budget_s, most)[0]


def timed_cpu(
    fn: Callable[[], Any], budget_s: float = BUDGET_S, most: int = 25
) -> tuple[float, float]:
    """Median wall and CPU (process) time of `fn` in ms, repeated as `timed` says.

    On a shared machine the CPU time drifts much less than the wall time.
    """
    times: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while (
        not times
        or (time.perf_counter() - start < budget_s and len(times) < most)
        or (len(times) < 3 and times[0] < budget_s * 1e3)
    ):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(times), statistics.median(cpu)


def feeder_case(n: int) -> tuple[Sensitivities, VoltageLimits, dict[int, float], np.ndarray]:
    """A tree feeder of n nodes with PV on every 4th node sized to reach ~1.07 pu at noon."""
    k = max(2, round(math.sqrt(n)))
    r = 0.25 / (n / k + k)
    model = chain_feeder(n, r_ohm=r, x_ohm=r / 4, branch_every=k).sensitivities()
    pv_nodes = [node for node in model.nodes if node % 4 == 0] or [model.nodes[-1]]
    pattern = model.vector(dict.fromkeys(pv_nodes, 1.0))
    scale = 0.05 / float((model.dv_dp @ pattern).max())
    pv = dict.fromkeys(pv_nodes, scale)
    q_max = 0.4 * scale
    dg = {node: DgLimits(-q_max, q_max, curtailable=True) for node in pv_nodes}
    ess = {node: EssLimits(-scale, scale, energy_kwh=4 * scale) for node in pv_nodes[::5]}
    voltages = model.voltages(model.vector(pv), np.zeros(n), 1.02)
    return model, VoltageLimits(dg=dg, ess=ess), pv, voltages


def forms(model: Sensitivities) -> dict[str, Sensitivities | RadialFeeder]:
    """The same feeder as plain matrices and as the radial feeder they came from."""
    assert model.feeder is not None
    return {"dense": dataclasses.replace(model, feeder=None), "lindistflow": model.feeder}


def bench_voltage(n: int) -> list[dict[str, Any]]:
    model, limits, pv, v = feeder_case(n)
    measurements = VoltageMeasurements(dict(zip(model.nodes, v.tolist(), strict=True)), pv)
    cols = model.positions(sorted(limits.dg))
    target = np.minimum(v, limits.v_max)

    def baseline() -> None:
        a = model.dv_dq[:, cols]
        dq = np.linalg.lstsq(a, target - v, rcond=None)[0]
        _ = v + a @ dq

    def steps(feeder: Sensitivities | RadialFeeder) -> Callable[[], np.ndarray]:
        controller = VoltageController(feeder, limits)

        def step() -> np.ndarray:
            controller.reset()
            s = controller.step(measurements)
            parts = (s.reactive_power, s.active_power, s.active_power_ess)
            return np.array([value for part in parts for _, value in sorted(part.items())])

        return step

    return _forms("voltage", n, forms(model), steps, baseline, "sensitivity product + lstsq")


def bench_mpc(n: int, horizon: int = 4) -> list[dict[str, Any]]:
    model, limits, pv, _ = feeder_case(n)
    scales = [0.7, 1.0, 1.0, 0.8][:horizon]
    forecast = MpcForecast(
        [dict.fromkeys(model.nodes, 0.0)] * horizon,
        [{node: p * s for node, p in pv.items()} for s in scales],
    )
    mpc_limits = MpcLimits(limits)
    state = MpcState(1.02, dict.fromkeys(limits.ess, 0.5))
    cols = model.positions(sorted(limits.dg))

    def steps(
        feeder: Sensitivities | RadialFeeder, ac_check: bool = False
    ) -> Callable[[], np.ndarray]:
        def step() -> np.ndarray:
            mpc = MpcVoltageController(feeder, mpc_limits, ac_check=ac_check)
            plan = mpc.step(forecast, state)
            parts = (plan.q_kvar, plan.p_ess_kw, plan.p_pv_kw)
            return np.array([x for part in parts for _, xs in sorted(part.items()) for x in xs])

        return step

    def baseline() -> None:
        v = [
            model.voltages(model.vector(forecast.pv_kw[k]), np.zeros(n), 1.02)
            for k in range(horizon)
        ]
        a = model.dv_dq[:, cols]
        for vk in v:
            np.linalg.lstsq(a, np.minimum(vk, 1.05) - vk, rcond=None)

    what = "open-loop products + lstsq per step"
    rows = _forms("mpc", n, forms(model), steps, baseline, what)
    assert model.feeder is not None
    checked = _row("mpc", n, steps(model.feeder, ac_check=True), baseline, what,
                   form="lindistflow+ac", baseline_ms=rows[0]["baseline_ms"])  # fmt: skip
    return [*rows, checked]


def frequency_case(n: int) -> tuple[FrequencyLimits, VppMeasurement]:
    rng = np.random.default_rng(n)
    units = {f"u{i}": UnitLimits(0.0, float(rng.uniform(50, 500)), droop=0.05) for i in range(n)}
    p = {u: lim.p_max_kw / 2 for u, lim in units.items()}
    return FrequencyLimits(units), VppMeasurement(49.85, p, time_s=1.0)


def bench_ffr(n: int) -> dict[str, Any]:
    limits, m = frequency_case(n)
    ffr = FastFrequencyResponse(limits)
    high = np.array([u.p_max_kw for u in limits.units.values()])
    p = np.array(list(m.p_kw.values()))

    def baseline() -> None:
        room = high - p
        delta = -0.4 * p.sum() * (m.frequency_hz - 50.0) * room / room.sum()
        np.clip(p + delta, 0.0, high)

    return _row("ffr", n, lambda: ffr.step(m), baseline, "vector share and clip")


def bench_agc(n: int) -> dict[str, Any]:
    limits, m = frequency_case(n)
    agc = AutomaticGenerationControl(limits)
    high = np.array([u.p_max_kw for u in limits.units.values()])
    weight = np.array([u.rating_kw / u.droop for u in limits.units.values()])
    p = np.array(list(m.p_kw.values()))

    def baseline() -> None:
        ace = limits.bias_kw_per_hz * (m.frequency_hz - 50.0)
        np.clip(p - 0.1 * ace * weight / weight.sum(), 0.0, high)

    return _row("agc", n, lambda: agc.step(m), baseline, "vector share and clip")


def bench_metering(n: int) -> dict[str, Any]:
    record = simulate_swing(4.0, duration_s=10.0, f_noise_hz=0.001, seed=1)
    rng = np.random.default_rng(2)
    gains = rng.uniform(-200, 400, n)
    devices = {f"d{i}": 100.0 - g * (record.f_hz - 50.0) for i, g in enumerate(gains)}
    df = np.diff(record.f_hz)

    def baseline() -> None:
        for p in devices.values():
            np.corrcoef(np.diff(p), df)

    def step() -> None:
        meter_regulation(record.t, record.f_hz, devices)

    return _row("metering", n, step, baseline, "corrcoef of first differences")


def bench_inertia(n: int) -> dict[str, Any]:
    records = [simulate_swing(4.0, f_noise_hz=0.001, p_noise_rel=0.01, seed=s) for s in range(3)]
    estimator = InertiaEstimator(records[0].s_base_mw)
    jobs = [records[i % 3] for i in range(n)]

    def step() -> None:
        for r in jobs:
            estimator.run(r.t, r.f_hz, r.p_mw)

    def baseline() -> None:
        for r in jobs:
            window = (r.t >= r.t_event) & (r.t <= r.t_event + 0.2)
            slope = np.polyfit(r.t[window], r.f_hz[window], 1)[0]
            _ = r.delta_p_mw * r.f0_hz / (2 * r.s_base_mw * slope)

    return _row("inertia", n, step, baseline, "polyfit at the known onset")


def _forms(
    module: str,
    n: int,
    models: dict[str, Sensitivities | RadialFeeder],
    steps: Callable[[Sensitivities | RadialFeeder], Callable[[], np.ndarray]],
    baseline: Callable[[], Any],
    what: str,
) -> list[dict[str, Any]]:
    """One row per form, each with the largest set-point difference to the dense form."""
    results: dict[str, np.ndarray] = {}

    def keeping(form: str) -> Callable[[], None]:
        step = steps(models[form])
        return lambda: results.__setitem__(form, step())

    baseline_ms = timed(baseline)
    rows = [
        _row(module, n, keeping(form), baseline, what, form=form, baseline_ms=baseline_ms)
        for form in FORMS
    ]
    for row in rows:
        row["diff"] = float(np.abs(results[row["form"]] - results["dense"]).max(initial=0.0))
    return rows


def _row(
    module: str, n: int, step: Callable[[], Any], baseline: Callable[[], Any], what: str,
    *, form: str = "-", baseline_ms: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    controller_ms, cpu_ms = timed_cpu(step)
    baseline_ms = timed(baseline) if baseline_ms is None else baseline_ms
    return {
        "module": module,
        "form": form,
        "nodes": n,
        "controller_ms": round(controller_ms, 3),
        "controller_cpu_ms": round(cpu_ms, 3),
        "baseline": what,
        "baseline_ms": round(baseline_ms, 4),
        "ratio": round(controller_ms / baseline_ms, 1) if baseline_ms > 0 else None,
    }


def run() -> list[dict[str, Any]]:
    rows = [row for bench in (bench_voltage, bench_mpc) for n in SIZES for row in bench(n)]
    benches = (bench_ffr, bench_agc, bench_metering)
    rows += [bench(n) for bench in benches for n in SIZES]
    return rows + [bench_inertia(n) for n in SIZES[:2]]  # ~50 ms per record: 1,000 is a minute


def inertia_noise(case: str, h_s: float, fps: int) -> dict[str, float]:
    """`simulate_swing`'s noise settings of an accuracy case (see the module docstring)."""
    if case == "noise":
        clean = simulate_swing(h_s, fps=fps)
        first_second = (clean.t >= clean.t_event) & (clean.t <= clean.t_event + 1.0)
        f_noise = 0.02 * float(np.abs(clean.f_hz[first_second] - clean.f0_hz).max())
        return {"f_noise_hz": f_noise, "p_noise_rel": 0.02}
    return {"f_noise_hz": 0.001, "p_noise_rel": 0.01, "f_drift_hz": 0.01}


def inertia_record(case: str, h_s: float, fps: int, seed: int) -> Any:
    """One simulated record of an accuracy case (see the module docstring)."""
    return simulate_swing(h_s, fps=fps, seed=seed, **inertia_noise(case, h_s, fps))


def cramer_rao(case: str, h_s: float, fps: int, method: str) -> float:
    """The Cramér-Rao bound on the relative standard deviation of H (a fraction).

    The least any unbiased estimator can achieve from the samples the method uses
    (`baseline_window_s` before the onset, `ls_window_s` or, for the swing,
    `fit_window_s` after it, up to the record's end) when H, the damping and a
    frequency trend are unknown and the noise is known: the inverse Fisher information
    of the integral swing equation in first differences, whose noise is the white
    frequency noise (differenced), the random walk's increments and the power noise
    carried through the energy integral. Sampling faster averages the white noise
    away but not the random walk: a drift bound does not fall with the frame rate.
    """
    record = simulate_swing(h_s, fps=fps)
    noise = inertia_noise(case, h_s, fps)
    limits = InertiaLimits()
    after = limits.fit_window_s if method == "swing" else limits.ls_window_s
    t0, eps = record.t_event, 0.5 / fps
    keep = (record.t >= t0 - limits.baseline_window_s - eps) & (record.t <= t0 + after + eps)
    t, f, p = record.t[keep], record.f_hz[keep], record.p_mw[keep]
    post = t >= t0 - eps
    scale = record.f0_hz / (2 * record.s_base_mw)
    steps = np.diff(t) * post[1:] * post[:-1]  # trapezoids inside the post-event part
    energy = np.concatenate([[0.0], np.cumsum(steps * (p[1:] + p[:-1]) / 2)])
    damped = np.concatenate([[0.0], np.cumsum(steps * (f[1:] + f[:-1] - 2 * record.f0_hz) / 2)])
    x = np.column_stack([np.diff(scale * energy), np.diff(-0.5 * damped), np.ones(t.size - 1)])
    m = t.size - 1
    walk = noise.get("f_drift_hz", 0.0) / math.sqrt(record.t.size)
    cov = noise["f_noise_hz"] ** 2 * (2 * np.eye(m) - np.eye(m, k=1) - np.eye(m, k=-1))
    cov += walk**2 * np.eye(m)
    carried = np.zeros((m, m + 1))  # how each power sample's noise enters a difference
    for k in range(m):
        carried[k, k] = carried[k, k + 1] = steps[k] / 2 * scale / h_s
    p_noise = noise["p_noise_rel"] * abs(record.delta_p_mw)
    cov += p_noise**2 * carried @ carried.T
    theta_var = float(np.linalg.inv(x.T @ np.linalg.solve(cov, x))[0, 0])
    return math.sqrt(theta_var) * h_s  # relative: sd(θ)/θ with θ = 1/H


def inertia_accuracy(runs: int) -> list[dict[str, Any]]:
    """Accuracy, misses and interval coverage of both methods over the case grid."""
    rows = []
    for case in INERTIA_CASES:
        for fps in INERTIA_FPS:
            for h_s in INERTIA_H:
                records = [inertia_record(case, h_s, fps, seed) for seed in range(runs)]
                for method in ("least_squares", "swing"):
                    rows.append(_accuracy_row(case, fps, h_s, method, records))
    return rows


def _accuracy_row(
    case: str, fps: int, h_s: float, method: str, records: list[Any]
) -> dict[str, Any]:
    errors, held, missed = [], 0, 0
    started = time.process_time()
    for record in records:
        estimator = InertiaEstimator(record.s_base_mw, record.f0_hz)
        found = [
            r for r in estimator.run(record.t, record.f_hz, record.p_mw, method=method)
            if isinstance(r, InertiaEstimate) and abs(r.t0 - record.t_event) < 0.1
        ]  # fmt: skip
        if not found:
            missed += 1
            continue
        errors.append(found[0].h_s / h_s - 1.0)
        held += found[0].h_low_s <= h_s <= found[0].h_high_s
    magnitude = np.abs(errors) if errors else np.array([math.nan])
    bound = cramer_rao(case, h_s, fps, method)
    rms = float(np.sqrt(np.mean(np.square(errors)))) if errors else math.nan
    return {
        "case": case,
        "fps": fps,
        "h_s": h_s,
        "method": method,
        "runs": len(records),
        "missed": missed,
        "mean_error_pct": round(float(np.mean(errors)) * 100, 2) if errors else None,
        "p95_abs_error_pct": round(float(np.percentile(magnitude, 95)) * 100, 2),
        "max_abs_error_pct": round(float(magnitude.max()) * 100, 2),
        "within_5pct": round(float(np.mean(magnitude <= 0.05)), 3),
        "coverage_95": round(held / len(records), 3),
        "rms_error_pct": round(rms * 100, 2),
        "cramer_rao_pct": round(bound * 100, 2),
        "rms_over_bound": round(rms / bound, 2),
        # the least share of runs beyond 5 % of any unbiased estimator (at the bound)
        "least_beyond_5pct": round(2 * float(norm.cdf(-0.05 / bound)), 4),
        "cpu_ms_per_record": round((time.process_time() - started) * 1e3 / len(records), 1),
    }


def _print_accuracy(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':6} {'fps':>4} {'H s':>5} {'method':14} {'missed':>6} {'mean %':>7}"
        f" {'p95 |e| %':>9} {'max |e| %':>9} {'<=5 %':>6} {'cover':>6} {'rms %':>6}"
        f" {'CRB %':>6} {'rms/CRB':>7} {'>5 % at CRB':>11} {'cpu ms':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:6} {r['fps']:>4} {r['h_s']:>5} {r['method']:14} {r['missed']:>6}"
            f" {r['mean_error_pct'] if r['mean_error_pct'] is not None else '-':>7}"
            f" {r['p95_abs_error_pct']:>9} {r['max_abs_error_pct']:>9} {r['within_5pct']:>6}"
            f" {r['coverage_95']:>6} {r['rms_error_pct']:>6} {r['cramer_rao_pct']:>6}"
            f" {r['rms_over_bound']:>7} {r['least_beyond_5pct']:>11.2%} {r['cpu_ms_per_record']:>7}"
        )


def _print(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'module':9} {'form':12} {'nodes':>6} {'step ms':>10} {'cpu ms':>10} {'numpy ms':>10}"
        f" {'ratio':>8} {'diff':>8}  baseline"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        diff = f"{r['diff']:.1e}" if "diff" in r else "-"
        print(
            f"{r['module']:9} {r['form']:12} {r['nodes']:>6} {r['controller_ms']:>10.3f}"
            f" {r['controller_cpu_ms']:>10.3f} {r['baseline_ms']:>10.4f} {r['ratio']:>8}"
            f" {diff:>8}  {r['baseline']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="control module benchmarks")
    parser.add_argument("--part", choices=("all", "timing", "inertia"), default="all")
    parser.add_argument("--inertia-runs", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    payload: dict[str, Any] = {}
    if args.part in ("all", "timing"):
        payload["controls"] = run()
        _print(payload["controls"])
    if args.part in ("all", "inertia"):
        payload["inertia_accuracy"] = inertia_accuracy(args.inertia_runs)
        print()
        _print_accuracy(payload["inertia_accuracy"])
    payload["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {RESULTS} in {payload['seconds']} s")


if __name__ == "__main__":
    main()
