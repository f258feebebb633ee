"""XACML benchmark: the whole conformance run, and imported XACML policies against the
same policies written in pbgm/v1.

1. Conformance: `pbgm.xacml.conformance.run` over the suite's directory (every case's
   policy read, checked and compiled, its request read and decided, its response
   compared), on one core; the median of `--rounds` runs. Target: under 5 s.
2. Imported against native: N access policies (one per resource, a read rule for one to
   three groups, a write rule for one admin group, and an obligation naming the reader),
   written once in XACML 3.0 with XACML's functions (as an integrator brings them) and
   once by hand in pbgm/v1 with pbgm's; the XACML is imported (`pbgm.xacml.read_files`)
   and both are decided by `pbgm.pdp.PolicyDecisionPoint` on the same requests, which must
   get the same decisions. Target: the imported policies' p50 and mean within 1.5x of the
   native ones.

Run: `.venv/bin/python -m benchmarks.xacml [--suite DIR] [--policies 1000] [--requests
20000] [--rounds 5]`. Results: `benchmarks/results/xacml.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbgm.model import Request
from pbgm.pdp import PolicyDecisionPoint
from pbgm.policy import policy_set_from_documents
from pbgm.xacml import read_files
from pbgm.xacml.conformance import run

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT.parent / "shared" / "xacml-conformance" / "mandatory"
RESULTS = Path(__file__).parent / "results"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
GROUPS = [f"g{i}" for i in range(100)]
ADMINS = GROUPS[:10]
NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
F1 = "urn:oasis:names:tc:xacml:1.0:function:"
XS = "http://www.w3.org/2001/XMLSchema#string"
SUBJECT = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"
RESOURCE = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource"
ACTION = "urn:oasis:names:tc:xacml:3.0:attribute-category:action"


def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


# --- 1. the conformance run ------------------------------------------------------------------


def conformance(directory: Path, rounds: int) -> dict[str, Any]:
    seconds, passed, total = [], 0, 0
    for _ in range(rounds):
        started = time.perf_counter()
        outcomes = run(directory)
        seconds.append(time.perf_counter() - started)
        passed, total = sum(o.passed for o in outcomes), len(outcomes)
    return {
        "cases": total,
        "passed": passed,
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "target_s": 5.0,
    }


# --- 2. imported XACML against pbgm/v1 --------------------------------------------------------


def _designator(category: str, attribute_id: str) -> str:
    return (
        f'<AttributeDesignator Category="{category}" AttributeId="{attribute_id}" '
        f'DataType="{XS}" MustBePresent="false"/>'
    )


def _string_match(category: str, attribute_id: str, value: str) -> str:
    return (
        f'<AnyOf><AllOf><Match MatchId="{F1}string-equal"><AttributeValue DataType="{XS}">'
        f"{value}</AttributeValue>{_designator(category, attribute_id)}</Match></AllOf></AnyOf>"
    )


def _xacml_rule(rule_id: str, action: str, groups: list[str]) -> str:
    bag = "".join(f'<AttributeValue DataType="{XS}">{g}</AttributeValue>' for g in groups)
    return (
        f'<Rule RuleId="{rule_id}" Effect="Permit"><Target>'
        f"{_string_match(ACTION, 'urn:oasis:names:tc:xacml:1.0:action:action-id', action)}"
        f'</Target><Condition><Apply FunctionId="{F1}string-at-least-one-member-of">'
        f'{_designator(SUBJECT, "groups")}<Apply FunctionId="{F1}string-bag">{bag}</Apply>'
        "</Apply></Condition></Rule>"
    )


def _xacml_policy(k: int, readers: list[str], admin: str) -> str:
    reader = _designator(SUBJECT, "urn:oasis:names:tc:xacml:1.0:subject:subject-id")
    return (
        f'<Policy xmlns="{NS}" PolicyId="policy-{k}" Version="1.0" RuleCombiningAlgId='
        '"urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:deny-overrides"><Target>'
        f"{_string_match(RESOURCE, 'urn:oasis:names:tc:xacml:1.0:resource:resource-id', f'r{k}')}"
        f"</Target>{_xacml_rule('read', 'read', readers)}{_xacml_rule('write', 'write', [admin])}"
        '<ObligationExpressions><ObligationExpression ObligationId="audit" FulfillOn="Permit">'
        f'<AttributeAssignmentExpression AttributeId="reader">{reader}'
        "</AttributeAssignmentExpression></ObligationExpression></ObligationExpressions></Policy>"
    )


def _pbgm_rule(rule_id: str, action: str, groups: list[str]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "effect": "Permit",
        "target": {"action": {"id": action}},
        "condition": {
            "apply": "at-least-one-member-of",
            "args": [{"attr": "subject.groups"}, groups],
        },
    }


def _pbgm_policy(k: int, readers: list[str], admin: str) -> dict[str, Any]:
    return {
        "format": "pbgm/v1",
        "id": f"policy-{k}",
        "type": "access_control",
        "policy_group": "bench",
        "target": {"resource": {"id": f"r{k}"}},
        "rule_combining": "deny-overrides",
        "rules": [_pbgm_rule("read", "read", readers), _pbgm_rule("write", "write", [admin])],
        "obligations": [
            {
                "id": "audit",
                "fulfill_on": "Permit",
                "attributes": {"reader": {"attr": "subject.id"}},
            }
        ],
        "content": {},
    }


def _timed(pdp: PolicyDecisionPoint, requests: list[Request]) -> tuple[list[int], list[str]]:
    times, decisions = [], []
    clock = time.perf_counter_ns
    for request in requests:
        started = clock()
        response = pdp.decide(request, now=NOW)
        times.append(clock() - started)
        decisions.append(response.decision.value)
    return times, decisions


def imported_against_native(policies: int, requests: int, rounds: int) -> dict[str, Any]:
    rng = random.Random(20_260_302)
    plans = [(rng.sample(GROUPS, rng.randint(1, 3)), rng.choice(ADMINS)) for _ in range(policies)]
    native = [_pbgm_policy(k, r, a) for k, (r, a) in enumerate(plans)]
    with tempfile.TemporaryDirectory() as directory:
        for k, (readers, admin) in enumerate(plans):
            (Path(directory) / f"policy-{k}.xml").write_text(_xacml_policy(k, readers, admin))
        started = time.perf_counter()
        imported = read_files([Path(directory)], group="bench").documents
        import_s = time.perf_counter() - started
    header = {"id": "bench", "policy_combining": "deny-unless-permit"}
    engines = {
        "pbgm/v1": PolicyDecisionPoint(policy_set_from_documents(header, native)),
        "imported XACML": PolicyDecisionPoint(policy_set_from_documents(header, imported)),
    }
    stream = []
    for i in range(requests):
        groups = rng.sample(GROUPS, rng.randint(1, 3))
        subject = {"id": f"u{i % 1000}", "groups": groups}
        resource = {"id": f"r{rng.randrange(policies)}"}
        stream.append(Request(subject, resource, {"id": "read" if rng.random() < 0.8 else "write"}))
    figures: dict[str, dict[str, Any]] = {}
    decided: dict[str, list[str]] = {}
    for name, pdp in engines.items():
        _timed(pdp, stream[: min(2000, len(stream))])  # warm-up
        runs = [_timed(pdp, stream) for _ in range(rounds)]
        decided[name] = runs[0][1]
        p50s = [statistics.median(t) / 1000 for t, _ in runs]
        means = [statistics.fmean(t) / 1000 for t, _ in runs]
        figures[name] = {
            "p50_us": round(statistics.median(p50s), 2),
            "mean_us": round(statistics.median(means), 2),
        }
    if decided["pbgm/v1"] != decided["imported XACML"]:
        raise SystemExit("the imported policies decide differently from the pbgm/v1 ones")
    permitted = decided["pbgm/v1"].count("Permit") / len(stream)
    return {
        "policies": policies,
        "requests": requests,
        "permitted_share": round(permitted, 3),
        "import_s": round(import_s, 3),
        "engines": figures,
        "ratio_p50": round(figures["imported XACML"]["p50_us"] / figures["pbgm/v1"]["p50_us"], 2),
        "ratio_mean": round(
            figures["imported XACML"]["mean_us"] / figures["pbgm/v1"]["mean_us"], 2
        ),
        "target_ratio": 1.5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.xacml", description=__doc__)
    parser.add_argument("--suite", type=Path, default=SUITE)
    parser.add_argument("--policies", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    _pin_one_core()
    results: dict[str, Any] = {"measured": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.suite.is_dir():
        results["conformance"] = conformance(args.suite, args.rounds)
        c = results["conformance"]
        print(
            f"conformance: {c['passed']}/{c['cases']} cases in {c['seconds_median']} s "
            f"(median of {args.rounds}; target < 5 s)"
        )
    else:
        print(f"conformance: no suite at `{args.suite}` (give --suite)")
    results["imported"] = imported_against_native(args.policies, args.requests, args.rounds)
    i = results["imported"]
    for name, figure in i["engines"].items():
        print(f"{name:>15}: p50 {figure['p50_us']} µs, mean {figure['mean_us']} µs")
    print(
        f"imported / native: p50 {i['ratio_p50']}x, mean {i['ratio_mean']}x (target <= 1.5x); "
        f"{i['policies']} policies imported in {i['import_s']} s"
    )
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "xacml.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
