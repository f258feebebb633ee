"""The functions of pbgm's condition language: what each one means, and the registry.

`pbgm.decision.conditions` compiles `Apply` trees against `FUNCTIONS`;
`pbgm.policy.validate` reads it to report unknown functions and bad arity. The
implementations work on evaluated values and are the reference meaning; the compiler may
specialise some of them for speed. They live in the modules of this wing, one per concept:
`values` (bags, absence, kinds), `scalar` (comparison, arithmetic), `sets`, `text`
(strings and MQTT topics), `regex` (regular expressions that cannot backtrack for long),
`temporal` (date-times, times of day, durations, weekdays) and `spec` (a registry entry).
The functions of XACML 3.0 are registered apart, by their URNs (`XACML_FUNCTIONS`, in
`xacml`), over the typed values of `datatypes`; `function_spec` finds a name in either.
This wing imports nothing of pbgm but itself (an import-linter contract).

Values
    An expression yields a scalar (string, number, boolean, date-time, time of day,
    duration, or a JSON object) or a bag: a list, tuple, set or frozenset of scalars. A
    string is a scalar, never a bag of characters. A request attribute that is missing or
    null is absent: reading it fails with `missing_attribute`, unless the reference says
    `may_be_absent`, in which case it yields the empty bag.

Bags where one value is expected (every parameter that is not a bag parameter)
    - a bag of exactly one value is that value;
    - a bag of two or more values fails with `not_single_value`;
    - an empty bag is "no value": a predicate (a function returning a boolean) with a
      no-value argument returns False; a value function (`abs`, `add`, `subtract`,
      `multiply`, `divide`, `day-of-week`) returns the empty bag, so the absence reaches
      the predicate that uses it; in a boolean position (an argument of `and`, `or`, `not`,
      or a whole condition) the empty bag is False. So `not-equal(x, 1)` with `x` absent is
      False while `not(equal(x, 1))` is True.

Bag parameters (`is-in` second, the set functions, `bag-size`, the third of `any-of`)
    A scalar is a bag of one; the empty bag is the empty set.

Types
    - Booleans are not numbers. Numbers are ints and floats compared by value (1 == 1.0).
    - `equal`, `not-equal` and the orderings compare two values of one kind: number,
      string (by code point), boolean (equality only), date-time, time, duration. A
      string meeting a date-time, time or duration is parsed as one (ISO 8601). Any other
      pair of kinds fails with `type_error`; numbers are never parsed from strings.
    - Set functions compare members by equality, booleans apart from numbers; members of
      different kinds are simply unequal, never an error (bags come from JSON and may mix
      kinds); objects and nested lists are unequal to everything.
    - Date-times are `datetime` objects or ISO 8601 strings, always with a timezone: a
      naive one fails with `type_error`. Times of day are `HH:MM` or `HH:MM:SS`; durations
      ISO 8601 (`PT15M`, `P1DT2H`, `P2W`).

Failures are `EvaluationFailure(code, message)`: `missing_attribute`, `type_error`,
`not_single_value`, `function_error` (division by zero, input too long, a bad topic filter
or timezone given by the request). The evaluator turns them into Indeterminate.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from pbgm.functions.datatypes import (
    DATATYPES,
    DataType,
    lexical,
    type_of,
)
from pbgm.functions.regex import safe_regex
from pbgm.functions.scalar import (
    EQUATABLE,
    ORDERABLE,
    absolute,
    add,
    between,
    comparison,
    divide,
    multiply,
    subtract,
)
from pbgm.functions.sets import (
    as_set,
    at_least_one_member_of,
    bag_size,
    higher_order,
    is_in,
    norm,
    set_equals,
    subset,
)
from pbgm.functions.spec import FunctionSpec, Signature
from pbgm.functions.temporal import (
    day_of_week,
    day_of_week_in,
    parse_datetime,
    parse_duration,
    parse_time,
    parse_weekdays,
    time_in_window,
    zone,
)
from pbgm.functions.text import (
    MAX_REGEX_INPUT,
    TopicFilter,
    match_levels,
    parse_topic_filter,
    regex_match,
    string_test,
    topic_matches,
    topic_prefix_problem,
)
from pbgm.functions.values import (
    BAG_TYPES,
    NOTHING,
    EvaluationFailure,
    kind_of,
    members,
    negate,
    one,
    truth,
)
from pbgm.functions.xacml import HIGHER_ORDER, LAZY, XACML_FUNCTIONS

# The registry and its spec, and the value helpers and parsers that the decision core
# (`pbgm.decision`) builds its closures from: the whole face of this wing.
__all__ = [
    "BAG_TYPES",
    "DATATYPES",
    "FUNCTIONS",
    "HIGHER_ORDER",
    "LAZY",
    "MAX_REGEX_INPUT",
    "NOTHING",
    "XACML_FUNCTIONS",
    "DataType",
    "EvaluationFailure",
    "FunctionSpec",
    "Signature",
    "TopicFilter",
    "as_set",
    "function_spec",
    "kind_of",
    "lexical",
    "match_levels",
    "members",
    "norm",
    "one",
    "parse_datetime",
    "parse_duration",
    "parse_time",
    "parse_topic_filter",
    "parse_weekdays",
    "safe_regex",
    "topic_prefix_problem",
    "truth",
    "type_of",
    "zone",
]


# --- the registry ------------------------------------------------------------------------


def _group(category: str, *specs: FunctionSpec) -> list[FunctionSpec]:
    return [replace(spec, category=category) for spec in specs]


def _cmp(
    name: str, op: Callable[[Any, Any], bool], kinds: frozenset[str], words: str
) -> FunctionSpec:
    param = "value" if kinds is EQUATABLE else "orderable"
    description = f"True when the first value {words} the second."
    return FunctionSpec(name, 2, 2, description, (param, param), impl=comparison(name, op, kinds))


def _str(name: str, test: Callable[[str, str], bool], words: str) -> FunctionSpec:
    description = f"True when the first string {words} the second (case-sensitive)."
    return FunctionSpec(name, 2, 2, description, ("string", "string"), impl=string_test(name, test))


_F = FunctionSpec
_ALL = [
    *_group(
        "logic",
        _F("and", 1, None, "True when every argument is true. Left to right, stops at the first "
           "false; false wins over a failure of another argument, else the failure propagates.",
           ("boolean",)),
        _F("or", 1, None, "True when one argument is true. Left to right, stops at the first "
           "true; true wins over a failure of another argument, else the failure propagates.",
           ("boolean",)),
        _F("not", 1, 1, "The negation of a boolean (an empty bag counts as false).",
           ("boolean",), impl=negate),
    ),
    *_group(
        "comparison",
        _cmp("equal", operator.eq, EQUATABLE, "equals"),
        _cmp("not-equal", operator.ne, EQUATABLE, "differs from"),
        _cmp("less-than", operator.lt, ORDERABLE, "is less than"),
        _cmp("less-than-or-equal", operator.le, ORDERABLE, "is less than or equal to"),
        _cmp("greater-than", operator.gt, ORDERABLE, "is greater than"),
        _cmp("greater-than-or-equal", operator.ge, ORDERABLE, "is greater than or equal to"),
        _F("between", 3, 3, "True when low <= x <= high: `between(x, low, high)`, inclusive.",
           ("orderable",), impl=between),
    ),
    *_group(
        "arithmetic",
        _F("abs", 1, 1, "The absolute value of a number or duration.", ("arithmetic",),
           "value", absolute),
        _F("add", 2, None, "The sum of numbers, of durations, or of one date-time (a string is "
           "read as one) and durations.", ("arithmetic",), "value", add),
        _F("subtract", 2, 2, "a - b for numbers or durations; date-time minus duration is a "
           "date-time, date-time minus date-time a duration.", ("arithmetic",), "value",
           subtract),
        _F("multiply", 2, None, "The product of numbers.", ("number",), "number", multiply),
        _F("divide", 2, 2, "a / b (true division); dividing by zero fails with "
           "`function_error`.", ("number",), "number", divide),
    ),
    *_group(
        "set",
        _F("is-in", 2, 2, "True when the value is a member of the bag: `is-in(value, bag)`.",
           ("value", "bag"), impl=is_in),
        _F("at-least-one-member-of", 2, 2, "True when the two bags share a member.",
           ("bag", "bag"), impl=at_least_one_member_of),
        _F("subset", 2, 2, "True when every member of the first bag is in the second.",
           ("bag", "bag"), impl=subset),
        _F("set-equals", 2, 2, "True when the two bags have the same members.",
           ("bag", "bag"), impl=set_equals),
        _F("bag-size", 1, 1, "The number of values in the bag (a scalar counts 1).",
           ("bag",), "number", bag_size),
        _F("is-present", 1, 1, "True when the attribute is in the request with a value that "
           "is neither null nor an empty list; never fails.", ("attribute",)),
        _F("any-of", 3, 3, "`any-of(function, value, bag)`: true when the two-argument "
           "boolean function (a literal name) holds for (value, x) for some x in the bag; "
           "`or` failure semantics.", ("function", "value", "bag"),
           impl=higher_order(True)),
        _F("all-of", 3, 3, "`all-of(function, value, bag)`: true when the function holds for "
           "(value, x) for every x in the bag (true for an empty bag); `and` failure "
           "semantics.", ("function", "value", "bag"), impl=higher_order(False)),
    ),
    *_group(
        "string",
        _str("starts-with", str.startswith, "starts with"),
        _str("ends-with", str.endswith, "ends with"),
        _str("contains", lambda text, part: part in text, "contains"),
        _F("regex-match", 2, 2, "True when the whole string matches the pattern (full match). "
           "The pattern must be a literal of at most 256 characters without backreferences, "
           "nested or ambiguous quantifiers; input over 4096 characters fails.",
           ("string", "regex"), impl=regex_match),
    ),
    *_group(
        "time",
        _F("time-in-window", 3, 4, "`time-in-window(datetime, \"HH:MM\", \"HH:MM\"[, tz])`: "
           "start <= local time < end; a window whose end is before its start wraps past "
           "midnight. Local time in the IANA timezone given, UTC by default.",
           ("date-time", "time", "time", "timezone"), impl=time_in_window),
        _F("day-of-week", 1, 2, "The ISO weekday name (`Mon` ... `Sun`) of a date-time in the "
           "timezone given, UTC by default.", ("date-time", "timezone"), "string",
           day_of_week),
        _F("day-of-week-in", 2, 3, "True when the date-time falls on one of the days (`Mon`, "
           "`monday`...; case-insensitive) in the timezone given, UTC by default.",
           ("date-time", "weekdays", "timezone"), impl=day_of_week_in),
    ),
    *_group(
        "mqtt",
        _F("topic-matches", 2, 2, "`topic-matches(topic, filter)` per MQTT 3.1.1/5: `+` one "
           "level, `#` the remaining levels including the parent (`a/#` matches `a`); a topic "
           "starting with `$` is not matched by a filter starting with a wildcard.",
           ("string", "topic-filter"), impl=topic_matches),
    ),
]  # fmt: skip

FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({spec.name: spec for spec in _ALL})


def function_spec(name: str) -> FunctionSpec | None:
    """The spec of a function of the condition language: a pbgm function by its name or a
    XACML function by its URN; None for neither."""
    return FUNCTIONS.get(name) or XACML_FUNCTIONS.get(name)
