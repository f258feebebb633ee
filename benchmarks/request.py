"""What `Request`'s type check costs: `pbgm.model.Request` beside the same frozen
dataclass without the check (what `Request` was before), built the way the API, the
relay and the PEP build them (three dict bags). Interleaved rounds, best of each.

Run: `.venv/bin/python -m benchmarks.request [--rounds 15]`; prints both times per
construction and their ratio, writes `benchmarks/results/request.json`.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbgm.model import Request

RESULTS = Path(__file__).parent / "results"
EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Unchecked:
    subject: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    resource: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    action: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    environment: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


def per_call(kind: type, number: int) -> float:
    subject, resource, action = {"id": "u1", "groups": ["g1"]}, {"id": "r1"}, {"id": "read"}

    def build() -> object:
        return kind(subject=subject, resource=resource, action=action)

    return timeit.timeit(build, number=number) / number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args(argv)
    checked, unchecked = [], []
    for _ in range(args.rounds):
        unchecked.append(per_call(Unchecked, args.number))
        checked.append(per_call(Request, args.number))
    result = {
        "unchecked_ns": min(unchecked) * 1e9,
        "checked_ns": min(checked) * 1e9,
        "ratio": min(checked) / min(unchecked),
    }
    print(
        f"Request without the check {result['unchecked_ns']:.0f} ns, with it "
        f"{result['checked_ns']:.0f} ns: {result['ratio']:.2f}x"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "request.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
