"""A compiled policy set changed in place (`CompiledPolicySet.updated`) decides exactly as
one compiled from scratch on the final policies, and as the naive reference PDP; lazy
policies (compiled when first reached) decide as compiled ones; and decisions made in
threads while changes are applied never see half a change, never raise, never wait.

The sets and requests are those of the PDP's other property tests (`tests.strategies`
for every shape, `tests.test_pdp_flat` for the shapes of the specialised paths); a
change is a batch of policies added or replaced and ids removed, drawn from a pool of
ids, applied one batch after another.
"""

from __future__ import annotations

import os
import random
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.decision import changes
from pbgm.decision.flat import compile_policy
from pbgm.decision.lazy import LazyPolicy
from pbgm.model import (
    Apply,
    AttributeRef,
    Decision,
    Effect,
    Literal,
    Match,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)
from pbgm.pdp import compile_policy_set, evaluate
from tests import reference_pdp
from tests.strategies import NOW, algorithms, policies, requests
from tests.test_pdp_flat import OBLIGATIONS, flat_policies, flat_requests

EXAMPLES = int(os.environ.get("PBGM_PDP_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None)
POOL = [f"p{i}" for i in range(10)]


def _view(response: Any) -> tuple[Any, ...]:
    ids = response.policy_ids
    return response.decision, response.status.code, response.obligations, response.advice, ids


def _lazy(policy: Policy, threshold: int) -> LazyPolicy:
    def build(source: Policy) -> Any:
        return compile_policy(source, threshold)

    windowed = policy.valid_from is not None or policy.valid_until is not None
    return LazyPolicy(policy.id, policy.target.matches, policy, build, windowed=windowed)


@st.composite
def histories(draw: st.DrawFn, make: Callable[[str], st.SearchStrategy[Policy]]) -> dict:
    """An initial set (in id order or shuffled) and batches of changes."""
    ids = sorted(draw(st.lists(st.sampled_from(POOL), unique=True, max_size=9)))
    initial = [draw(make(i)) for i in ids]
    if draw(st.booleans()):
        initial = draw(st.permutations(initial))
    batches = []
    for _ in range(draw(st.integers(1, 5))):
        upserted = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=3))
        removed = draw(
            st.lists(st.sampled_from([p for p in POOL if p not in upserted]), max_size=2)
        )
        batches.append(([draw(make(i)) for i in upserted], removed))
    header = PolicySet("changing", (), draw(algorithms), obligations=draw(OBLIGATIONS), revision=1)
    return {"initial": initial, "batches": batches, "header": header, "grown": draw(st.booleans())}


def _apply(policies: list[Policy], upserted: list[Policy], removed: list[str]) -> list[Policy]:
    """The documented order: a replaced policy keeps its place; a new one goes where id
    order puts it in a set in id order, else last (new ones in id order)."""
    ordered = all(a.id < b.id for a, b in pairwise(policies))
    by_id = {p.id: p for p in upserted}
    kept = [by_id.pop(p.id, p) for p in policies if p.id not in removed or p.id in by_id]
    if ordered:
        return sorted([*kept, *by_id.values()], key=lambda p: p.id)
    return kept + sorted(by_id.values(), key=lambda p: p.id)


def _check(history: dict, requests_: list[Request], threshold: int, lazy: random.Random | None):
    def nodes(items: list[Policy]) -> list[Any]:
        if lazy is None:
            return items
        return [_lazy(p, threshold) if lazy.random() < 0.5 else p for p in items]

    header, current = history["header"], list(history["initial"])
    if history["grown"]:  # an empty set, then everything added (and put in id order)
        compiled = compile_policy_set(header, index_threshold=threshold).updated(nodes(current))
        current = sorted(current, key=lambda p: p.id)
    else:  # or loaded at once, in the given order
        loaded = replace(header, policies=tuple(current))
        compiled = compile_policy_set(loaded, index_threshold=threshold).updated((), ())
    for step, (upserted, removed) in enumerate(history["batches"], start=2):
        before = compiled
        decided_before = [evaluate(before, request, NOW) for request in requests_]
        compiled = compiled.updated(nodes(upserted), removed, revision=step)
        # the set a change was made from is left as it was, for the decisions still on it
        assert [evaluate(before, request, NOW) for request in requests_] == decided_before
        current = _apply(current, upserted, removed)
        assert [child.id for child in compiled.children] == [p.id for p in current]
        final = replace(header, policies=tuple(current), revision=step)
        scratch = compile_policy_set(final, index_threshold=threshold)
        assert compiled.revision == step
        if lazy is None:
            assert compiled.uses_time == scratch.uses_time
            assert set(compiled.problems) == set(scratch.problems)
            assert set(compiled.leaves or ()) == set(scratch.leaves or ())
        for request in requests_:
            expected = evaluate(scratch, request, NOW)
            assert evaluate(compiled, request, NOW) == expected  # errors included
            assert _view(expected) == _view(reference_pdp.decide(final, request, NOW))


@SETTINGS
@given(
    history=histories(lambda i: policies(i)),
    requests_=st.lists(requests(), min_size=1, max_size=4),
    threshold=st.sampled_from([0, 8]),
    merged=st.booleans(),
    chunked=st.booleans(),
)
def test_a_changed_set_decides_as_one_compiled_from_scratch(
    history, requests_, threshold, merged, chunked
):
    """`merged`: every batch goes through the path of a large change (one merge), not the
    splice of each change that a small batch takes. `chunked`: an ordered set of two or
    more is held in chunks of two once changed (`changes.Children`), as a large one is."""
    saved = changes.SPLICED_AT_MOST, changes.CHUNK, changes.CHUNKED_FROM
    changes.SPLICED_AT_MOST = 0 if merged else saved[0]
    if chunked:
        changes.CHUNK, changes.CHUNKED_FROM = 2, 2
    try:
        _check(history, requests_, threshold, lazy=None)
    finally:
        changes.SPLICED_AT_MOST, changes.CHUNK, changes.CHUNKED_FROM = saved


@SETTINGS
@given(
    history=histories(flat_policies),
    requests_=st.lists(flat_requests(), min_size=1, max_size=4),
    threshold=st.sampled_from([0, 8]),
)
def test_the_specialised_paths_and_leaves_follow_the_changes(history, requests_, threshold):
    _check(history, requests_, threshold, lazy=None)


@SETTINGS
@given(
    history=histories(flat_policies),
    requests_=st.lists(flat_requests(), min_size=1, max_size=4),
    threshold=st.sampled_from([0, 8]),
    seed=st.integers(0, 2**16),
)
def test_lazy_policies_decide_as_compiled_ones(history, requests_, threshold, seed):
    _check(history, requests_, threshold, lazy=random.Random(seed))


# --- changes while deciding ---------------------------------------------------------------


def _grant(i: int, group: str) -> Policy:
    """Policy `p<i>` on resource `r<i>`: read by members of `group` (the flat shape)."""
    members = Apply(
        "at-least-one-member-of", (AttributeRef("subject", "groups"), Literal((group,)))
    )
    rule = Rule(
        "read", Effect.PERMIT, Target((Match("action", "id", frozenset({"read"})),)), members
    )
    target = Target((Match("resource", "id", frozenset({f"r{i}"})),))
    return Policy(f"p{i:05d}", "data_access", "g", (rule,), "deny-unless-permit", target)


def test_decisions_in_threads_never_see_half_a_change():
    """Each change moves every one of 50 policies from group `a` to `b` (or back) in one
    batch; deciding threads must see all 50 in one group or all in the other."""
    size, moved = 2_000, 50
    header = PolicySet("s", (), "deny-unless-permit")
    compiled = compile_policy_set(
        replace(header, policies=tuple(_grant(i, "a") for i in range(size)))
    )
    current = [compiled]
    stop, seen, failures = threading.Event(), [], []
    probes = [Request({"groups": ("a",)}, {"id": f"r{i}"}, {"id": "read"}) for i in range(moved)]

    def decide() -> None:
        try:
            while not stop.is_set():
                snapshot = current[0]  # what the PDP holds: one reference, read once
                permitted = {evaluate(snapshot, probe, NOW).decision for probe in probes}
                seen.append(permitted)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=decide) for _ in range(3)]
    for thread in threads:
        thread.start()
    for step in range(40):
        group = "b" if step % 2 == 0 else "a"
        current[0] = current[0].updated([_grant(i, group) for i in range(moved)])
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures
    assert seen and all(len(decisions) == 1 for decisions in seen)
    assert {Decision.PERMIT, Decision.DENY} >= set().union(*seen)


@SETTINGS
@given(
    initial=st.lists(st.sampled_from(POOL), unique=True),
    batches=st.lists(
        st.tuples(
            st.lists(st.sampled_from(POOL), unique=True, max_size=4),
            st.lists(st.sampled_from(POOL), unique=True, max_size=3),
        ),
        min_size=1,
        max_size=8,
    ),
    chunk=st.sampled_from([1, 2, 3]),
)
def test_chunked_children_change_as_a_sorted_list_does(initial, batches, chunk):
    """`Children.changed` against a sorted list: ids replaced in place, new ones where id
    order puts them, removed ones gone (and returned), chunks split and dropped as they
    grow and empty; the sequence changed from stays as it was."""
    saved = changes.CHUNK
    changes.CHUNK = chunk
    try:
        model = {i: ("v0", i) for i in initial}
        children = changes.Children.of([_Child(i, "v0") for i in sorted(initial)])
        for version, (upserted, dropped) in enumerate(batches, start=1):
            replacing = {i: _Child(i, f"v{version}") for i in upserted}
            dropping = set(dropped) - replacing.keys()
            before = [(c.id, c.tag) for c in children]
            changed, gone = children.changed(replacing, dropping)
            assert [(c.id, c.tag) for c in children] == before  # left whole
            expected_gone = sorted(i for i in (*replacing, *dropping) if i in model)
            assert sorted(c.id for c in gone) == expected_gone
            for i in dropping:
                model.pop(i, None)
            model.update((i, (f"v{version}", i)) for i in replacing)
            want = [(i, model[i][0]) for i in sorted(model)]
            assert [(c.id, c.tag) for c in changed] == want
            assert len(changed) == len(want)
            assert [(c.id, c.tag) for c in changed[:]] == want
            if want:
                assert (changed[-1].id, changed[0].id) == (want[-1][0], want[0][0])
            assert all(0 < len(part) <= 2 * chunk for part in changed._chunks)
            children = changed
    finally:
        changes.CHUNK = saved


class _Child:
    __slots__ = ("id", "tag")

    def __init__(self, id_: str, tag: str) -> None:
        self.id, self.tag = id_, tag


def test_a_change_among_many_policies_copies_no_index_table():
    """One policy changed among 20,000 allocates the new children (a list and a tuple of
    20,000 pointers) and the paths to the changed entries of the persistent index table
    and leaves, not a copy of either (a dict of 20,000 entries is about 650 kB)."""
    size = 20_000
    policies_ = tuple(_grant(i, "a") for i in range(size))
    compiled = compile_policy_set(PolicySet("s", policies_, "deny-unless-permit"))
    assert compiled.single is not None and len(compiled.leaves or ()) == size
    tracemalloc.start()
    try:
        changed = compiled.updated([_grant(7, "b")], removed=["p00009"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 8 * size  # the children twice, and a little more
    assert len(changed) == size - 1 and len(changed.leaves or ()) == size - 1
    moved = Request({"groups": ("b",)}, {"id": "r7"}, {"id": "read"})
    assert evaluate(changed, moved, NOW).decision == Decision.PERMIT
    assert evaluate(compiled, moved, NOW).decision == Decision.DENY
    # the changed set holds its children in chunks: the next change copies one chunk and
    # the tuple of chunks, not the 20,000 children (a tuple of them is 160 kB)
    assert isinstance(changed.children, changes.Children)
    tracemalloc.start()
    try:
        again = changed.updated([_grant(11, "b")], removed=["p00013"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * size / 4
    assert [c.id for c in again.children] == sorted(
        {p.id for p in policies_} - {"p00009", "p00013"}
    )


# --- what a change keeps up to date -----------------------------------------------------------


def test_the_clock_is_read_only_while_a_policy_needs_it():
    windowed = replace(_grant(1, "a"), valid_from=NOW)
    compiled = compile_policy_set(PolicySet("s", (_grant(0, "a"), windowed)), index_threshold=0)
    assert compiled.uses_time
    compiled = compiled.updated(removed=[windowed.id])
    assert not compiled.uses_time
    assert compiled.updated([windowed]).uses_time


def test_a_lazy_policy_is_compiled_when_first_reached_and_then_answers_from_its_leaf():
    built = []

    def build(source: Policy) -> Any:
        built.append(source.id)
        return compile_policy(source)

    lazies = [
        LazyPolicy(p.id, p.target.matches, p, build, windowed=False)
        for p in (_grant(i, "a") for i in range(20))
    ]
    header = PolicySet("s", (), "deny-unless-permit")
    compiled = compile_policy_set(header).updated(lazies)
    assert built == [] and not compiled.leaves
    request = Request({"groups": ("a",)}, {"id": "r3"}, {"id": "read"})
    assert evaluate(compiled, request, NOW).policy_ids == ("p00003",)
    assert built == ["p00003"] and set(compiled.leaves) == {"r3"}
    assert evaluate(compiled, request, NOW).policy_ids == ("p00003",)
    assert built == ["p00003"]


def test_a_policy_that_cannot_be_built_is_indeterminate_where_it_applies():
    from pbgm.decision.evaluator import CompiledPolicy

    target = Target((Match("resource", "id", frozenset({"r1"})),))
    broken = LazyPolicy(
        "p1", target.matches, "{", lambda s: CompiledPolicy.broken("p1", target, "unreadable")
    )
    compiled = compile_policy_set(PolicySet("s", (_grant(0, "a"),))).updated([broken])
    response = evaluate(compiled, Request({"groups": ("a",)}, {"id": "r1"}, {"id": "read"}), NOW)
    assert response.decision is Decision.INDETERMINATE
    assert [(e.code, e.policy_id) for e in response.errors] == [("invalid_policy", "p1")]
    other = evaluate(compiled, Request({"groups": ("a",)}, {"id": "r0"}, {"id": "read"}), NOW)
    assert other.decision is Decision.PERMIT
