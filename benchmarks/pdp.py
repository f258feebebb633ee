"""PDP benchmark: pbgm's decision point against PyCasbin, Cedar and OPA on one workload.

The workload (`benchmarks.pdp_workload`) is the one of `docs/benchmarks.md`: 1,000 users in
100 groups, N policies granting read to groups and users and write to an admin group,
requests 80 % read / 20 % write, about 70 % permitted. Every engine loads it the way its
users would and must agree with the plain-Python reference on every request; an engine
with a mismatch gets no figure. Each (engine, N) runs in a fresh subprocess
(`benchmarks.pdp_measure`), so that load time and resident memory are its own.

Run: `.venv/bin/python -m benchmarks.pdp [--sizes 100,1000,10000,100000] [--requests 20000]
[--quick] [--engines pbgm-pdp,opa] [--rounds 5]`. With several rounds every (engine, N)
runs once per round, the rounds interleaved, and the table keeps the round with the
median p50 and states the spread: a p50 of about a microsecond moves by half itself
between runs on a shared machine, and one run cannot tell a growth of 1.5 from 2.
Results: `benchmarks/results/pdp.json` and `pdp.md`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import pdp_report
from benchmarks.pdp_measure import DECIDE_BUDGET_S, LOAD_LIMIT_S, engines, measure

SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000)
REQUESTS = 20_000
QUICK_REQUESTS = 5_000
QUICK_DECIDE_BUDGET_S = 10.0
RESULTS = Path(__file__).parent / "results"
CHILD_GRACE_S = 600.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pdp", description=__doc__)
    parser.add_argument("--sizes", help="policy counts, comma-separated (default: 100 to 100k)")
    parser.add_argument("--requests", type=int, help=f"measured requests (default {REQUESTS})")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000, 5,000 requests")
    parser.add_argument("--engines", help="engine names, comma-separated (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for results")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every (engine, N)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: one engine, one size
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--decide-budget", type=float, default=DECIDE_BUDGET_S, help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def _plan(args: argparse.Namespace) -> tuple[list[int], int, list[str], float]:
    sizes = list(QUICK_SIZES if args.quick else SIZES)
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    requests = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    known = list(engines())
    names = [n.strip() for n in args.engines.split(",")] if args.engines else known
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(known)}")
    budget = QUICK_DECIDE_BUDGET_S if args.quick else args.decide_budget
    return sizes, requests, names, budget


def _child(name: str, size: int, requests: int, budget: float) -> dict[str, Any]:
    """Run one (engine, size) in a fresh interpreter and read its JSON line."""
    command = [sys.executable, "-m", "benchmarks.pdp", "--one", name, "--size", str(size)]
    command += ["--requests", str(requests), "--decide-budget", str(budget)]
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=LOAD_LIMIT_S + CHILD_GRACE_S
        )
    except subprocess.TimeoutExpired:
        return {"engine": name, "n": size, "skipped": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"engine": name, "n": size, "error": tail}
    return {"n": size, **json.loads(lines[-1])}


def run(
    sizes: list[int], requests: int, names: list[str], budget: float, rounds: int = 1
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(rounds):
        for size in sizes:
            for name in names:
                start = time.perf_counter()
                row = _child(name, size, requests, budget)
                row["wall_s"] = time.perf_counter() - start
                print(pdp_report.progress(row), flush=True)
                rows.append(row)
    return pdp_report.median_rounds(rows)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    if args.one:
        row = measure(args.one, args.size, args.requests, decide_budget=args.decide_budget)
        print(json.dumps(row))
        return
    sizes, requests, names, budget = _plan(args)
    started = time.time()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    rows = run(sizes, requests, names, budget, args.rounds)
    report = pdp_report.build(rows, requests=requests, started=started, rounds=args.rounds)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "pdp.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = pdp_report.markdown(report)
    (args.output / "pdp.md").write_text(markdown)
    print()
    print(markdown)
    print(f"results written to {args.output / 'pdp.json'} and {args.output / 'pdp.md'}")


if __name__ == "__main__":
    main()
