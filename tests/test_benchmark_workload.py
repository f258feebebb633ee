"""The PDP benchmark's workload, reference and engine adapters, at a tiny size.

The benchmark only reports figures for engines that agree with the reference, so
these check that the generator builds the workload of docs/benchmarks.md, that the
reference means what the grants say, and that every adapter (pbgm and each peer)
agrees with it. A peer whose package cannot be imported is skipped, saying so.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.pdp_measure import engines, measure
from benchmarks.pdp_pbgm import policy_document
from benchmarks.pdp_report import markdown, median_rounds, ratios
from benchmarks.pdp_workload import (
    ADMIN_GROUPS,
    POLICY_TYPES,
    Workload,
    granted,
    make_requests,
    make_workload,
    reference_decide,
)
from pbgm.policy.validate import problems_of

N = 50
REQUESTS = 300
PEER_PACKAGES = {
    "casbin": "casbin",
    "cedar": "cedarpy",
    "cedar-sliced": "cedarpy",
    "opa": "opa_eval",
}


@pytest.fixture(scope="module")
def workload() -> Workload:
    return make_workload(N)


@pytest.fixture(scope="module")
def requests(workload: Workload) -> list[tuple[str, str, str]]:
    return make_requests(workload, REQUESTS, seed=7)


ADMINS = {f"g{i}" for i in range(ADMIN_GROUPS)}

WORKLOAD_FACTS = [
    ("1,000 users u0..u999", lambda w: w.users == [f"u{i}" for i in range(1_000)]),
    ("100 groups g0..g99", lambda w: w.groups == [f"g{i}" for i in range(100)]),
    ("each user in 1 to 3 distinct groups", lambda w: all(
        1 <= len(set(g)) == len(g) <= 3 for g in w.memberships.values())),
    ("N policies with ids policy:<k>", lambda w: [p.id for p in w.policies] == [
        f"policy:{k}" for k in range(N)]),
    ("every type among the four", lambda w: {p.type for p in w.policies} == set(POLICY_TYPES)),
    ("read to 1 to 3 groups", lambda w: all(1 <= len(p.read_groups) <= 3 for p in w.policies)),
    ("read to 0 to 2 users", lambda w: all(0 <= len(p.read_users) <= 2 for p in w.policies)),
    ("write to one admin group", lambda w: all(p.write_group in ADMINS for p in w.policies)),
]  # fmt: skip


@pytest.mark.parametrize(("what", "holds"), WORKLOAD_FACTS, ids=[f[0] for f in WORKLOAD_FACTS])
def test_the_workload_is_the_documented_one(what, holds, workload):
    assert holds(workload), what


def test_the_same_seed_gives_the_same_workload_and_requests(workload, requests):
    again = make_workload(N)
    assert again.policies == workload.policies
    assert again.memberships == workload.memberships
    assert make_requests(again, REQUESTS, seed=7) == requests
    assert make_requests(again, REQUESTS, seed=8) != requests


def test_the_request_mix_is_80_percent_read_and_about_70_percent_permitted(workload, requests):
    actions = Counter(action for _, action, _ in requests)
    permitted = sum(reference_decide(workload, *r) for r in requests)
    assert set(actions) == {"read", "write"}
    assert 0.72 <= actions["read"] / REQUESTS <= 0.88
    assert 0.62 <= permitted / REQUESTS <= 0.78


def test_the_reference_agrees_with_the_grants_on_every_user(workload):
    for policy in workload.policies[:10]:
        for action in ("read", "write"):
            holders = granted(workload, action, policy.id)
            decided = {
                u for u in workload.users if reference_decide(workload, u, action, policy.id)
            }
            assert decided == holders


REFERENCE_CASES = [
    ("a direct read user may read", "user", "read", True),
    ("a direct read user may not write unless admin", "user-not-admin", "write", False),
    ("a member of a read group may read", "group", "read", True),
    ("a member of the write group may write", "admin", "write", True),
    ("write includes read", "admin", "read", True),
    ("an unknown subject is denied", "nobody", "read", False),
    ("an unknown action is denied", "admin", "delete", False),
]


def _subject(workload: Workload, kind: str) -> tuple[str, str]:
    """A (subject, resource) pair of the kind the case needs."""
    for p in workload.policies:
        admins = set(workload.members[p.write_group])
        if kind == "user" and p.read_users:
            return p.read_users[0], p.id
        if kind == "user-not-admin":
            users = [u for u in p.read_users if u not in admins]
            if users:
                return users[0], p.id
        if kind == "group" and workload.members[p.read_groups[0]]:
            return workload.members[p.read_groups[0]][0], p.id
        if kind == "admin" and admins:
            return workload.members[p.write_group][0], p.id
    return "u-unknown", workload.policies[0].id


@pytest.mark.parametrize(
    ("what", "kind", "action", "expected"), REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES]
)
def test_reference_decisions(what, kind, action, expected, workload):
    subject, resource = _subject(workload, kind)
    assert reference_decide(workload, subject, action, resource) is expected, what


def test_the_pbgm_documents_are_valid_apart_from_their_empty_content(workload):
    # The content is left out: the decision does not read it and the peers load none.
    problems = [q for p in workload.policies for q in problems_of(policy_document(p))]
    assert [q for q in problems if not q.path.startswith("$.content")] == []


def test_the_reference_denies_an_unknown_resource(workload):
    assert reference_decide(workload, "u0", "read", "policy:unknown") is False


@pytest.mark.parametrize("name", list(engines()))
def test_every_engine_agrees_with_the_reference(name, tmp_path: Path):
    package = PEER_PACKAGES.get(name)
    if package is not None and importlib.util.find_spec(package) is None:
        pytest.skip(f"the `{package}` package of the `{name}` peer cannot be imported")
    row = measure(name, N, REQUESTS, warmup=50)
    assert row["mismatches"] == 0
    assert row["measured"] == REQUESTS
    assert row["p50_us"] <= row["p99_us"]
    assert 0.6 <= row["permitted_share"] <= 0.8


def test_an_engine_with_a_mismatch_gets_no_figures_and_no_ratio():
    row = {"engine": "opa", "n": 100, "note": "", "load_s": 0.1, "rss_mb": 1.0}
    good = row | {"p50_us": 10.0, "p99_us": 20.0, "decisions_per_s": 1e5, "measured": 10}
    good |= {"requested": 10, "mismatches": 0}
    ours = good | {"engine": "pbgm-pdp", "decisions_per_s": 3e5}
    report = {"date": "", "requests": 10, "rows": [good | {"mismatches": 2}, ours]}
    report |= {"machine": {"cpu": "", "cores": 2, "platform": "", "python": "", "versions": {}}}
    report["ratios"] = ratios(report["rows"])
    assert report["ratios"]["throughput"][0]["fastest_peer"] is None
    assert "| opa | 100 | mismatch |" in markdown(report)
    report["rows"][0]["mismatches"] = 0
    assert ratios(report["rows"])["throughput"][0]["pbgm-pdp"] == pytest.approx(3.0)


def _row(engine: str, n: int, p50: float, mismatches: int = 0) -> dict:
    return {
        "engine": engine, "n": n, "note": "", "load_s": 0.1, "rss_mb": 1.0, "p50_us": p50,
        "p99_us": 2 * p50, "decisions_per_s": 1e6 / p50, "measured": 10, "requested": 10,
        "mismatches": mismatches,
    }  # fmt: skip


def test_rounds_keep_the_median_round_and_state_the_spread():
    rows = [_row("pbgm-pdp", 100, p) for p in (1.5, 0.9, 1.0)] + [_row("floor", 100, 0.3)]
    (pbgm, floor) = median_rounds(rows)
    assert (pbgm["p50_us"], pbgm["p99_us"]) == (1.0, 2.0)  # one round's figures, not a mix
    assert (pbgm["rounds"], pbgm["p50_min_us"], pbgm["p50_max_us"]) == (3, 0.9, 1.5)
    assert "rounds" not in floor


def test_a_mismatch_in_any_round_leaves_the_engine_without_figures():
    rows = [_row("opa", 100, 10.0), _row("opa", 100, 11.0, mismatches=1)]
    (opa,) = median_rounds(rows)
    assert opa["mismatches"] == 1


def test_the_floor_growth_is_reported_beside_pbgm_and_is_not_a_peer():
    rows = [_row("pbgm-pdp", 100, 1.0), _row("floor", 100, 0.25)]
    rows += [_row("pbgm-pdp", 100_000, 2.0), _row("floor", 100_000, 1.0)]
    result = ratios(rows)
    assert result["p50_growth"]["ratio"] == pytest.approx(2.0)
    assert result["floor_p50_growth"]["ratio"] == pytest.approx(4.0)
    assert result["throughput"][0]["fastest_peer"] is None
    assert result["verdict"]["p50_growth_target_met"] is False
