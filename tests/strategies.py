"""Hypothesis strategies for policy sets and requests.

Everything draws from a small alphabet of attribute values so that targets
match often; conditions include ones that fail (a missing attribute, a type
error), obligations and advice sit on both effects, and requests leave
attributes out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from pbgm.model import (
    COMBINING_ALGORITHMS,
    Apply,
    AttributeRef,
    Effect,
    Expr,
    Literal,
    Match,
    ObligationExpression,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

ALPHABET: dict[tuple[str, str], tuple[Any, ...]] = {
    ("subject", "id"): ("alice", "bob"),
    ("subject", "groups"): ("ops", "admins", "viewers"),
    ("resource", "id"): ("r1", "r2", "r3"),
    ("resource", "level"): (0, 1, 2, True),
    ("action", "id"): ("read", "write"),
    ("environment", "zone"): ("north", "south"),
}
BAGGED = {("subject", "groups")}
PATHS = sorted(ALPHABET)

algorithms = st.sampled_from(COMBINING_ALGORITHMS)
effects = st.sampled_from([Effect.PERMIT, Effect.DENY])


def ref(category: str, name: str, may_be_absent: bool = False) -> AttributeRef:
    return AttributeRef(category, name, may_be_absent)


_VALUE_SETS = {
    path: st.sets(st.sampled_from(values), min_size=1, max_size=2)
    for path, values in ALPHABET.items()
}


_PATH_LISTS = {n: st.lists(st.sampled_from(PATHS), max_size=n, unique=True) for n in (1, 2)}


def matches(draw: st.DrawFn, path: tuple[str, str]) -> Match:
    return Match(path[0], path[1], frozenset(draw(_VALUE_SETS[path])))


@st.composite
def targets(draw: st.DrawFn, max_matches: int = 2) -> Target:
    if draw(st.booleans()):
        return Target()
    paths = draw(_PATH_LISTS[max_matches])
    return Target(tuple(matches(draw, p) for p in sorted(paths)))


def _leaves() -> st.SearchStrategy[Expr]:
    absent = st.booleans()
    groups = st.sets(st.sampled_from(ALPHABET["subject", "groups"]), min_size=1, max_size=2)
    levels = st.sampled_from([0, 1, 2])
    return st.one_of(
        st.sampled_from([Literal(True), Literal(False)]),
        absent.map(lambda a: Apply("is-in", (Literal("ops"), ref("subject", "groups", a)))),
        st.tuples(absent, groups).map(
            lambda t: Apply(
                "at-least-one-member-of", (ref("subject", "groups", t[0]), Literal(tuple(t[1])))
            )
        ),
        levels.map(lambda n: Apply("equal", (ref("resource", "level"), Literal(n)))),
        levels.map(lambda n: Apply("greater-than", (ref("resource", "level"), Literal(n)))),
        st.just(Apply("equal", (ref("subject", "id"), Literal("alice")))),
        # always fails: an attribute no request carries
        st.just(Apply("equal", (ref("environment", "missing"), Literal(1)))),
        # fails with a type error when subject.id is present (a string is not a number)
        st.just(Apply("less-than", (ref("subject", "id"), Literal(3)))),
    )


def conditions() -> st.SearchStrategy[Expr | None]:
    leaf = _leaves()
    composite = st.one_of(
        st.lists(leaf, min_size=1, max_size=3).map(lambda a: Apply("and", tuple(a))),
        st.lists(leaf, min_size=1, max_size=3).map(lambda a: Apply("or", tuple(a))),
        leaf.map(lambda a: Apply("not", (a,))),
    )
    return st.one_of(st.none(), leaf, composite)


_output_values = st.one_of(
    st.sampled_from(["info", 250, True]).map(Literal),
    st.just(ref("subject", "id")),  # fails when the subject has no id
    st.just(ref("resource", "level", True)),  # empty bag when absent
    st.just(ref("environment", "missing")),  # always fails
)


_OUTPUT_ATTRIBUTES = st.dictionaries(
    st.sampled_from(["level", "who", "limit"]), _output_values, max_size=2
)
_OUTPUT_IDS = st.sampled_from(["audit", "notify", "clamp"])


@st.composite
def outputs(draw: st.DrawFn, effect: st.SearchStrategy[Effect] = effects) -> ObligationExpression:
    attributes = draw(_OUTPUT_ATTRIBUTES)
    return ObligationExpression(
        draw(_OUTPUT_IDS),
        draw(effect),
        MappingProxyType(attributes),
    )


CONDITIONS = conditions()
TARGETS = targets()
RULE_TARGETS = targets(max_matches=1)
_OWN_OUTPUTS = {
    effect: (
        st.lists(outputs(st.sampled_from([effect, effect, other])), max_size=2),
        st.lists(outputs(st.sampled_from([effect, effect, other])), max_size=1),
    )
    for effect, other in ((Effect.PERMIT, Effect.DENY), (Effect.DENY, Effect.PERMIT))
}
_POLICY_OBLIGATIONS = st.lists(outputs(), max_size=2)
_ONE_OUTPUT = st.lists(outputs(), max_size=1)


@st.composite
def rules(draw: st.DrawFn, rule_id: str) -> Rule:
    """A rule whose obligations and advice mostly follow its effect."""
    effect = draw(effects)
    own_obligations, own_advice = _OWN_OUTPUTS[effect]
    return Rule(
        id=rule_id,
        effect=effect,
        target=draw(RULE_TARGETS),
        condition=draw(CONDITIONS),
        obligations=tuple(draw(own_obligations)),
        advice=tuple(draw(own_advice)),
    )


_RULE_COUNTS = st.integers(0, 4)
_HOUR = timedelta(hours=1)
_moments = st.one_of(st.none(), st.sampled_from([None, NOW - _HOUR, NOW, NOW + _HOUR]))


@st.composite
def policies(draw: st.DrawFn, policy_id: str, algorithm: st.SearchStrategy[str] = algorithms):
    count = draw(_RULE_COUNTS)
    return Policy(
        id=policy_id,
        type="operational_limits",
        policy_group="generated",
        rules=tuple(draw(rules(f"{policy_id}-r{i}")) for i in range(count)),
        rule_combining=draw(algorithm),
        target=draw(TARGETS),
        valid_from=draw(_moments),
        valid_until=draw(_moments),
        obligations=tuple(draw(_POLICY_OBLIGATIONS)),
        advice=tuple(draw(_ONE_OUTPUT)),
    )


_SET_TARGETS = st.one_of(st.just(Target()), targets(max_matches=1))


@st.composite
def policy_sets(
    draw: st.DrawFn,
    algorithm: st.SearchStrategy[str] = algorithms,
    max_policies: int = 5,
) -> PolicySet:
    count = draw(st.integers(0, max_policies))
    return PolicySet(
        id="generated",
        policies=tuple(draw(policies(f"p{i}", algorithm)) for i in range(count)),
        policy_combining=draw(algorithm),
        target=draw(_SET_TARGETS),
        obligations=tuple(draw(_ONE_OUTPUT)),
        advice=tuple(draw(_ONE_OUTPUT)),
    )


_PATH_SETS = st.sets(st.sampled_from(PATHS))
_REQUEST_VALUES = {
    path: st.sets(st.sampled_from(values), max_size=3).map(tuple)
    if path in BAGGED
    else st.sampled_from(values)
    for path, values in ALPHABET.items()
}


@st.composite
def requests(draw: st.DrawFn) -> Request:
    bags: dict[str, dict[str, Any]] = {c: {} for c in ("subject", "resource", "action")}
    bags["environment"] = {}
    for path in draw(_PATH_SETS):
        bags[path[0]][path[1]] = draw(_REQUEST_VALUES[path])
    return Request(**bags)
