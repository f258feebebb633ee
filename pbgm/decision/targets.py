"""The XACML part of a target (`Target.any_of`): `<AnyOf>`, `<AllOf>` and `<Match>`.

A `Matcher` holds when its function gives true for its literal and one of the
designator's values; it is Indeterminate when none gives true and one failed (or the
designator must be present and is empty). An `<AllOf>` is a conjunction and an `<AnyOf>`
a disjunction, with XACML's rule that false (for a conjunction) or true (for a
disjunction) wins over Indeterminate; a target is the conjunction of its `<AnyOf>`s
(§7.7, tables 1 to 3). Indeterminate is an `EvaluationFailure` raised by the closure,
which the evaluator turns into Indeterminate{...} (tables 5 to 7).

The match function is checked as a call `function(value, attribute value)`: a XACML
boolean function of two arguments whose types fit the literal and the designator's data
type (`check_any_of` lists every problem; `compile_any_of` raises `ValidationError`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pbgm.decision.conditions import check_expression, compile_expression
from pbgm.errors import Problem, ValidationError
from pbgm.functions import DATATYPES, XACML_FUNCTIONS, EvaluationFailure
from pbgm.model import AnyOf, Apply, Matcher, Request

Predicate = Callable[[Request], bool]


def check_any_of(any_of: Sequence[AnyOf], path: str = "$") -> list[Problem]:
    """Every problem of the matchers (function, types, literal); never raises."""
    problems: list[Problem] = []
    for i, alternatives in enumerate(any_of):
        for j, all_of in enumerate(alternatives):
            for k, matcher in enumerate(all_of):
                here = f"{path}[{i}][{j}][{k}]"
                spec = XACML_FUNCTIONS.get(matcher.function)
                signature = spec.signature if spec is not None else None
                if (
                    spec is None
                    or signature is None
                    or signature.returns != "boolean"
                    or (spec.min_args > 2)
                ):
                    message = f"`{matcher.function}` is not a XACML boolean function of two values"
                    problems.append(Problem(here, "invalid_match_function", message))
                elif matcher.attribute.data_type not in DATATYPES:
                    message = "a match compares with a designator of a XACML data type"
                    problems.append(Problem(here, "invalid_attribute", message))
                else:
                    problems += check_expression(_as_call(matcher), here)
    return problems


def _as_call(matcher: Matcher) -> Apply:
    """The matcher as the call it makes for one attribute value (its type checked as that
    of the designator's values)."""
    value = matcher.attribute
    one = Apply(
        f"urn:oasis:names:tc:xacml:{_version(value.data_type)}:function:"
        f"{_short(value.data_type)}-one-and-only",
        (value,),
    )
    return Apply(matcher.function, (matcher.value, one))


def _short(data_type: str | None) -> str:
    found = DATATYPES.get(data_type or "")
    return found.name if found is not None else "string"


def _version(data_type: str | None) -> str:
    name = _short(data_type)
    if name in ("dayTimeDuration", "yearMonthDuration"):
        return "3.0"
    if name in ("ipAddress", "dnsName"):
        return "2.0"
    return "1.0"


def compile_any_of(any_of: Sequence[AnyOf]) -> Predicate | None:
    """A predicate for the conjunction of `<AnyOf>`s (None when there are none); it raises
    `EvaluationFailure` when the target is Indeterminate."""
    if not any_of:
        return None
    problems = check_any_of(any_of)
    if problems:
        raise ValidationError(problems)
    tests = tuple(_any(alternatives) for alternatives in any_of)
    return tests[0] if len(tests) == 1 else _junction(tests, stop=False)


def _any(alternatives: AnyOf) -> Predicate:
    tests = tuple(_all(all_of) for all_of in alternatives)
    return tests[0] if len(tests) == 1 else _junction(tests, stop=True)


def _all(all_of: Sequence[Matcher]) -> Predicate:
    tests = tuple(_match(m) for m in all_of)
    return tests[0] if len(tests) == 1 else _junction(tests, stop=False)


def _junction(tests: tuple[Predicate, ...], *, stop: bool) -> Predicate:
    """A conjunction (stop at false) or disjunction (stop at true) where the stopping value
    wins over a failure of another part."""

    def junction(request: Request) -> bool:
        failure = None
        for test in tests:
            try:
                if test(request) is stop:
                    return stop
            except EvaluationFailure as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return not stop

    return junction


def _match(matcher: Matcher) -> Predicate:
    """One `<Match>`: the function of the literal and each value of the designator."""
    read = compile_expression(matcher.attribute)
    value = compile_expression(matcher.value)(Request())
    spec = XACML_FUNCTIONS[matcher.function]
    impl: Any = spec.raw if spec.raw is not None else spec.impl  # types checked above

    def match(request: Request) -> bool:
        failure = None
        for item in read(request):
            try:
                if impl(value, item):
                    return True
            except EvaluationFailure as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return False

    return match
