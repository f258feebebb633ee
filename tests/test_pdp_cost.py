"""The PDP's work per decision does not grow with the number of policies.

Timing is for the benchmarks (`benchmarks/pdp.py`); what a test can hold is the work
itself: the function calls one decision makes, counted by a profiler, on the benchmark's
workload (`benchmarks.pdp_workload`) at two sizes 50x apart. The index must keep that
count the same; a decision point without an index (every policy's target scanned) shows
that the count does see a scan.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from benchmarks.pdp_pbgm import SET_DOCUMENT, PbgmPdpEngine
from benchmarks.pdp_workload import make_workload, reference_decide, streams
from pbgm.model import Decision, Request
from pbgm.pdp import PolicyDecisionPoint

SMALL, LARGE = 100, 5_000
REQUESTS = 500


def calls_per_decision(size: int, **pdp_options: Any) -> list[int]:
    """The function calls (Python and C) of each decision of a request stream."""
    workload = make_workload(size)
    _, triples = streams(workload, 1, REQUESTS)
    engine = PbgmPdpEngine(workload, Path())
    pdp = PolicyDecisionPoint(**pdp_options)
    pdp.load_documents(SET_DOCUMENT, engine.documents)
    counts = []
    for triple in triples:
        request = engine.prepare(triple)
        calls, decision = _counted(lambda r=request: pdp.decide(r).decision, request)
        assert (decision is Decision.PERMIT) is reference_decide(workload, *triple)
        counts.append(calls)
    return counts


def _counted(decide: Callable[[], Decision], request: Request) -> tuple[int, Decision]:
    calls = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        decision = decide()
    finally:
        sys.setprofile(None)
    return calls, decision


@pytest.fixture(scope="module")
def small() -> list[int]:
    return calls_per_decision(SMALL)


def test_a_decision_makes_the_same_calls_among_5000_policies_as_among_100(small):
    large = calls_per_decision(LARGE)
    assert max(large) == max(small)
    assert set(large) <= set(small)


def test_the_count_sees_a_scan(small):
    scanning = calls_per_decision(SMALL, index_threshold=10 * SMALL)
    assert min(scanning) > SMALL > max(small)
