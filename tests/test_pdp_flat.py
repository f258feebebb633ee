"""The specialised decision paths (`pbgm.decision.flat`, `pbgm.decision.membership`, the single
index and the leaves of `pbgm.pdp`) against the general evaluator and the naive reference.

The policy sets drawn here have the shapes the specialised paths take (rules on
`action.id` with membership conditions, policies on `resource.id`, no obligations)
and the values that must send them back to the general path: absent attributes,
numbers, booleans, bags, unhashable members, failing conditions, validity windows,
extra target matches, a few obligations. `PBGM_PDP_EXAMPLES` raises the number of
examples (e.g. 2000 for a thorough local run).
"""

from __future__ import annotations

import gc
import os
import threading
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.decision.compiled import gc_paused
from pbgm.decision.conditions import EvaluationFailure, compile_condition
from pbgm.decision.flat import FlatPolicy
from pbgm.decision.membership import expression, holds, membership
from pbgm.errors import ValidationError
from pbgm.model import (
    COMBINING_ALGORITHMS,
    Apply,
    AttributeRef,
    Effect,
    Literal,
    Match,
    ObligationExpression,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)
from pbgm.pdp import PolicyDecisionPoint, compile_documents, compile_policy_set, evaluate
from pbgm.policy.syntax import dump_policy, policy_set_from_documents
from tests import reference_pdp
from tests.strategies import NOW, conditions

EXAMPLES = int(os.environ.get("PBGM_PDP_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None)

GROUPS = ("ops", "admins", "viewers")
USERS = ("alice", "bob")
ACTIONS = ("read", "write", "admin")
RESOURCES = tuple(f"r{i}" for i in range(9))
UNHASHABLE = ["ops"]

# --- strategies ------------------------------------------------------------------------


def _ref(category: str, name: str) -> st.SearchStrategy[AttributeRef]:
    return st.booleans().map(lambda absent: AttributeRef(category, name, absent))


def _literal(values: tuple[str, ...], *, scalar: bool = True) -> st.SearchStrategy[Literal]:
    bags = st.lists(st.sampled_from(values), max_size=3).map(lambda v: Literal(tuple(v)))
    return st.one_of(bags, st.sampled_from(values).map(Literal)) if scalar else bags


def _overlap() -> st.SearchStrategy[Apply]:
    args = st.tuples(_ref("subject", "groups"), _literal(GROUPS), st.booleans())
    return args.map(
        lambda a: Apply("at-least-one-member-of", (a[1], a[0]) if a[2] else (a[0], a[1]))
    )


MEMBERSHIP = st.one_of(
    _overlap(),
    st.tuples(_ref("subject", "id"), _literal(USERS)).map(lambda a: Apply("is-in", a)),
    st.tuples(_ref("subject", "id"), st.sampled_from(USERS).map(Literal)).map(
        lambda a: Apply("equal", a)
    ),
)
JUNCTIONS = st.tuples(
    st.sampled_from(["and", "or"]), st.lists(MEMBERSHIP, min_size=1, max_size=3)
).map(lambda a: Apply(a[0], tuple(a[1])))
FLAT_CONDITIONS = st.one_of(st.none(), MEMBERSHIP, JUNCTIONS, conditions())


def _match(category: str, name: str, values: tuple[Any, ...]) -> st.SearchStrategy[Match]:
    return st.sets(st.sampled_from(values), min_size=1, max_size=2).map(
        lambda v: Match(category, name, frozenset(v))
    )


RULE_TARGETS = st.one_of(
    _match("action", "id", ACTIONS).map(lambda m: Target((m,))),
    _match("action", "id", (*ACTIONS, 1, True)).map(lambda m: Target((m,))),
    st.tuples(_match("action", "id", ACTIONS), _match("environment", "zone", ("n", "s"))).map(
        Target
    ),
    st.just(Target()),
    _match("subject", "id", USERS).map(lambda m: Target((m,))),
)
POLICY_TARGETS = st.one_of(
    _match("resource", "id", RESOURCES).map(lambda m: Target((m,))),
    _match("resource", "id", RESOURCES).map(lambda m: Target((m,))),
    _match("resource", "id", RESOURCES).map(lambda m: Target((m,))),
    st.tuples(_match("resource", "id", RESOURCES), _match("environment", "zone", ("n",))).map(
        Target
    ),
    _match("resource", "id", (*RESOURCES, 1)).map(lambda m: Target((m,))),
    st.just(Target()),
)
OBLIGATIONS = st.one_of(
    st.just(()),
    st.just(()),
    st.just(()),
    st.tuples(
        st.sampled_from([Effect.PERMIT, Effect.DENY]),
        st.sampled_from([Literal("info"), AttributeRef("subject", "id")]),
    ).map(lambda a: (ObligationExpression("audit", a[0], MappingProxyType({"v": a[1]})),)),
)
WINDOWS = st.sampled_from([(None, None), (None, None), (NOW, None), (None, NOW)])
ALGORITHMS = st.sampled_from(COMBINING_ALGORITHMS)


@st.composite
def flat_rules(draw: st.DrawFn, rule_id: str) -> Rule:
    return Rule(
        id=rule_id,
        effect=draw(st.sampled_from([Effect.PERMIT, Effect.DENY])),
        target=draw(RULE_TARGETS),
        condition=draw(FLAT_CONDITIONS),
        obligations=draw(OBLIGATIONS) if draw(st.integers(0, 9)) == 0 else (),
    )


@st.composite
def flat_policies(draw: st.DrawFn, policy_id: str) -> Policy:
    if draw(st.booleans()):
        return draw(_grant_like(policy_id))
    count = draw(st.integers(0, 4))
    valid_from, valid_until = draw(WINDOWS)
    return Policy(
        id=policy_id,
        type="data_access",
        policy_group="flat",
        rules=tuple(draw(flat_rules(f"{policy_id}-r{i}")) for i in range(count)),
        rule_combining=draw(ALGORITHMS),
        target=draw(POLICY_TARGETS),
        valid_from=valid_from,
        valid_until=valid_until,
        obligations=draw(OBLIGATIONS),
    )


@st.composite
def _grant_like(draw: st.DrawFn, policy_id: str) -> Policy:
    """The most common shape: on one resource, one rule per action, membership tests."""
    actions = draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True))
    rules = tuple(
        Rule(
            f"{policy_id}-{action}",
            draw(st.sampled_from([Effect.PERMIT, Effect.PERMIT, Effect.DENY])),
            Target((Match("action", "id", frozenset({action})),)),
            draw(st.one_of(st.none(), MEMBERSHIP, JUNCTIONS)),
        )
        for action in actions
    )
    own = f"r{policy_id[1:]}"  # p4 guards r4: one policy per resource, as grants do
    resource = Match("resource", "id", frozenset({draw(st.sampled_from([own, own, own, "r1"]))}))
    algorithm = draw(ALGORITHMS)
    return Policy(policy_id, "data_access", "flat", rules, algorithm, Target((resource,)))


@st.composite
def flat_sets(draw: st.DrawFn) -> PolicySet:
    count = draw(st.integers(0, 8))
    return PolicySet(
        id="flat",
        policies=tuple(draw(flat_policies(f"p{i}")) for i in range(count)),
        policy_combining=draw(ALGORITHMS),
        target=draw(
            st.sampled_from([Target(), Target((Match("environment", "zone", frozenset({"n"})),))])
        ),
        obligations=draw(OBLIGATIONS),
    )


@st.composite
def grant_sets(draw: st.DrawFn) -> PolicySet:
    """Mostly one grant-like policy per resource (the leaves), now and then another."""
    count = draw(st.sampled_from([9, 9, 5, 1]))
    policies = [
        draw(flat_policies(f"p{i}") if draw(st.integers(0, 4)) == 0 else _grant_like(f"p{i}"))
        for i in range(count)
    ]
    algorithm = draw(ALGORITHMS)
    return PolicySet("grants", tuple(policies), algorithm, obligations=draw(OBLIGATIONS))


def _value(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    bag = st.lists(st.sampled_from(values), max_size=3)
    return st.one_of(
        st.sampled_from(values),
        bag.map(tuple),
        bag,
        st.sampled_from([1, True, None, (True,), (UNHASHABLE,), ("ops", 2)]),
    )


KINDS = st.sampled_from(["plain"] * 6 + ["absent", "odd"])  # mostly a plain string


@st.composite
def flat_requests(draw: st.DrawFn) -> Request:
    bags: dict[str, dict[str, Any]] = {c: {} for c in ("subject", "resource", "action")}
    bags["environment"] = {}
    attributes = [
        ("subject", "id", (*USERS, "carol")),
        ("subject", "groups", (*GROUPS, "guests")),
        ("action", "id", (*ACTIONS, "delete")),
        ("resource", "id", RESOURCES),
        ("environment", "zone", ("n", "s")),
    ]
    for category, name, values in attributes:
        kind = draw(KINDS)
        if kind != "absent":
            plain = st.sampled_from(values)
            bags[category][name] = draw(_value(values) if kind == "odd" else plain)
    return Request(**bags)


def _view(response: Any) -> tuple[Any, ...]:
    status = response.status.code
    ids = response.policy_ids
    return response.decision, status, response.obligations, response.advice, ids


# --- the specialised paths against the general one and the reference ---------------------


@SETTINGS
@given(
    policy_set=st.one_of(flat_sets(), grant_sets()),
    request=flat_requests(),
    threshold=st.sampled_from([0, 8]),
)
def test_specialised_paths_equal_the_general_evaluator_and_the_reference(
    policy_set, request, threshold
):
    fast = evaluate(compile_policy_set(policy_set, index_threshold=threshold), request, NOW)
    general = compile_policy_set(policy_set, index_threshold=threshold, specialise=False)
    assert fast == evaluate(general, request, NOW)  # errors included
    assert _view(fast) == _view(reference_pdp.decide(policy_set, request, NOW))


@SETTINGS
@given(policy_set=flat_sets(), request=flat_requests())
def test_the_decision_point_answers_alike_with_and_without_a_clock(policy_set, request):
    pdp = PolicyDecisionPoint(policy_set, clock=lambda: NOW)
    assert pdp.decide(request) == pdp.decide(request, now=NOW)


def _one_policy_per_resource(count: int) -> PolicySet:
    """The benchmark's shape: `read` by group or user, `write` by an admin group."""
    policies = []
    for i in range(count):
        read = Apply(
            "or",
            (
                Apply(
                    "at-least-one-member-of", (AttributeRef("subject", "groups"), Literal(("ops",)))
                ),
                Apply("is-in", (AttributeRef("subject", "id"), Literal((f"user{i}",)))),
            ),
        )
        write = Apply(
            "at-least-one-member-of", (AttributeRef("subject", "groups"), Literal(("admins",)))
        )
        rules = tuple(
            Rule(action, Effect.PERMIT, Target((Match("action", "id", frozenset({action})),)), cond)
            for action, cond in (("read", read), ("write", write))
        )
        target = Target((Match("resource", "id", frozenset({f"r{i}"})),))
        policies.append(Policy(f"p{i}", "data_access", "g", rules, "permit-overrides", target))
    return PolicySet("s", tuple(policies), "deny-unless-permit")


BENCHMARK_SHAPE = [
    ("a group reads", {"id": "u", "groups": ("ops",)}, "read", "r3", True),
    ("the named user reads", {"id": "user3", "groups": ()}, "read", "r3", True),
    ("another user may not read", {"id": "user4", "groups": ["guests"]}, "read", "r3", False),
    ("a reader may not write", {"id": "u", "groups": ("ops",)}, "write", "r3", False),
    ("an admin writes", {"id": "u", "groups": ("admins",)}, "write", "r3", True),
    ("an unknown action is denied", {"id": "u", "groups": ("admins",)}, "delete", "r3", False),
    ("an unknown resource is denied", {"id": "u", "groups": ("ops",)}, "read", "r99", False),
    ("groups missing: the user still reads", {"id": "user3"}, "read", "r3", True),
    ("groups missing: denied", {"id": "user4"}, "read", "r3", False),
]


@pytest.mark.parametrize(
    ("what", "subject", "action", "resource", "allowed"),
    BENCHMARK_SHAPE,
    ids=[row[0] for row in BENCHMARK_SHAPE],
)
def test_one_policy_per_resource_is_decided_from_its_leaf(what, subject, action, resource, allowed):
    policy_set = _one_policy_per_resource(20)
    compiled = compile_policy_set(policy_set)
    assert all(isinstance(p, FlatPolicy) for p in compiled.children)
    assert len(compiled.leaves) == 20
    request = Request(subject=subject, action={"id": action}, resource={"id": resource})
    response = evaluate(compiled, request, NOW)
    assert response.allowed is allowed
    assert response.policy_ids == ((f"p{resource[1:]}",) if allowed else ())
    general = compile_policy_set(policy_set, specialise=False)
    assert response == evaluate(general, request, NOW)


def test_a_missing_attribute_is_reported_as_by_the_general_path():
    policy_set = _one_policy_per_resource(20)
    request = Request(subject={"groups": ("guests",)}, action={"id": "read"}, resource={"id": "r3"})
    response = evaluate(compile_policy_set(policy_set), request, NOW)
    assert not response.allowed
    assert [e.code for e in response.errors] == ["missing_attribute"]
    assert response == evaluate(compile_policy_set(policy_set, specialise=False), request, NOW)


# --- loading documents one at a time -------------------------------------------------------


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None)
@given(policy_set=st.one_of(flat_sets(), grant_sets()), request=flat_requests())
def test_documents_compiled_one_at_a_time_decide_as_the_parsed_set(policy_set, request):
    header = {"id": policy_set.id, "policy_combining": policy_set.policy_combining}
    documents = [dump_policy(policy) for policy in policy_set.policies]
    streamed = compile_documents(header, iter(documents), revision=7)
    parsed = compile_policy_set(policy_set_from_documents(header, documents))
    assert streamed.revision == 7
    assert evaluate(streamed, request, NOW) == evaluate(parsed, request, NOW)


def test_load_documents_swaps_the_set_or_keeps_the_last_one_on_a_bad_document():
    pdp = PolicyDecisionPoint(clock=lambda: NOW)
    documents = [dump_policy(p) for p in _one_policy_per_resource(3).policies]
    pdp.load_documents({"id": "s", "policy_combining": "deny-unless-permit"}, documents)
    request = Request(subject={"groups": ["ops"]}, action={"id": "read"}, resource={"id": "r1"})
    assert pdp.decide(request).policy_ids == ("p1",)
    with pytest.raises(ValidationError):
        broken = {**documents[0], "target": {"nowhere": {"id": "r1"}}}  # no such category
        pdp.load_documents({"id": "s"}, [*documents, broken], revision=2)
    assert pdp.revision == 0
    assert pdp.decide(request).policy_ids == ("p1",)


# --- membership tests ----------------------------------------------------------------------

GROUPS_REF = AttributeRef("subject", "groups")
ID_REF = AttributeRef("subject", "id")
OVERLAP = "at-least-one-member-of"
RECOGNISED = [
    ("overlap with a literal bag", Apply(OVERLAP, (GROUPS_REF, Literal(("a",)))), True),
    ("overlap, literal first", Apply(OVERLAP, (Literal(("a",)), GROUPS_REF)), True),
    ("is-in a literal bag", Apply("is-in", (ID_REF, Literal(("a", "b")))), True),
    ("equal to a string", Apply("equal", (ID_REF, Literal("a"))), True),
    ("an or of tests", Apply("or", (Apply("is-in", (GROUPS_REF, Literal("a"))),)), True),
    ("a value in an attribute", Apply("is-in", (Literal("a"), GROUPS_REF)), False),
    ("equal to a number", Apply("equal", (ID_REF, Literal(1))), False),
    ("a bag of numbers", Apply("is-in", (GROUPS_REF, Literal((1, 2)))), False),
    ("a typed literal", Apply("is-in", (GROUPS_REF, Literal("a", "datetime"))), False),
    ("a negation", Apply("not", (Apply("is-in", (GROUPS_REF, Literal("a"))),)), False),
    ("an or with another test", Apply("or", (Literal(True),)), False),
    ("no condition", None, False),
]  # fmt: skip


@pytest.mark.parametrize(("what", "expr", "recognised"), RECOGNISED, ids=[r[0] for r in RECOGNISED])
def test_which_conditions_are_membership_tests(what, expr, recognised):
    assert (membership(expr) is not None) is recognised


TESTED = st.one_of(MEMBERSHIP, JUNCTIONS)


@settings(max_examples=max(EXAMPLES, 300), deadline=None)
@given(expr=TESTED, request=flat_requests())
def test_membership_tests_agree_with_the_compiled_condition(expr, request):
    condition = membership(expr)
    assert condition is not None
    closure = compile_condition(expr)
    rebuilt = compile_condition(expression(condition))  # what the general path compiles
    try:
        expected = closure(request)
    except EvaluationFailure as failure:
        with pytest.raises(EvaluationFailure) as again:
            rebuilt(request)
        assert (again.value.code, again.value.message) == (failure.code, failure.message)
        assert holds(condition, request) is None
        return
    assert rebuilt(request) is expected
    assert holds(condition, request) in (None, expected)


FEW_KEYS = Apply("at-least-one-member-of", (GROUPS_REF, Literal(("a", "b"))))
MANY_KEYS = Apply("at-least-one-member-of", (GROUPS_REF, Literal(tuple("abcdefg"))))
HOLDS = [
    ("a bag sharing a key", FEW_KEYS, ("x", "b"), True),
    ("a list sharing none", FEW_KEYS, ["x"], False),
    ("a string among the keys", FEW_KEYS, "a", True),
    ("absent: left to the closure, which reports it", FEW_KEYS, None, None),
    ("a number: left to the closure", FEW_KEYS, 3, None),
    ("many keys: a bag sharing one", MANY_KEYS, {"x", "g"}, True),
    ("many keys: an unhashable member, left to the closure", MANY_KEYS, ("x", ["g"]), None),
]


@pytest.mark.parametrize(("what", "expr", "groups", "expected"), HOLDS, ids=[h[0] for h in HOLDS])
def test_membership_tests_decide_plain_values_themselves(what, expr, groups, expected):
    request = Request(subject={} if groups is None else {"groups": groups})
    assert holds(membership(expr), request) is expected


# --- the garbage collector while compiling --------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled before", "disabled before"])
def test_compiling_pauses_the_collector_and_restores_its_state(enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        seen = []
        with gc_paused():
            seen.append(gc.isenabled())
            with gc_paused():
                seen.append(gc.isenabled())
            seen.append(gc.isenabled())
        assert seen == [False, False, False]
        assert gc.isenabled() is enabled
        compile_policy_set(_one_policy_per_resource(3))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_threads_compiling_at_once_leave_the_collector_enabled():
    assert gc.isenabled()
    barrier = threading.Barrier(4)

    def compile_some() -> None:
        barrier.wait()
        for _ in range(5):
            compile_policy_set(_one_policy_per_resource(30))

    threads = [threading.Thread(target=compile_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
