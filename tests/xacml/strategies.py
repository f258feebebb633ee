"""Hypothesis strategies for XACML-shaped policies and typed requests.

Typed attributes from a small alphabet (a bag of integer ages, of string roles, an anyURI
resource, a dateTime), XACML conditions over them (one-and-only that fails on bags of
two, comparisons, bag and set functions, higher-order functions, regular expressions,
`and`/`or`/`not`/`n-of`), XACML targets (`<AnyOf>` of matches, some that must be
present), obligation assignments, nested policy sets and every combining algorithm.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from pbgm.functions import datatypes as dt
from pbgm.model import (
    COMBINING_ALGORITHMS,
    Apply,
    AssignmentExpression,
    AttributeRef,
    Effect,
    ExtendedRequest,
    Literal,
    Matcher,
    ObligationExpression,
    Policy,
    PolicySet,
    Rule,
    Target,
    typed_key,
)

F1 = "urn:oasis:names:tc:xacml:1.0:function:"
F3 = "urn:oasis:names:tc:xacml:3.0:function:"
XS = dt.XS
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

AGES = (10, 45, 60)
ROLES = ("doctor", "nurse", "clerk")
URIS = ("http://medico.com/a", "http://other.org/b")


def ref(name: str, kind: str, must: bool, category: str = "subject") -> AttributeRef:
    return AttributeRef(category, name, not must, XS + kind)


def one(name: str, kind: str, must: bool) -> Apply:
    return Apply(F1 + f"{kind}-one-and-only", (ref(name, kind, must),))


_musts = st.booleans()
_ages = st.sampled_from(AGES)
_roles = st.sampled_from(ROLES)


def _compare(t: tuple[bool, int, str]) -> Apply:
    return Apply(F1 + f"integer-{t[2]}", (one("age", "integer", t[0]), Literal(t[1])))


def _is_in(t: tuple[bool, str]) -> Apply:
    return Apply(F1 + "string-is-in", (Literal(t[1]), ref("role", "string", t[0])))


def _overlap(t: tuple[bool, list[str]]) -> Apply:
    wanted = Apply(F1 + "string-bag", tuple(Literal(r) for r in t[1]))
    return Apply(F1 + "string-at-least-one-member-of", (ref("role", "string", t[0]), wanted))


def _any_of(t: tuple[bool, str]) -> Apply:
    return Apply(
        F3 + "any-of", (Literal(F1 + "string-equal"), Literal(t[1]), ref("role", "string", t[0]))
    )


def _uri(t: tuple[bool, str]) -> Apply:
    uri = Apply(F1 + "anyURI-one-and-only", (ref("uri", "anyURI", t[0], "resource"),))
    return Apply(F3 + "anyURI-contains", (Literal(t[1]), uri))


def _regex(t: tuple[bool, str]) -> Apply:
    return Apply(F1 + "string-regexp-match", (Literal(t[1]), one("role", "string", t[0])))


_SIZE = Apply(
    F1 + "integer-equal",
    (Apply(F1 + "integer-bag-size", (ref("age", "integer", False),)), Literal(1)),
)

LEAVES = st.one_of(
    st.tuples(_musts, _ages, st.sampled_from(["greater-than", "less-than-or-equal", "equal"])).map(
        _compare
    ),
    st.tuples(_musts, _roles).map(_is_in),
    st.tuples(_musts, st.lists(_roles, max_size=2)).map(_overlap),
    st.tuples(_musts, _roles).map(_any_of),
    st.tuples(_musts, st.sampled_from(["medico", "other"])).map(_uri),
    st.tuples(_musts, st.sampled_from(["^doc", "r.e$", "x"])).map(_regex),
    st.just(_SIZE),
    st.sampled_from([Literal(True), Literal(False)]),
)


def _conditions() -> st.SearchStrategy[Any]:
    return st.recursive(
        LEAVES,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda a: Apply(F1 + "and", tuple(a))),
            st.lists(inner, min_size=1, max_size=3).map(lambda a: Apply(F1 + "or", tuple(a))),
            inner.map(lambda a: Apply(F1 + "not", (a,))),
            st.tuples(st.integers(0, 3), st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: Apply(F1 + "n-of", (Literal(t[0]), *t[1]))
            ),
        ),
        max_leaves=4,
    )


CONDITIONS = st.one_of(st.none(), _conditions())

MATCHERS = st.one_of(
    st.tuples(_musts, _roles).map(
        lambda t: Matcher(F1 + "string-equal", Literal(t[1]), ref("role", "string", t[0]))
    ),
    st.tuples(_musts, _ages).map(
        lambda t: Matcher(F1 + "integer-less-than", Literal(t[1]), ref("age", "integer", t[0]))
    ),
)
ANY_OF = st.lists(
    st.lists(st.lists(MATCHERS, min_size=1, max_size=2).map(tuple), min_size=1, max_size=2).map(
        tuple
    ),
    max_size=2,
).map(tuple)
TARGETS = ANY_OF.map(lambda a: Target(any_of=a))

_VALUES = st.one_of(
    st.sampled_from(["info", 7]).map(Literal),
    st.just(ref("role", "string", False)),
    st.just(ref("role", "string", True)),
    st.just(one("age", "integer", True)),
)


@st.composite
def outputs(draw: st.DrawFn, effect: Effect) -> ObligationExpression:
    assignments = tuple(
        AssignmentExpression(draw(st.sampled_from(["a", "b"])), draw(_VALUES))
        for _ in range(draw(st.integers(0, 2)))
    )
    attributes = draw(st.dictionaries(st.sampled_from(["x", "y"]), _VALUES, max_size=1))
    return ObligationExpression(
        draw(st.sampled_from(["o1", "o2"])), effect, MappingProxyType(attributes), assignments
    )


@st.composite
def rules(draw: st.DrawFn, rule_id: str) -> Rule:
    effect = draw(st.sampled_from([Effect.PERMIT, Effect.DENY]))
    return Rule(
        rule_id,
        effect,
        draw(TARGETS),
        draw(CONDITIONS),
        tuple(draw(st.lists(outputs(effect), max_size=1))),
        tuple(draw(st.lists(outputs(effect), max_size=1))),
    )


ALGORITHMS = st.sampled_from(COMBINING_ALGORITHMS)


@st.composite
def nodes(draw: st.DrawFn, node_id: str, depth: int = 0) -> Policy:
    """A policy, or (above depth 0, sometimes) a policy set of such nodes."""
    own = tuple(
        draw(st.lists(outputs(draw(st.sampled_from([Effect.PERMIT, Effect.DENY]))), max_size=1))
    )
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        count = draw(st.integers(0, 3))
        return Policy(
            node_id,
            "access_control",
            "g",
            target=draw(TARGETS),
            obligations=own,
            policies=tuple(draw(nodes(f"{node_id}.{i}", depth + 1)) for i in range(count)),
            policy_combining=draw(ALGORITHMS),
        )
    count = draw(st.integers(0, 3))
    return Policy(
        node_id,
        "access_control",
        "g",
        target=draw(TARGETS),
        obligations=own,
        rules=tuple(draw(rules(f"{node_id}-r{i}")) for i in range(count)),
        rule_combining=draw(ALGORITHMS),
    )


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    count = draw(st.integers(0, 3))
    return PolicySet(
        "root",
        tuple(draw(nodes(f"p{i}")) for i in range(count)),
        draw(ALGORITHMS),
    )


def _typed(bag: dict[str, Any], name: str, kind: str, values: list[Any]) -> None:
    if values:
        bag[name] = tuple(values)
        bag[typed_key(name, XS + kind)] = tuple(values)


@st.composite
def requests(draw: st.DrawFn) -> ExtendedRequest:
    subject: dict[str, Any] = {}
    resource: dict[str, Any] = {}
    _typed(subject, "age", "integer", draw(st.lists(_ages, max_size=2)))
    _typed(subject, "role", "string", draw(st.lists(_roles, max_size=2, unique=True)))
    uris = draw(st.lists(st.sampled_from(URIS), max_size=1))
    _typed(resource, "uri", "anyURI", [dt.AnyURI(u) for u in uris])
    return ExtendedRequest(subject, resource)
