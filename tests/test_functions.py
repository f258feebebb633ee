"""Every function of the condition language, through the compiler, on real requests."""

# The parametrize tables keep one case per line, so that each reads as a sentence.
# ruff: noqa: E501

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.decision.conditions import EvaluationFailure, compile_expression
from pbgm.functions import FUNCTIONS, match_levels, parse_topic_filter
from pbgm.model import Request
from pbgm.policy.syntax import parse_expression


def attr(path: str, **extra: Any) -> dict[str, Any]:
    return {"attr": path, **extra}


def fn(name: str, *args: Any) -> dict[str, Any]:
    return {"apply": name, "args": list(args)}


def typed(value: str, kind: str) -> dict[str, Any]:
    return {"value": value, "type": kind}


class Fails:
    """The expected outcome of an expression that must fail with `code`."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __repr__(self) -> str:
        return f"Fails({self.code})"


def evaluate(expression: Any, request: dict[str, Any]) -> Any:
    compiled = compile_expression(parse_expression(expression))
    try:
        return compiled(Request(**request))
    except EvaluationFailure as failure:
        return Fails(failure.code)


def check(expression: Any, request: dict[str, Any], expected: Any) -> None:
    got = evaluate(expression, request)
    if isinstance(expected, Fails):
        assert isinstance(got, Fails) and got.code == expected.code, got
    else:
        assert got == expected and type(got) is type(expected), got


MISSING = attr("subject.nothing")
ABSENT = attr("subject.nothing", may_be_absent=True)
X = attr("subject.x")
Y = attr("subject.y")
NOW = attr("environment.current_time")


def now(moment: Any) -> dict[str, Any]:
    return {"environment": {"current_time": moment}}


def x(value: Any, **more: Any) -> dict[str, Any]:
    return {"subject": {"x": value, **more}}


# --- logic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("and of trues is true", fn("and", True, True, True), {}, True),
        ("and of one false is false", fn("and", True, False), {}, False),
        ("and: false wins over a later failure", fn("and", False, MISSING), {}, False),
        ("and: false wins over an earlier failure", fn("and", MISSING, False), {}, False),
        ("and: failure propagates without a false", fn("and", True, MISSING), {}, Fails("missing_attribute")),
        ("or of one true is true", fn("or", False, True), {}, True),
        ("or of falses is false", fn("or", False, False), {}, False),
        ("or: true wins over an earlier failure", fn("or", MISSING, True), {}, True),
        ("or: true wins over a later failure", fn("or", True, MISSING), {}, True),
        ("or: failure propagates without a true", fn("or", False, MISSING), {}, Fails("missing_attribute")),
        ("or: the first failure is reported", fn("or", X, MISSING), x("text"), Fails("type_error")),
        ("not negates true", fn("not", True), {}, False),
        ("not negates false", fn("not", False), {}, True),
        ("not of an empty bag is true", fn("not", ABSENT), {}, True),
        ("a bag of one boolean is that boolean", fn("and", X), x([True]), True),
        ("an empty bag in and is false", fn("and", True, ABSENT), {}, False),
        ("a string in and is a type error", fn("and", X), x("true"), Fails("type_error")),
        ("the number 1 is not true", fn("or", X), x(1), Fails("type_error")),
        ("two booleans in one place", fn("not", X), x([True, False]), Fails("not_single_value")),
    ],
)  # fmt: skip
def test_logic(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


class CountingBag(dict):
    """An attribute bag that records which attributes were read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


@pytest.mark.parametrize(
    ("what", "function", "stop", "expected"),
    [
        ("and stops at the first false", "and", False, False),
        ("or stops at the first true", "or", True, True),
    ],
)
def test_junctions_short_circuit(what: str, function: str, stop: bool, expected: bool) -> None:
    bag = CountingBag(first=stop, second=not stop)
    compiled = compile_expression(
        parse_expression(fn(function, attr("subject.first"), attr("subject.second")))
    )
    assert compiled(Request(subject=bag)) is expected
    assert bag.read == ["first"]


# --- comparison ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("equal strings", fn("equal", X, "read"), x("read"), True),
        ("strings are case-sensitive", fn("equal", X, "read"), x("Read"), False),
        ("int equals float by value", fn("equal", X, 1), x(1.0), True),
        ("equal booleans", fn("equal", X, True), x(True), True),
        ("a boolean is not a number", fn("equal", X, 1), x(True), Fails("type_error")),
        ("a string is not a number", fn("equal", X, 1), x("1"), Fails("type_error")),
        ("a bag of one is its value", fn("equal", X, "a"), x(["a"]), True),
        ("a bag of two is not one value", fn("equal", X, "a"), x(["a", "b"]), Fails("not_single_value")),
        ("equal with an absent value is false", fn("equal", ABSENT, 1), {}, False),
        ("not-equal with an absent value is false", fn("not-equal", ABSENT, 1), {}, False),
        ("not of equal with an absent value is true", fn("not", fn("equal", ABSENT, 1)), {}, True),
        ("not-equal numbers", fn("not-equal", X, 2), x(1), True),
        ("equal date-times across offsets", fn("equal", X, typed("2026-01-01T01:00:00+01:00", "datetime")), x("2026-01-01T00:00:00Z"), True),
        ("equal times of day", fn("equal", X, typed("08:00", "time")), x("08:00:00"), True),
        ("equal durations", fn("equal", X, typed("PT1H", "duration")), x("PT60M"), True),
        ("objects cannot be compared", fn("equal", X, "a"), x({"a": 1}), Fails("type_error")),
        ("less-than numbers", fn("less-than", X, 230.5), x(229), True),
        ("less-than is strict", fn("less-than", X, 2), x(2), False),
        ("less-than-or-equal includes equality", fn("less-than-or-equal", X, 2), x(2), True),
        ("greater-than numbers", fn("greater-than", X, 0.5), x(0.51), True),
        ("greater-than-or-equal includes equality", fn("greater-than-or-equal", X, 1), x(1.0), True),
        ("strings order by code point", fn("less-than", X, "a"), x("B"), True),
        ("booleans have no order", fn("less-than", X, Y), x(False, y=True), Fails("type_error")),
        ("a number and a string have no order", fn("greater-than", X, 1), x("2"), Fails("type_error")),
        ("date-time before a literal", fn("less-than", NOW, typed("2026-06-01T00:00:00Z", "datetime")), now("2026-05-31T23:59:59Z"), True),
        ("date-time object after a literal", fn("greater-than", NOW, typed("2026-06-01T00:00:00Z", "datetime")), now(datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)), True),
        ("two date-time strings compare as strings", fn("less-than", NOW, "2026-06-01T00:00:00+02:00"), now("2026-05-31T23:00:00Z"), True),
        ("a typed literal compares instants", fn("less-than", NOW, typed("2026-06-01T00:00:00+02:00", "datetime")), now("2026-05-31T23:00:00Z"), False),
        ("a naive date-time is refused", fn("less-than", NOW, typed("2026-06-01T00:00:00Z", "datetime")), now("2026-05-31T23:59:59"), Fails("type_error")),
        ("a naive date-time object is refused", fn("less-than", NOW, typed("2026-06-01T00:00:00Z", "datetime")), now(datetime(2026, 5, 31)), Fails("type_error")),
        ("a bad date-time string is a type error", fn("less-than", NOW, typed("2026-06-01T00:00:00Z", "datetime")), now("yesterday"), Fails("type_error")),
        ("times of day order", fn("less-than", X, typed("08:00", "time")), x("07:59:59"), True),
        ("durations order", fn("greater-than", X, typed("PT15M", "duration")), x("PT16M"), True),
        ("between is inclusive at low", fn("between", X, 0.95, 1.05), x(0.95), True),
        ("between is inclusive at high", fn("between", X, 0.95, 1.05), x(1.05), True),
        ("between outside", fn("between", X, 0.95, 1.05), x(1.06), False),
        ("between with an absent value is false", fn("between", ABSENT, 0, 1), {}, False),
        ("between with a string is a type error", fn("between", X, 0, 1), x("0.5"), Fails("type_error")),
    ],
)  # fmt: skip
def test_comparison(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


# --- arithmetic -------------------------------------------------------------------------

T0 = "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("abs of a negative number", fn("abs", X), x(-3), 3),
        ("abs of a float", fn("abs", X), x(-0.25), 0.25),
        ("abs of a duration", fn("abs", fn("subtract", NOW, typed("2026-03-01T12:30:00Z", "datetime"))), now(T0), timedelta(minutes=30)),
        ("subtract two date-time strings is a type error", fn("subtract", X, Y), x(T0, y=T0), Fails("type_error")),
        ("abs of a string is a type error", fn("abs", X), x("-3"), Fails("type_error")),
        ("abs of an absent value is the empty bag", fn("abs", ABSENT), {}, ()),
        ("add numbers", fn("add", X, 2, 3), x(1), 6),
        ("add an int and a float", fn("add", X, 1), x(1.5), 2.5),
        ("add a duration to a date-time string", fn("add", NOW, typed("PT15M", "duration")), now(T0), datetime(2026, 3, 1, 12, 15, tzinfo=UTC)),
        ("add a duration and a number is a type error", fn("add", typed("PT15M", "duration"), 5), {}, Fails("type_error")),
        ("add durations", fn("add", typed("PT15M", "duration"), typed("PT45M", "duration")), {}, timedelta(hours=1)),
        ("add two date-times is a type error", fn("add", NOW, typed(T0, "datetime")), now(T0), Fails("type_error")),
        ("add a boolean is a type error", fn("add", X, 1), x(True), Fails("type_error")),
        ("add a string without date-times is a type error", fn("add", X, 1), x("1"), Fails("type_error")),
        ("add with an absent value is the empty bag", fn("add", ABSENT, 1), {}, ()),
        ("a comparison with an absent sum is false", fn("less-than", fn("add", ABSENT, 1), 5), {}, False),
        ("subtract numbers", fn("subtract", X, 0.5), x(2), 1.5),
        ("subtract date-times gives a duration", fn("subtract", NOW, typed("2026-03-01T11:00:00Z", "datetime")), now(T0), timedelta(hours=1)),
        ("subtract a duration from a date-time", fn("subtract", NOW, typed("P1D", "duration")), now(T0), datetime(2026, 2, 28, 12, tzinfo=UTC)),
        ("subtract a date-time from a duration is a type error", fn("subtract", typed("P1D", "duration"), NOW), now(T0), Fails("type_error")),
        ("subtract strings is a type error", fn("subtract", X, "a"), x("b"), Fails("type_error")),
        ("multiply numbers", fn("multiply", X, 2, 0.5), x(3), 3.0),
        ("multiply a string is a type error", fn("multiply", X, 2), x("3"), Fails("type_error")),
        ("multiply a float may overflow to infinity", fn("multiply", X, 1e300), x(1e300), float("inf")),
        ("multiply a float by a huge int fails", fn("multiply", X, 1.5), x(10**400), Fails("function_error")),
        ("divide is true division", fn("divide", X, 4), x(2), 0.5),
        ("divide by zero fails", fn("divide", X, 0), x(2), Fails("function_error")),
        ("divide by 0.0 fails", fn("divide", X, 0.0), x(2), Fails("function_error")),
        ("date-time arithmetic out of range fails", fn("subtract", NOW, typed("P1D", "duration")), now("0001-01-01T00:00:00Z"), Fails("function_error")),
        ("a voltage deviation threshold", fn("greater-than", fn("abs", fn("subtract", X, 1.0)), 0.05), x(0.93), True),
    ],
)  # fmt: skip
def test_arithmetic(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


# --- bags and sets ------------------------------------------------------------------------

GROUPS = attr("subject.groups")


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("is-in finds a member", fn("is-in", X, ["a", "b"]), x("b"), True),
        ("is-in misses", fn("is-in", X, ["a", "b"]), x("c"), False),
        ("is-in keeps booleans apart from numbers", fn("is-in", X, [1, 2]), x(True), False),
        ("is-in keeps numbers apart from booleans", fn("is-in", X, [True]), x(1), False),
        ("is-in compares numbers by value", fn("is-in", X, [1, 2]), x(2.0), True),
        ("is-in with mixed kinds is not an error", fn("is-in", X, ["1", 2]), x(1), False),
        ("is-in with an absent value is false", fn("is-in", ABSENT, ["a"]), {}, False),
        ("is-in with two values", fn("is-in", X, ["a"]), x(["a", "b"]), Fails("not_single_value")),
        ("is-in with a bag from the request", fn("is-in", "ops", GROUPS), {"subject": {"groups": ["ops", "x"]}}, True),
        ("is-in with a scalar as the bag", fn("is-in", "ops", GROUPS), {"subject": {"groups": "ops"}}, True),
        ("is-in an empty bag", fn("is-in", "ops", attr("subject.groups", may_be_absent=True)), {}, False),
        ("is-in with an object value", fn("is-in", X, ["a"]), x({"a": 1}), False),
        ("at-least-one-member-of overlaps", fn("at-least-one-member-of", GROUPS, ["g1", "ops"]), {"subject": {"groups": ["ops", "g9"]}}, True),
        ("at-least-one-member-of disjoint", fn("at-least-one-member-of", GROUPS, ["g1", "ops"]), {"subject": {"groups": ["g9"]}}, False),
        ("a string is not a bag of characters", fn("at-least-one-member-of", GROUPS, ["o", "p"]), {"subject": {"groups": "ops"}}, False),
        ("a scalar is a bag of one", fn("at-least-one-member-of", GROUPS, ["ops"]), {"subject": {"groups": "ops"}}, True),
        ("a set is a bag", fn("at-least-one-member-of", GROUPS, ["ops"]), {"subject": {"groups": frozenset({"ops", "x"})}}, True),
        ("a literal bag first", fn("at-least-one-member-of", ["ops"], GROUPS), {"subject": {"groups": ("ops",)}}, True),
        ("two request bags", fn("at-least-one-member-of", GROUPS, Y), {"subject": {"groups": ["a", "b"], "y": ["b"]}}, True),
        ("booleans apart from numbers in overlap", fn("at-least-one-member-of", X, [1, 0]), x([True, False]), False),
        ("an empty bag overlaps nothing", fn("at-least-one-member-of", ABSENT, ["a"]), {}, False),
        ("an object in a bag equals nothing", fn("at-least-one-member-of", X, ["a"]), x([{"a": 1}, ["a"], "b"]), False),
        ("an object before a match", fn("at-least-one-member-of", X, ["a"]), x([{"a": 1}, "a"]), True),
        ("an object before a match, two request bags", fn("at-least-one-member-of", X, Y), x([{"a": 1}, "a"], y="a"), True),
        ("subset holds", fn("subset", X, ["a", "b", "c"]), x(["a", "c"]), True),
        ("subset fails", fn("subset", X, ["a", "b"]), x(["a", "z"]), False),
        ("the empty bag is a subset", fn("subset", ABSENT, ["a"]), {}, True),
        ("subset with a literal first", fn("subset", ["a"], X), x(["a", "b"]), True),
        ("subset keeps booleans apart", fn("subset", X, [1]), x([True]), False),
        ("subset of a scalar string", fn("subset", X, ["abc"]), x("abc"), True),
        ("subset with an object", fn("subset", X, ["a"]), x(["a", {"a": 1}]), False),
        ("an object is not equal to itself in sets", fn("set-equals", X, Y), x([{"a": 1}], y=[{"a": 1}]), False),
        ("set-equals ignores order and repeats", fn("set-equals", X, ["a", "b"]), x(["b", "a", "b"]), True),
        ("set-equals differs", fn("set-equals", X, ["a", "b"]), x(["a"]), False),
        ("set-equals of two request bags", fn("set-equals", X, Y), x(["a"], y="a"), True),
        ("bag-size of a list", fn("bag-size", X), x(["a", "b", "a"]), 3),
        ("bag-size of a scalar", fn("bag-size", X), x("abc"), 1),
        ("bag-size of an absent attribute", fn("bag-size", ABSENT), {}, 0),
        ("is-present when present", fn("is-present", X), x(0), True),
        ("is-present when missing", fn("is-present", X), {}, False),
        ("is-present when null", fn("is-present", X), x(None), False),
        ("is-present when an empty list", fn("is-present", X), x([]), False),
        ("any-of holds for one member", fn("any-of", "starts-with", attr("resource.topic"), ["/a/", "/voltage_control/"]), {"resource": {"topic": "/voltage_control/control/active_power"}}, True),
        ("any-of holds for none", fn("any-of", "starts-with", attr("resource.topic"), ["/a/"]), {"resource": {"topic": "/b"}}, False),
        ("any-of of an empty bag is false", fn("any-of", "equal", 1, ABSENT), {}, False),
        ("any-of: true wins over a failure", fn("any-of", "less-than", 1, ["x", 2]), {}, True),
        ("any-of: failure without a true", fn("any-of", "less-than", 1, ["x", 0]), {}, Fails("type_error")),
        ("any-of with request topic filters", fn("any-of", "topic-matches", attr("resource.topic"), attr("subject.filters")), {"resource": {"topic": "site/pv/p"}, "subject": {"filters": ["x/#", "site/+/p"]}}, True),
        ("all-of holds for every member", fn("all-of", "greater-than", X, [1, 2]), x(3), True),
        ("all-of fails for one member", fn("all-of", "greater-than", X, [1, 5]), x(3), False),
        ("all-of of an empty bag is true", fn("all-of", "equal", 1, ABSENT), {}, True),
        ("all-of: false wins over a failure", fn("all-of", "greater-than", X, ["a", 5]), x(3), False),
        ("all-of: failure without a false", fn("all-of", "greater-than", X, ["a", 1]), x(3), Fails("type_error")),
    ],
)  # fmt: skip
def test_bags_and_sets(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


# --- strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("starts-with holds", fn("starts-with", X, "bess-"), x("bess-01"), True),
        ("starts-with is case-sensitive", fn("starts-with", X, "BESS-"), x("bess-01"), False),
        ("ends-with holds", fn("ends-with", X, "/set"), x("evcc/loadpoints/1/set"), True),
        ("ends-with misses", fn("ends-with", X, "/set"), x("evcc/site/pvPower"), False),
        ("contains holds", fn("contains", X, "measuremnts"), x("/voltage_control/measuremnts/pv"), True),
        ("contains misses", fn("contains", X, "measurements"), x("/voltage_control/measuremnts/pv"), False),
        ("a number is not a string", fn("starts-with", X, "1"), x(12), Fails("type_error")),
        ("an absent string is false", fn("contains", ABSENT, "a"), {}, False),
        ("regex-match matches the whole string", fn("regex-match", X, r"bess-\d+"), x("bess-01"), True),
        ("regex-match does not search", fn("regex-match", X, r"bess-\d+"), x("site/bess-01"), False),
        ("regex-match with an explicit search", fn("regex-match", X, r".*bess-\d{1,3}"), x("site/bess-01"), True),
        ("regex-match on unicode", fn("regex-match", X, r"Umspannwerk \w+"), x("Umspannwerk Süd"), True),
        ("regex-match on a number is a type error", fn("regex-match", X, r"\d+"), x(12), Fails("type_error")),
        ("regex-match on 4096 characters", fn("regex-match", X, r"a+"), x("a" * 4096), True),
        ("regex-match on 4097 characters fails", fn("regex-match", X, r"a+"), x("a" * 4097), Fails("function_error")),
        ("regex-match of an absent value is false", fn("regex-match", ABSENT, r"a+"), {}, False),
    ],
)  # fmt: skip
def test_strings(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


# --- time -----------------------------------------------------------------------------------


def window(start: str, end: str, *tz: str) -> dict[str, Any]:
    return fn("time-in-window", NOW, start, end, *tz)


@pytest.mark.parametrize(
    ("what", "expression", "request_", "expected"),
    [
        ("inside a day window", window("08:00", "18:00"), now("2026-01-05T12:00:00Z"), True),
        ("the start is inclusive", window("08:00", "18:00"), now("2026-01-05T08:00:00Z"), True),
        ("the end is exclusive", window("08:00", "18:00"), now("2026-01-05T18:00:00Z"), False),
        ("seconds count", window("08:00:30", "18:00"), now("2026-01-05T08:00:29Z"), False),
        ("a window across midnight, late", window("22:00", "06:00"), now("2026-01-05T23:30:00Z"), True),
        ("a window across midnight, early", window("22:00", "06:00"), now("2026-01-05T05:59:59Z"), True),
        ("a window across midnight, outside", window("22:00", "06:00"), now("2026-01-05T12:00:00Z"), False),
        ("a window up to midnight", window("22:00", "00:00"), now("2026-01-05T23:59:00Z"), True),
        ("an empty window", window("08:00", "08:00"), now("2026-01-05T08:00:00Z"), False),
        ("UTC by default, whatever the offset written", window("08:00", "09:00"), now("2026-01-05T08:30:00+01:00"), False),
        ("Berlin in winter is UTC+1", window("08:00", "09:00", "Europe/Berlin"), now("2026-01-05T07:30:00Z"), True),
        ("Berlin in summer is UTC+2", window("08:00", "09:00", "Europe/Berlin"), now("2026-07-06T07:30:00Z"), False),
        ("the day before the spring DST change", window("22:00", "06:00", "Europe/Berlin"), now("2026-03-28T04:30:00Z"), True),
        ("the day of the spring DST change", window("22:00", "06:00", "Europe/Berlin"), now("2026-03-29T04:30:00Z"), False),
        ("the night of the autumn DST change", window("02:00", "03:00", "Europe/Berlin"), now("2026-10-25T01:30:00Z"), True),
        ("a date-time object", window("08:00", "09:00"), now(datetime(2026, 1, 5, 8, 15, tzinfo=UTC)), True),
        ("times from the request", fn("time-in-window", NOW, X, Y), {**now("2026-01-05T08:15:00Z"), **x("08:00", y="09:00")}, True),
        ("a bad time from the request", fn("time-in-window", NOW, X, "09:00"), {**now("2026-01-05T08:15:00Z"), **x("8 am")}, Fails("type_error")),
        ("a naive date-time", window("08:00", "09:00"), now("2026-01-05T08:15:00"), Fails("type_error")),
        ("a number is not a date-time", window("08:00", "09:00"), now(1767600000), Fails("type_error")),
        ("an unknown timezone from the request", fn("time-in-window", NOW, "08:00", "09:00", X), {**now("2026-01-05T08:15:00Z"), **x("Mars/Olympus")}, Fails("function_error")),
        ("an absent time is false", window("08:00", "09:00"), {}, Fails("missing_attribute")),
        ("an absent time with may_be_absent", fn("time-in-window", attr("environment.current_time", may_be_absent=True), "08:00", "09:00"), {}, False),
        ("day-of-week in UTC", fn("day-of-week", NOW), now("2026-03-29T23:30:00Z"), "Sun"),
        ("day-of-week in Berlin", fn("day-of-week", NOW, "Europe/Berlin"), now("2026-03-29T23:30:00Z"), "Mon"),
        ("day-of-week of an absent date-time", fn("day-of-week", attr("environment.t", may_be_absent=True)), {}, ()),
        ("day-of-week-in working days", fn("day-of-week-in", NOW, ["Mon", "Tue", "Wed", "Thu", "Fri"]), now("2026-01-05T12:00:00Z"), True),
        ("day-of-week-in misses a weekend day", fn("day-of-week-in", NOW, ["Mon", "Tue"]), now("2026-01-04T12:00:00Z"), False),
        ("day-of-week-in accepts full names in any case", fn("day-of-week-in", NOW, ["SUNDAY"]), now("2026-01-04T12:00:00Z"), True),
        ("day-of-week-in a single name", fn("day-of-week-in", NOW, "sun"), now("2026-01-04T12:00:00Z"), True),
        ("day-of-week-in with a timezone", fn("day-of-week-in", NOW, ["Mon"], "Europe/Berlin"), now("2026-01-04T23:30:00Z"), True),
        ("days from the request", fn("day-of-week-in", NOW, X), {**now("2026-01-04T12:00:00Z"), **x(["Sat", "Sun"])}, True),
        ("a bad day from the request", fn("day-of-week-in", NOW, X), {**now("2026-01-04T12:00:00Z"), **x(["Caturday"])}, Fails("function_error")),
    ],
)  # fmt: skip
def test_time(what: str, expression: Any, request_: dict, expected: Any) -> None:
    check(expression, request_, expected)


# --- MQTT -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "topic", "topic_filter", "expected"),
    [
        ("an exact topic", "sport/tennis/player1", "sport/tennis/player1", True),
        ("# matches the rest", "sport/tennis/player1/ranking", "sport/tennis/player1/#", True),
        ("# matches the parent level", "sport", "sport/#", True),
        ("# alone matches everything", "a/b/c", "#", True),
        ("+ matches one level", "sport/tennis", "sport/+", True),
        ("+ does not match two levels", "sport/tennis/player1", "sport/+", False),
        ("+ needs the level to exist", "sport", "sport/+", False),
        ("+ matches an empty level", "sport/", "sport/+", True),
        (
            "+ in the middle",
            "/voltage_control/measuremnts/voltage",
            "/voltage_control/+/voltage",
            True,
        ),
        ("a leading slash is an empty level", "/finance", "+/+", True),
        ("a leading slash with /+", "/finance", "/+", True),
        ("+ is one level only", "/finance", "+", False),
        ("a longer filter does not match", "a/b", "a/b/c", False),
        ("a shorter filter does not match", "a/b/c", "a/b", False),
        ("levels are case-sensitive", "Sport", "sport/#", False),
        ("$ topics are not matched by #", "$SYS/broker/load", "#", False),
        ("$ topics are not matched by a leading +", "$SYS/broker", "+/broker", False),
        ("$ topics match an explicit $ filter", "$SYS/broker/load", "$SYS/#", True),
        ("a $ later in the topic is ordinary", "site/$x", "site/+", True),
        (
            "the edgeFLEX set-point topics",
            "/voltage_control/control/active_power_ESS",
            "/voltage_control/control/#",
            True,
        ),
    ],
)
def test_topic_matches(what: str, topic: str, topic_filter: str, expected: bool) -> None:
    check(fn("topic-matches", X, topic_filter), x(topic), expected)
    check(fn("topic-matches", X, Y), x(topic, y=topic_filter), expected)


@pytest.mark.parametrize(
    ("what", "topic", "topic_filter", "expected"),
    [
        ("+ matches one level", "site/pv", "site/+", True),
        ("# matches the parent level", "site", "site/#", True),
        ("$ topics are not matched by #", "$SYS/load", "#", False),
        ("a longer filter does not match", "a/b", "a/b/c", False),
    ],
)
def test_the_topic_helpers_the_bus_imports_match_like_topic_matches(
    what: str, topic: str, topic_filter: str, expected: bool
) -> None:
    """The bus and the event service match topics with helpers of `pbgm.functions`."""
    levels = parse_topic_filter(topic_filter).levels
    assert match_levels(topic.split("/"), levels) is expected
    check(fn("topic-matches", X, topic_filter), x(topic), expected)


@pytest.mark.parametrize(
    ("what", "topic", "topic_filter", "expected"),
    [
        ("a topic with + is refused", "a/+", "a/#", Fails("function_error")),
        ("a topic with # is refused", "a/#", "#", Fails("function_error")),
        ("an empty topic is refused", "", "#", Fails("function_error")),
        ("a number is not a topic", 7, "#", Fails("type_error")),
        ("a request filter with # inside is refused", "a/b", "a/#/b", Fails("function_error")),
        ("a request filter with a partial + is refused", "a/b", "a/b+", Fails("function_error")),
        ("an empty request filter is refused", "a/b", "", Fails("function_error")),
    ],
)
def test_topic_matches_refuses(what: str, topic: Any, topic_filter: str, expected: Fails) -> None:
    check(fn("topic-matches", X, Y), x(topic, y=topic_filter), expected)


@pytest.mark.parametrize(
    ("what", "topic", "expected"),
    [
        ("a topic with + is refused", "a/+", Fails("function_error")),
        ("an empty topic is refused", "", Fails("function_error")),
        ("a number is not a topic", 7, Fails("type_error")),
        ("a bag of one topic", ["a/b"], True),
        ("a bag of two topics", ["a/b", "c"], Fails("not_single_value")),
        ("no topic", [], False),
    ],
)
def test_topic_matches_a_literal_filter_checks_the_topic(
    what: str, topic: Any, expected: Any
) -> None:
    check(fn("topic-matches", X, "+/#"), x(topic), expected)


def reference_topic_match(topic: str, topic_filter: str) -> bool:
    """Straight from MQTT 3.1.1 §4.7, as a regular expression."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic_filter.split("/")
    parts = ["[^/]*" if level == "+" else re.escape(level) for level in levels]
    if levels[-1] == "#":
        body = "/".join(parts[:-1])
        pattern = ".*" if len(levels) == 1 else f"{body}(/.*)?"
    else:
        pattern = "/".join(parts)
    return re.fullmatch(pattern, topic, re.DOTALL) is not None


_LEVELS = st.sampled_from(["a", "b", "", "$s", "ab"])


@settings(max_examples=200, deadline=None)
@given(
    topic=st.lists(_LEVELS, min_size=1, max_size=4).map("/".join).filter(bool),
    levels=st.lists(st.sampled_from(["a", "b", "", "+", "$s"]), min_size=1, max_size=4).filter(
        lambda levels: levels != [""]
    ),
    hash_end=st.booleans(),
)
def test_topic_matches_agrees_with_the_reference(topic: str, levels: list, hash_end: bool) -> None:
    topic_filter = "/".join([*levels, "#"] if hash_end else levels)
    expected = reference_topic_match(topic, topic_filter)
    assert evaluate(fn("topic-matches", X, topic_filter), x(topic)) is expected


# --- the registry -------------------------------------------------------------------------------


def test_every_function_is_described_and_covered() -> None:
    tested = set()
    for test in (
        test_logic,
        test_comparison,
        test_arithmetic,
        test_bags_and_sets,
        test_strings,
        test_time,
    ):
        for mark in test.pytestmark:  # type: ignore[attr-defined]
            tested.update(row[1]["apply"] for row in mark.args[1])
    tested.add("topic-matches")
    assert set(FUNCTIONS) <= tested
    for name, spec in FUNCTIONS.items():
        assert spec.name == name and spec.description and spec.category
        assert spec.min_args <= (spec.max_args if spec.max_args is not None else spec.min_args)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name)


def test_typed_literals_are_parsed_once() -> None:
    assert compile_expression(parse_expression(typed("08:30", "time")))(Request()) == time(8, 30)
    assert compile_expression(parse_expression(typed("P1W", "duration")))(Request()) == timedelta(
        weeks=1
    )
