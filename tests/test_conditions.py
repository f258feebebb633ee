"""The condition compiler: static problems, absence and bags, conditions, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbgm.decision.conditions import (
    EvaluationFailure,
    check_condition,
    check_expression,
    compile_condition,
    compile_expression,
)
from pbgm.errors import PbgmError, ValidationError
from pbgm.functions import FUNCTIONS
from pbgm.model import Apply, AttributeRef, Literal, Request
from pbgm.policy.syntax import parse_expression


def attr(path: str, **extra: Any) -> dict[str, Any]:
    return {"attr": path, **extra}


def fn(name: str, *args: Any) -> dict[str, Any]:
    return {"apply": name, "args": list(args)}


X = attr("subject.x")
NOW = attr("environment.current_time")


def problems_of(expression: Any) -> list[tuple[str, str]]:
    return [(p.path, p.code) for p in check_expression(parse_expression(expression))]


# --- static problems ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "expression", "expected"),
    [
        ("an unknown function", fn("equl", X, 1), [("$", "unknown_function")]),
        ("too few arguments", fn("between", X, 1), [("$", "bad_arity")]),
        (
            "too many arguments",
            fn("time-in-window", NOW, "08:00", "09:00", "UTC", "x"),
            [("$", "bad_arity")],
        ),
        ("a variadic function without arguments", fn("and"), [("$", "bad_arity")]),
        (
            "a problem deep inside",
            fn("and", fn("or", fn("equal", X, 1), fn("nope"))),
            [("$.args[0].args[1]", "unknown_function")],
        ),
        (
            "every problem is listed",
            fn("and", fn("nope"), fn("not"), fn("topic-matches", X, "a/#/b")),
            [
                ("$.args[0]", "unknown_function"),
                ("$.args[1]", "bad_arity"),
                ("$.args[2].args[1]", "invalid_topic_filter"),
            ],
        ),
        ("a number where a boolean is expected", fn("and", 1), [("$.args[0]", "type_mismatch")]),
        (
            "a number function where a boolean is expected",
            fn("not", fn("multiply", 1, 2)),
            [("$.args[0]", "type_mismatch")],
        ),
        ("a boolean has no order", fn("less-than", X, True), [("$.args[1]", "type_mismatch")]),
        (
            "a number where a string is expected",
            fn("starts-with", X, 1),
            [("$.args[1]", "type_mismatch")],
        ),
        (
            "a string where a number is expected",
            fn("multiply", X, "2"),
            [("$.args[1]", "type_mismatch")],
        ),
        ("null is not a value", fn("equal", X, None), [("$.args[1]", "invalid_literal")]),
        (
            "an object is not a value",
            fn("equal", X, {"value": {"a": 1}}),
            [("$.args[1]", "invalid_literal")],
        ),
        (
            "a list of two where one value is expected",
            fn("equal", X, [1, 2]),
            [("$.args[1]", "not_single_value")],
        ),
        (
            "an object inside a literal bag",
            fn("is-in", X, {"value": [{"a": 1}]}),
            [("$.args[1]", "invalid_literal")],
        ),
        (
            "a bad typed date-time",
            fn("less-than", NOW, {"value": "tomorrow", "type": "datetime"}),
            [("$.args[1]", "invalid_literal")],
        ),
        (
            "a naive typed date-time",
            fn("less-than", NOW, {"value": "2026-01-01T00:00:00", "type": "datetime"}),
            [("$.args[1]", "invalid_literal")],
        ),
        (
            "a typed literal that is not a string",
            fn("less-than", NOW, {"value": 5, "type": "duration"}),
            [("$.args[1]", "invalid_literal")],
        ),
        (
            "an unknown literal type",
            fn("equal", X, {"value": "1", "type": "decimal"}),
            [("$.args[1]", "unknown_literal_type")],
        ),
        (
            "a bad date-time string where a date-time is expected",
            fn("time-in-window", "soon", "08:00", "09:00"),
            [("$.args[0]", "invalid_datetime")],
        ),
        (
            "a bad time of day",
            fn("time-in-window", NOW, "8:00", "24:00"),
            [("$.args[1]", "invalid_time"), ("$.args[2]", "invalid_time")],
        ),
        (
            "an unknown timezone",
            fn("day-of-week", NOW, "Europe/Atlantis"),
            [("$.args[1]", "invalid_timezone")],
        ),
        (
            "a path is not a timezone",
            fn("day-of-week", NOW, "../../etc/passwd"),
            [("$.args[1]", "invalid_timezone")],
        ),
        (
            "an unknown day",
            fn("day-of-week-in", NOW, ["Mon", "Funday"]),
            [("$.args[1]", "invalid_weekday")],
        ),
        (
            "# not last in a filter",
            fn("topic-matches", X, "a/#/b"),
            [("$.args[1]", "invalid_topic_filter")],
        ),
        (
            "# inside a level",
            fn("topic-matches", X, "a/b#"),
            [("$.args[1]", "invalid_topic_filter")],
        ),
        (
            "+ inside a level",
            fn("topic-matches", X, "a/b+/c"),
            [("$.args[1]", "invalid_topic_filter")],
        ),
        ("an empty filter", fn("topic-matches", X, ""), [("$.args[1]", "invalid_topic_filter")]),
        (
            "a regular expression from the request",
            fn("regex-match", X, attr("subject.pattern")),
            [("$.args[1]", "expected_literal")],
        ),
        (
            "a regular expression that does not parse",
            fn("regex-match", X, "(a"),
            [("$.args[1]", "invalid_regex")],
        ),
        (
            "a function name from the request",
            fn("any-of", X, 1, [1]),
            [("$.args[0]", "expected_literal")],
        ),
        (
            "any-of with an unknown function",
            fn("any-of", "equl", 1, [1]),
            [("$.args[0]", "invalid_function_argument")],
        ),
        (
            "any-of with a lazy function",
            fn("any-of", "and", True, [True]),
            [("$.args[0]", "invalid_function_argument")],
        ),
        (
            "any-of with a three-argument function",
            fn("any-of", "between", 1, [1]),
            [("$.args[0]", "invalid_function_argument")],
        ),
        (
            "any-of with a function of a literal pattern",
            fn("all-of", "regex-match", "a", ["a"]),
            [("$.args[0]", "invalid_function_argument")],
        ),
        (
            "any-of with a value function",
            fn("any-of", "add", 1, [1]),
            [("$.args[0]", "invalid_function_argument")],
        ),
        ("is-present of a literal", fn("is-present", "x"), [("$.args[0]", "expected_attribute")]),
    ],
)
def test_static_problems(what: str, expression: Any, expected: list) -> None:
    assert problems_of(expression) == expected
    with pytest.raises(ValidationError) as raised:
        compile_expression(parse_expression(expression))
    assert [(p.path, p.code) for p in raised.value.problems] == expected
    for problem in raised.value.problems:
        assert problem.message[0] in "`abcdefghijklmnopqrstuvwxyz" and not problem.message.endswith(
            "."
        )


@pytest.mark.parametrize(
    ("what", "expression"),
    [
        ("a literal", 1),
        ("an object literal, as obligation attributes use", {"value": {"a": [1, 2]}}),
        ("null, as obligation attributes may use", None),
        ("an attribute", X),
        ("a typed date-time", {"value": "2026-01-01T00:00:00Z", "type": "datetime"}),
        ("a list of typed times", {"value": ["08:00", "09:30"], "type": "time"}),
        ("literal bags of mixed kinds", fn("is-in", X, [1, "a", True, 2.5])),
        (
            "a one-element list where one value is expected",
            fn("time-in-window", NOW, ["08:00"], "09:00"),
        ),
        ("any-of with a two-argument function", fn("any-of", "topic-matches", "a/b", ["a/+", "#"])),
        (
            "all-of with a function of two or three arguments",
            fn("all-of", "day-of-week-in", NOW, ["Mon"]),
        ),
        ("a filter of one #", fn("topic-matches", X, "#")),
        ("a filter of empty levels", fn("topic-matches", X, "//+/")),
    ],
)
def test_well_formed_expressions_have_no_problems(what: str, expression: Any) -> None:
    assert problems_of(expression) == []
    assert callable(compile_expression(parse_expression(expression)))


def test_the_unknown_function_message_suggests_a_name() -> None:
    (problem,) = check_expression(parse_expression(fn("less-then", X, 1)), "$.rules[0].condition")
    assert problem.path == "$.rules[0].condition"
    assert problem.message == "`less-then` is not a function; did you mean `less-than`"


def test_model_objects_built_by_hand_are_checked() -> None:
    expression = Apply("and", (AttributeRef("user", "x"), Literal("x", "nonsense"), "raw"))  # type: ignore[arg-type]
    assert [(p.path, p.code) for p in check_expression(expression)] == [
        ("$.args[0]", "invalid_attribute"),
        ("$.args[1]", "unknown_literal_type"),
        ("$.args[2]", "invalid_expression"),
    ]


def test_deep_expressions_are_refused_not_crashed() -> None:
    expression: Any = Literal(True)
    for _ in range(200):
        expression = Apply("not", (expression,))
    problems = check_expression(expression)
    assert [p.code for p in problems] == ["expression_too_deep"]
    assert problems[0].path.count(".args[0]") == 65


# --- regular expressions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("a nested quantifier", "(a+)+b"),
        ("a nested star", "(a*)*"),
        ("an optional inside a repeat", "(ab?)+"),
        ("a bounded nested quantifier", "(a{1,5}){2,9}"),
        ("a nested quantifier in a lookahead", "((?=a+)b)+"),
        ("overlapping alternatives in a repeat", "(a|a)*b"),
        ("alternatives with a common start", "(a|ab)(c|bcd)(d*)"),
        ("alternatives of overlapping classes", r"(\w+|\d+)x"),
        ("alternatives that may be empty", "(|a)b"),
        ("chained ambiguous alternatives", "(a|a)(a|a)(a|a)(a|a)b"),
        ("three overlapping unbounded quantifiers", ".*a.*b.*c"),
        ("two unbounded quantifiers around a character both match", ".*a.*"),
        ("two overlapping plus quantifiers", r"\w+\d+x"),
        ("three long bounded repeats", "a{0,100}a{0,100}a{0,100}b"),
        ("an unbounded quantifier inside an optional group next to another", "(.*)?.*x"),
        ("a long bounded repeat next to an unbounded one", "a*a{1,200}b"),
        ("a backreference", r"(a)\1"),
        ("a named backreference", r"(?P<x>a)(?P=x)"),
        ("a conditional group", r"(a)?(?(1)b|c)"),
        ("too many unbounded quantifiers", "".join(f"{c}*" for c in "abcdefghijklmnopq")),
        ("a pattern over 256 characters", "a" * 257),
    ],
)
def test_dangerous_regular_expressions_are_refused(what: str, pattern: str) -> None:
    assert problems_of(fn("regex-match", X, pattern)) == [("$.args[1]", "unsafe_regex")]


@pytest.mark.parametrize(
    ("what", "pattern", "text", "expected"),
    [
        (
            "an edgeFLEX location topic",
            r"/location_\d+/[a-z0-9]+/.*",
            "/location_10003/30025/edgePMU3 ch1 amplitude",
            True,
        ),
        ("alternatives that start differently, repeated", "(on|off)+", "onoffon", True),
        ("alternatives with a common prefix factored out", "(bess|bus)-[0-9]{2}", "bus-07", True),
        ("one unbounded quantifier with a prefix", "bess-.*", "bess-01/p", True),
        ("one unbounded quantifier with a suffix", ".*-pv", "site-3-pv", True),
        ("a short bounded repeat next to an unbounded one", r"\d*\d{0,3}", "12345", True),
        ("optional characters, a few", "a?a?aa", "aaa", True),
        ("disjoint unbounded classes", r"[a-z]+\d+[A-Z]+\s+x.*", "ab12CD  x!", True),
        ("a fixed repeat inside a repeat", "(ab{2}){1,3}", "abbabb", True),
        ("case-insensitive", "(?i)bess-01", "BESS-01", True),
        ("a pattern of 256 characters", "a" * 256, "a" * 256, True),
        ("anchors are harmless", "^pv-\\d+$", "pv-3", True),
    ],
)
def test_safe_regular_expressions_are_accepted(
    what: str, pattern: str, text: str, expected: bool
) -> None:
    compiled = compile_expression(parse_expression(fn("regex-match", X, pattern)))
    assert compiled(Request(subject={"x": text})) is expected


# --- absence and bags ----------------------------------------------------------------


def run(expression: Any, **request: Any) -> Any:
    try:
        return compile_expression(parse_expression(expression))(Request(**request))
    except EvaluationFailure as failure:
        return failure.code


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("a missing attribute fails", X, {}, "missing_attribute"),
        ("a null attribute is missing", X, {"subject": {"x": None}}, "missing_attribute"),
        (
            "a missing attribute that may be absent is the empty bag",
            attr("subject.x", may_be_absent=True),
            {},
            (),
        ),
        ("an empty list is present", X, {"subject": {"x": []}}, []),
        ("a scalar is returned as it is", X, {"subject": {"x": 230.1}}, 230.1),
        ("a bag is returned as it is", X, {"subject": {"x": ("a", "b")}}, ("a", "b")),
        ("categories are apart", attr("resource.x"), {"subject": {"x": 1}}, "missing_attribute"),
        (
            "a bag of one in a scalar position",
            fn("greater-than", X, 1),
            {"subject": {"x": {2}}},
            True,
        ),
        (
            "a bag of two in a scalar position",
            fn("greater-than", X, 1),
            {"subject": {"x": [2, 3]}},
            "not_single_value",
        ),
        (
            "an empty bag makes a predicate false",
            fn("greater-than", X, 1),
            {"subject": {"x": []}},
            False,
        ),
        (
            "an empty bag flows through a value function",
            fn("multiply", X, 2),
            {"subject": {"x": []}},
            (),
        ),
        ("an empty bag is false in a boolean position", fn("or", X), {"subject": {"x": ()}}, False),
        ("a failure under not propagates", fn("not", X), {}, "missing_attribute"),
    ],
)
def test_absence_and_bags(what: str, expression: Any, request_: dict, expected: Any) -> None:
    assert run(expression, **request_) == expected


def test_a_missing_attribute_names_the_attribute() -> None:
    with pytest.raises(EvaluationFailure) as raised:
        compile_expression(parse_expression(attr("resource.asset_id")))(Request())
    assert raised.value.code == "missing_attribute"
    assert raised.value.message == "missing attribute `resource.asset_id`"


# --- conditions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "condition", "request_", "expected"),
    [
        ("no condition is always true", None, {}, True),
        ("a literal true", True, {}, True),
        ("a literal false", False, {}, False),
        ("a literal bag of one boolean", [True], {}, True),
        ("a boolean function", fn("equal", X, 1), {"subject": {"x": 1}}, True),
        ("a boolean attribute", X, {"subject": {"x": False}}, False),
        ("a bag attribute of one boolean", X, {"subject": {"x": [True]}}, True),
        ("an absent attribute is false", attr("subject.x", may_be_absent=True), {}, False),
        ("a string attribute is a type error", X, {"subject": {"x": "true"}}, "type_error"),
        ("a missing attribute fails", X, {}, "missing_attribute"),
    ],
)
def test_compile_condition(what: str, condition: Any, request_: dict, expected: Any) -> None:
    compiled = compile_condition(None if condition is None else parse_expression(condition))
    try:
        result = compiled(Request(**request_))
    except EvaluationFailure as failure:
        result = failure.code
    assert result is expected if isinstance(expected, bool) else result == expected


@pytest.mark.parametrize(
    ("what", "condition"),
    [
        ("a number", 1),
        ("a string", "true"),
        ("a number function", fn("add", X, 1)),
        ("a string function", fn("day-of-week", NOW)),
    ],
)
def test_a_condition_must_be_boolean(what: str, condition: Any) -> None:
    expression = parse_expression(condition)
    assert [p.code for p in check_condition(expression, "$.condition")] == ["type_mismatch"]
    assert check_expression(expression) == []
    with pytest.raises(ValidationError):
        compile_condition(expression)


# --- properties ---------------------------------------------------------------------

SCALARS = st.one_of(
    st.sampled_from(
        ["a", "b", "ops", "", "08:00", "2026-01-01T00:00:00Z", "PT1H", "a/+", "#", "Mon"]
    ),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 1.0, 1e308]),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.just({"k": 1}), st.just([{"k": 1}]))


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(
        [
            "is-in",
            "at-least-one-member-of",
            "subset",
            "set-equals",
            "equal",
            "not-equal",
            "less-than",
            "greater-than-or-equal",
        ]
    ),
    value=VALUES,
    literal=st.one_of(SCALARS, st.lists(SCALARS, max_size=4)),
)
def test_specialised_closures_agree_with_the_functions(name: str, value: Any, literal: Any) -> None:
    """The compiler's fast paths mean exactly what `pbgm.functions` says."""
    spec = FUNCTIONS[name]
    if spec.params[1] != "bag" and isinstance(literal, list):
        literal = literal[:1] or ["a"]
    expression = Apply(
        name,
        (
            AttributeRef("subject", "x"),
            Literal(tuple(literal) if isinstance(literal, list) else literal),
        ),
    )
    if check_expression(expression):
        return
    compiled = compile_expression(expression)
    prepared = compile_expression(expression.args[1])(Request())
    assert outcome(lambda: compiled(Request(subject={"x": value}))) == outcome(
        lambda: spec.impl(value, prepared)
    )  # type: ignore[misc]


def outcome(thunk: Any) -> Any:
    try:
        result = thunk()
    except EvaluationFailure as failure:
        return ("failure", failure.code)
    return (type(result).__name__, result)


NAMES = st.sampled_from([*FUNCTIONS, "nope"])
LEAVES = st.one_of(
    st.builds(
        AttributeRef,
        st.sampled_from(["subject", "resource", "environment"]),
        st.sampled_from(["x", "y", "current_time"]),
        st.booleans(),
    ),
    st.builds(Literal, st.one_of(SCALARS, st.none(), st.lists(SCALARS, max_size=3).map(tuple))),
    st.builds(
        Literal,
        st.sampled_from(["2026-03-29T01:30:00+01:00", "12:00", "P1D", "bad"]),
        st.sampled_from(["datetime", "time", "duration"]),
    ),
)


def applications(children: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the right number of arguments, so that trees get past the arity check."""

    def build(name: str) -> st.SearchStrategy:
        spec = FUNCTIONS.get(name)
        low, high = (spec.min_args, min(spec.max_args or 4, 4)) if spec else (0, 3)
        args = st.lists(children, min_size=low, max_size=high)
        return args.map(lambda items: Apply(name, tuple(items)))

    return NAMES.flatmap(build)


TREES = st.recursive(LEAVES, applications, max_leaves=12)
REQUEST_VALUES = st.one_of(
    VALUES, st.none(), st.sampled_from(["2026-10-25T01:30:00Z", "Europe/Berlin", "sport/tennis"])
)
REQUESTS = st.builds(
    lambda s, r, e: Request(subject=s, resource=r, environment=e),
    *[st.dictionaries(st.sampled_from(["x", "y", "current_time"]), REQUEST_VALUES, max_size=3)] * 3,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, requests=st.lists(REQUESTS, min_size=1, max_size=3))
def test_random_trees_compile_or_are_refused_and_never_crash(tree: Any, requests: list) -> None:
    """Compiling raises only `ValidationError`, exactly when there are problems; a compiled
    closure raises only `EvaluationFailure`, whatever the request holds."""
    problems = check_expression(tree)
    try:
        compiled = compile_expression(tree)
    except ValidationError as error:
        assert isinstance(error, PbgmError) and list(error.problems) == problems and problems
        return
    assert problems == []
    for request in requests:
        try:
            compiled(request)
        except EvaluationFailure as failure:
            assert failure.code in {
                "missing_attribute",
                "type_error",
                "not_single_value",
                "function_error",
            }
            assert failure.message and failure.message[0] in "`abcdefghijklmnopqrstuvwxyz"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, requests=st.lists(REQUESTS, min_size=1, max_size=3))
def test_check_condition_refuses_exactly_what_compile_condition_refuses(
    tree: Any, requests: list
) -> None:
    """Validation uses `check_condition`, the PDP `compile_condition`: a condition that
    passes the one compiles, and its closure gives a real boolean or an `EvaluationFailure`."""
    problems = check_condition(tree)
    try:
        compiled = compile_condition(tree)
    except ValidationError as error:
        assert list(error.problems) == problems and problems
        return
    assert problems == []
    for request in requests:
        assert outcome(lambda r=request: compiled(r))[0] in ("bool", "failure")
