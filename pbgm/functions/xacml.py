"""The functions of XACML 3.0 (§A.3, §10.2.8), registered by their URNs in `XACML_FUNCTIONS`.

Every mandatory function is here, with its XACML signature (`Signature`): equality,
arithmetic, string and numeric conversion, logic, numeric and non-numeric comparison,
date and time arithmetic, the string functions of 3.0, the bag and set functions of every
type, the higher-order functions (3.0 and the 1.0 forms), regular-expression matching and
the special match functions. XPath functions and `access-permitted` (optional) are not.

Values are the typed values of `pbgm.functions.datatypes`; a bag is a tuple. Each spec's
`impl` checks the classes of its arguments (a value of the wrong type fails with
`type_error`); `raw` skips the checks, for calls whose argument types the condition
compiler proved (`pbgm.decision.compiler`). `and`, `or`, `n-of` and `not` are evaluated
lazily, left to right, by the compiler's builders; the higher-order functions receive the
spec of the function they apply. An error is an `EvaluationFailure`: a missing attribute,
a bag of other than one value given to `one-and-only`, division by zero, a value that does
not convert, an index out of range.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache, partial
from types import MappingProxyType
from typing import Any

import re2  # type: ignore[import-untyped]

from pbgm.functions.datatypes import (
    BY_NAME,
    XDate,
    XTime,
    lexical,
)
from pbgm.functions.spec import FunctionSpec, Signature
from pbgm.functions.values import EvaluationFailure

F1 = "urn:oasis:names:tc:xacml:1.0:function:"
F2 = "urn:oasis:names:tc:xacml:2.0:function:"
F3 = "urn:oasis:names:tc:xacml:3.0:function:"

BAG_TYPES_ALL = (
    "string",
    "boolean",
    "integer",
    "double",
    "time",
    "date",
    "dateTime",
    "anyURI",
    "hexBinary",
    "base64Binary",
    "dayTimeDuration",
    "yearMonthDuration",
    "x500Name",
    "rfc822Name",
    "ipAddress",
    "dnsName",
)
SET_TYPES = BAG_TYPES_ALL[:-2]
"""The types with equality (every type but ipAddress and dnsName)."""
ORDERED = ("integer", "double", "string", "time", "date", "dateTime")


def prefix(type_name: str) -> str:
    """The URN prefix of a type's bag and set functions (durations are 3.0, ipAddress and
    dnsName 2.0, the others 1.0)."""
    if type_name in ("dayTimeDuration", "yearMonthDuration"):
        return F3
    if type_name in ("ipAddress", "dnsName"):
        return F2
    return F1


def fail(message: str, code: str = "function_error") -> EvaluationFailure:
    return EvaluationFailure(code, message)


# --- argument checks -------------------------------------------------------------------------


def _class_of(kind: str) -> type | None:
    base = kind.removesuffix("[]")
    return BY_NAME[base].cls if base in BY_NAME else None


def _checked(name: str, signature: Signature, raw: Callable[..., Any]) -> Callable[..., Any]:
    """`raw` behind a check of its arguments' classes against `signature`."""
    kinds = [(kind.endswith("[]"), _class_of(kind)) for kind in signature.params]
    short = name.rsplit(":", 1)[-1]

    def check(args: tuple[Any, ...]) -> None:
        for i, arg in enumerate(args):
            bag, cls = kinds[min(i, len(kinds) - 1)]
            if cls is None:
                continue
            if bag:
                if arg.__class__ is not tuple or any(v.__class__ is not cls for v in arg):
                    raise _type_error(short, i, signature.params[min(i, len(kinds) - 1)], arg)
            elif arg.__class__ is not cls:
                raise _type_error(short, i, signature.params[min(i, len(kinds) - 1)], arg)

    def impl(*args: Any) -> Any:
        check(args)
        return raw(*args)

    return impl


def _type_error(fn: str, index: int, kind: str, value: Any) -> EvaluationFailure:
    what = "bag" if value.__class__ is tuple else type(value).__name__
    expected = f"a bag of {kind[:-2]}" if kind.endswith("[]") else f"a {kind}"
    return EvaluationFailure(
        "type_error", f"`{fn}` expects {expected} as argument {index + 1}, got a {what}"
    )


# --- building the registry ----------------------------------------------------------------------

_SPECS: list[FunctionSpec] = []


def _add(
    name: str,
    params: tuple[str, ...],
    returns: str,
    raw: Callable[..., Any] | None,
    description: str,
    *,
    variadic: bool = False,
    min_args: int | None = None,
) -> None:
    signature = Signature(params, returns, variadic)
    count = len(params)
    low = count if min_args is None else min_args
    high = None if variadic else count
    impl = None if raw is None else _checked(name, signature, raw)
    spec = FunctionSpec(
        name,
        low,
        high,
        description,
        ("dynamic",),
        returns="boolean" if returns == "boolean" else "dynamic",
        impl=impl,
        category="xacml",
        signature=signature,
        raw=raw,
    )
    _SPECS.append(spec)


# equality (§A.3.1)

for _t in SET_TYPES:
    _add(
        prefix(_t) + f"{_t}-equal",
        (_t, _t),
        "boolean",
        lambda a, b: a == b,
        f"True when the two {_t} values are equal.",
    )
_add(
    F3 + "string-equal-ignore-case",
    ("string", "string"),
    "boolean",
    lambda a, b: a.lower() == b.lower(),
    "True when the strings are equal ignoring case.",
)


# arithmetic (§A.3.2)


def _integer_divide(a: int, b: int) -> int:
    if b == 0:
        raise fail("`integer-divide` by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b > 0) else -quotient


def _integer_mod(a: int, b: int) -> int:
    if b == 0:
        raise fail("`integer-mod` by zero")
    return a - b * _integer_divide(a, b)


def _double_divide(a: float, b: float) -> float:
    if b == 0:
        raise fail("`double-divide` by zero")
    return a / b


def _sum(*values: Any) -> Any:
    return sum(values)


def _product(*values: Any) -> Any:
    out = 1 if values[0].__class__ is int else 1.0
    for value in values:
        out *= value
    return out


def _double_to_integer(value: float) -> int:
    if math.isnan(value) or math.isinf(value):
        raise fail(f"`double-to-integer` of {value}")
    return int(value)


for _t in ("integer", "double"):
    _add(F1 + f"{_t}-add", (_t, _t), _t, _sum, f"The sum of {_t}s (two or more).", variadic=True)
    _add(F1 + f"{_t}-subtract", (_t, _t), _t, lambda a, b: a - b, "The first minus the second.")
    _add(
        F1 + f"{_t}-multiply",
        (_t, _t),
        _t,
        _product,
        f"The product of {_t}s (two or more).",
        variadic=True,
    )
    _add(F1 + f"{_t}-abs", (_t,), _t, abs, "The absolute value.")
_add(
    F1 + "integer-divide",
    ("integer", "integer"),
    "integer",
    _integer_divide,
    "The first divided by the second, truncated towards zero; by zero: Indeterminate.",
)
_add(
    F1 + "double-divide",
    ("double", "double"),
    "double",
    _double_divide,
    "The first divided by the second; by zero: Indeterminate.",
)
_add(
    F1 + "integer-mod",
    ("integer", "integer"),
    "integer",
    _integer_mod,
    "The remainder of the division (the sign of the first).",
)
_add(
    F1 + "round",
    ("double",),
    "double",
    lambda x: float(math.floor(x + 0.5)) if math.isfinite(x) else x,
    "The nearest whole number (halves rounded up).",
)
_add(
    F1 + "floor",
    ("double",),
    "double",
    lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    "The greatest whole number not above.",
)

# conversion (§A.3.3, §A.3.4)
_add(
    F1 + "string-normalize-space",
    ("string",),
    "string",
    lambda s: s.strip(" \t\n\r"),
    "The string without leading and trailing white space.",
)
_add(
    F1 + "string-normalize-to-lower-case",
    ("string",),
    "string",
    str.lower,
    "The string in lower case.",
)
_add(
    F1 + "double-to-integer",
    ("double",),
    "integer",
    _double_to_integer,
    "The double truncated towards zero.",
)
_add(F1 + "integer-to-double", ("integer",), "double", float, "The integer as a double.")


# logic (§A.3.5): evaluated lazily by the compiler's builders; `impl` is their strict form


def _n_of(count: int, *values: bool) -> bool:
    if count > len(values):
        raise fail(f"`n-of` needs {count} true values of {len(values)}")
    return sum(1 for v in values if v) >= count


_add(
    F1 + "or",
    ("boolean",),
    "boolean",
    lambda *v: any(v),
    "True when one argument is true (left to right, stops at the first true).",
    variadic=True,
    min_args=0,
)
_add(
    F1 + "and",
    ("boolean",),
    "boolean",
    lambda *v: all(v),
    "True when every argument is true (left to right, stops at the first false).",
    variadic=True,
    min_args=0,
)
_add(
    F1 + "n-of",
    ("integer", "boolean"),
    "boolean",
    _n_of,
    "True when at least the first argument's number of the others are true.",
    variadic=True,
    min_args=1,
)
_add(F1 + "not", ("boolean",), "boolean", lambda v: not v, "The negation.")


# comparison (§A.3.6, §A.3.8)

_ORDERS = {
    "greater-than": lambda a, b: a > b,
    "greater-than-or-equal": lambda a, b: a >= b,
    "less-than": lambda a, b: a < b,
    "less-than-or-equal": lambda a, b: a <= b,
}
for _t in ORDERED:
    for _word, _op in _ORDERS.items():
        _add(
            F1 + f"{_t}-{_word}",
            (_t, _t),
            "boolean",
            _op,
            f"True when the first {_t} is {_word.replace('-', ' ')} the second.",
        )


def _time_in_range(value: XTime, low: XTime, high: XTime) -> bool:
    at, start, end = value.seconds_utc(), low.seconds_utc(), high.seconds_utc()
    if start <= end:
        return start <= at <= end
    return at >= start or at <= end


_add(
    F2 + "time-in-range",
    ("time", "time", "time"),
    "boolean",
    _time_in_range,
    "True when the first time is within the second and third (inclusive; may wrap midnight).",
)


# date and time arithmetic (§A.3.7)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise fail("the date is out of range (years 1-9999)")
    days = _days_in(year, month + 1)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, days))


def _days_in(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days


def _shift(moment: datetime, span: timedelta) -> datetime:
    try:
        return moment + span
    except OverflowError:
        raise fail("the dateTime is out of range (years 1-9999)") from None


def _date_months(value: XDate, months: int) -> XDate:
    moment = _add_months(datetime(value.value.year, value.value.month, value.value.day), months)
    return XDate(moment.date(), value.offset)


_add(
    F3 + "dateTime-add-dayTimeDuration",
    ("dateTime", "dayTimeDuration"),
    "dateTime",
    _shift,
    "The dateTime plus the duration.",
)
_add(
    F3 + "dateTime-subtract-dayTimeDuration",
    ("dateTime", "dayTimeDuration"),
    "dateTime",
    lambda m, s: _shift(m, -s),
    "The dateTime minus the duration.",
)
_add(
    F3 + "dateTime-add-yearMonthDuration",
    ("dateTime", "yearMonthDuration"),
    "dateTime",
    lambda m, d: _add_months(m, d.months),
    "The dateTime plus the duration.",
)
_add(
    F3 + "dateTime-subtract-yearMonthDuration",
    ("dateTime", "yearMonthDuration"),
    "dateTime",
    lambda m, d: _add_months(m, -d.months),
    "The dateTime minus the duration.",
)
_add(
    F3 + "date-add-yearMonthDuration",
    ("date", "yearMonthDuration"),
    "date",
    lambda v, d: _date_months(v, d.months),
    "The date plus the duration.",
)
_add(
    F3 + "date-subtract-yearMonthDuration",
    ("date", "yearMonthDuration"),
    "date",
    lambda v, d: _date_months(v, -d.months),
    "The date minus the duration.",
)


# string functions (§A.3.9)


def _from_string(type_name: str) -> Callable[[str], Any]:
    parse = BY_NAME[type_name].parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise fail(f"`{type_name}-from-string`: {exc}") from None

    return convert


def _substring(text: str, begin: int, end: int) -> str:
    if begin < 0 or begin > len(text) or end < -1 or end > len(text) or (end != -1 and end < begin):
        raise fail(f"substring [{begin}, {end}) is out of range of a text of {len(text)}")
    return text[begin:] if end == -1 else text[begin:end]


_add(
    F2 + "string-concatenate",
    ("string", "string"),
    "string",
    lambda *s: "".join(s),
    "The strings joined (two or more).",
    variadic=True,
)
for _t in BAG_TYPES_ALL:
    if _t == "string":
        continue
    _add(
        F3 + f"{_t}-from-string",
        ("string",),
        _t,
        _from_string(_t),
        f"The {_t} a string spells; Indeterminate if it spells none.",
    )
    _add(F3 + f"string-from-{_t}", (_t,), "string", lexical, f"The {_t} spelled as a string.")
for _word, _test in (
    ("starts-with", lambda part, text: text.startswith(part)),
    ("ends-with", lambda part, text: text.endswith(part)),
    ("contains", lambda part, text: part in text),
):
    _add(
        F3 + f"string-{_word}",
        ("string", "string"),
        "boolean",
        _test,
        f"True when the second string {_word.replace('-', ' ')} the first.",
    )
    _add(
        F3 + f"anyURI-{_word}",
        ("string", "anyURI"),
        "boolean",
        (lambda test: lambda part, uri: test(part, uri.text))(_test),
        f"True when the URI {_word.replace('-', ' ')} the string.",
    )
_add(
    F3 + "string-substring",
    ("string", "integer", "integer"),
    "string",
    _substring,
    "The characters from the first index (0-based) to the second (exclusive; -1: to the end).",
)
_add(
    F3 + "anyURI-substring",
    ("anyURI", "integer", "integer"),
    "string",
    lambda uri, b, e: _substring(uri.text, b, e),
    "A substring of the URI, as a string.",
)


# bags (§A.3.10) and sets (§A.3.11)


def _one_and_only(type_name: str) -> Callable[[tuple[Any, ...]], Any]:
    def one(bag: tuple[Any, ...]) -> Any:
        if len(bag) != 1:
            raise EvaluationFailure(
                "not_single_value", f"`{type_name}-one-and-only` got a bag of {len(bag)} values"
            )
        return bag[0]

    return one


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


for _t in BAG_TYPES_ALL:
    _p = prefix(_t)
    _add(
        _p + f"{_t}-one-and-only",
        (f"{_t}[]",),
        _t,
        _one_and_only(_t),
        "The only value of a bag of one; Indeterminate otherwise.",
    )
    _add(_p + f"{_t}-bag-size", (f"{_t}[]",), "integer", len, "The number of values in the bag.")
    _add(
        _p + f"{_t}-bag",
        (_t,),
        f"{_t}[]",
        lambda *values: values,
        "A bag of the values (none or more).",
        variadic=True,
        min_args=0,
    )
for _t in SET_TYPES:
    _p = prefix(_t)
    _add(
        _p + f"{_t}-is-in",
        (_t, f"{_t}[]"),
        "boolean",
        lambda value, bag: value in bag,
        "True when the value is in the bag.",
    )
    _add(
        _p + f"{_t}-intersection",
        (f"{_t}[]", f"{_t}[]"),
        f"{_t}[]",
        lambda a, b: _unique(v for v in a if v in b),
        "The values in both bags, once each.",
    )
    _add(
        _p + f"{_t}-at-least-one-member-of",
        (f"{_t}[]", f"{_t}[]"),
        "boolean",
        lambda a, b: any(v in b for v in a),
        "True when the bags share a value.",
    )
    _add(
        _p + f"{_t}-union",
        (f"{_t}[]", f"{_t}[]"),
        f"{_t}[]",
        lambda *bags: _unique(itertools.chain(*bags)),
        "The values of all the bags (two or more), once each.",
        variadic=True,
    )
    _add(
        _p + f"{_t}-subset",
        (f"{_t}[]", f"{_t}[]"),
        "boolean",
        lambda a, b: all(v in b for v in a),
        "True when every value of the first is in the second.",
    )
    _add(
        _p + f"{_t}-set-equals",
        (f"{_t}[]", f"{_t}[]"),
        "boolean",
        lambda a, b: set(a) == set(b),
        "True when the bags hold the same values.",
    )


# regular expressions (§A.3.13) and special matches (§A.3.14)

MAX_PATTERN = 4096
MAX_INPUT = 65_536
_UNSUPPORTED_REGEX = re.compile(r"\\[ic]|\\p\{Is|-\[")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.never_capture = True


@lru_cache(maxsize=512)
def regex(pattern: str) -> Any:
    """An XML Schema / XPath regular expression, compiled by RE2 (matching in linear time,
    so no pattern can make a decision slow). The XML-name classes `\\i` and `\\c`, Unicode
    blocks (`\\p{IsBasicLatin}`) and class subtraction are refused; so is what RE2 cannot
    compile (back-references, which XML Schema has not either)."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"a regular expression has at most {MAX_PATTERN} characters")
    if _UNSUPPORTED_REGEX.search(pattern):
        raise ValueError(f"`{pattern}` uses regular-expression syntax pbgm does not support")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise ValueError(f"`{pattern}` is not a regular expression pbgm supports: {exc}") from None


def _matches(fn: str, pattern: str, text: str) -> bool:
    try:
        compiled = regex(pattern)
    except ValueError as exc:
        raise fail(f"`{fn}`: {exc}") from None
    if len(text) > MAX_INPUT:
        raise fail(f"input to `{fn}` is longer than {MAX_INPUT} characters")
    return compiled.search(text) is not None


_add(
    F1 + "string-regexp-match",
    ("string", "string"),
    "boolean",
    lambda p, s: _matches("string-regexp-match", p, s),
    "True when the pattern (first) matches somewhere in the string (second).",
)
for _t in ("anyURI", "ipAddress", "dnsName", "rfc822Name", "x500Name"):
    _add(
        F2 + f"{_t}-regexp-match",
        ("string", _t),
        "boolean",
        (lambda t: lambda p, v: _matches(f"{t}-regexp-match", p, str(v)))(_t),
        f"True when the pattern matches somewhere in the {_t}'s text.",
    )


def _x500_match(name: Any, other: Any) -> bool:
    size = len(name.rdns)
    return size <= len(other.rdns) and other.rdns[len(other.rdns) - size :] == name.rdns


def _rfc822_match(pattern: str, name: Any) -> bool:
    own: str = name.domain.lower()
    if "@" in pattern:
        local, _, domain = pattern.rpartition("@")
        return bool(local == name.local) and domain.lower() == own
    wanted = pattern.lower()
    if wanted.startswith("."):
        return own.endswith(wanted)
    return own == wanted


_add(
    F1 + "x500Name-match",
    ("x500Name", "x500Name"),
    "boolean",
    _x500_match,
    "True when the first name is a terminal sequence of the RDNs of the second.",
)
_add(
    F1 + "rfc822Name-match",
    ("string", "rfc822Name"),
    "boolean",
    _rfc822_match,
    "True when the name matches the pattern: a whole address, a domain or a `.domain` suffix.",
)


# higher-order functions (§A.3.12): the first argument is the function applied

HIGHER_ORDER = {
    F3 + "any-of": "any-of",
    F3 + "all-of": "all-of",
    F3 + "any-of-any": "any-of-any",
    F3 + "all-of-any": "all-of-any",
    F3 + "any-of-all": "any-of-all",
    F3 + "all-of-all": "all-of-all",
    F3 + "map": "map",
    F1 + "any-of": "any-of",
    F1 + "all-of": "all-of",
    F1 + "any-of-any": "any-of-any",
    F1 + "all-of-any": "all-of-any",
    F1 + "any-of-all": "any-of-all",
    F1 + "all-of-all": "all-of-all",
    F1 + "map": "map",
}
"""Higher-order function ids and their kind; the 1.0 forms take (function, value, bag),
(function, bag, bag) or (function, bag)."""


def _combine(want: bool, calls: Iterable[Callable[[], Any]]) -> bool:
    """`or` (want True) or `and` (want False) over lazy calls: the deciding value wins over
    an error of another call, else the first error propagates."""
    failure = None
    for call in calls:
        try:
            if call() is want:
                return bool(want)
        except EvaluationFailure as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return not want


def _one_bag(kind: str, args: tuple[Any, ...]) -> int:
    positions = [i for i, a in enumerate(args) if a.__class__ is tuple]
    if len(positions) != 1:
        raise EvaluationFailure("type_error", f"`{kind}` takes exactly one bag argument")
    return positions[0]


def higher_order(kind: str) -> Callable[..., Any]:
    """The implementation of a higher-order function: `(spec, *args)`."""

    def apply(spec: FunctionSpec, *args: Any) -> Any:
        impl = spec.impl
        assert impl is not None
        if kind in ("any-of", "all-of", "map"):
            at = _one_bag(kind, args)
            before, after = args[:at], args[at + 1 :]

            def call(value: Any) -> Callable[[], Any]:
                return lambda: impl(*before, value, *after)

            if kind == "map":
                return tuple(call(value)() for value in args[at])
            return _combine(kind == "any-of", (call(v) for v in args[at]))
        if kind == "any-of-any":
            pools = [a if a.__class__ is tuple else (a,) for a in args]
            combos = itertools.product(*pools)
            return _combine(True, (partial(impl, *combo) for combo in combos))
        first, second = args
        if first.__class__ is not tuple or second.__class__ is not tuple:
            raise EvaluationFailure("type_error", f"`{kind}` takes two bags")
        outer, inner = kind.split("-of-")

        def over_second(a: Any) -> bool:
            return _combine(inner == "any", (partial(impl, a, b) for b in second))

        return _combine(outer == "any", (partial(over_second, a) for a in first))

    return apply


_ARITY = {
    "any-of": (2, None, 3, 3),
    "all-of": (2, None, 3, 3),
    "any-of-any": (2, None, 3, 3),
    "all-of-any": (3, 3, 3, 3),
    "any-of-all": (3, 3, 3, 3),
    "all-of-all": (3, 3, 3, 3),
    "map": (2, None, 2, 2),
}
"""(least, most) arguments of the 3.0 form, then of the 1.0 form."""

for _urn, _kind in HIGHER_ORDER.items():
    _low, _high, _low1, _high1 = _ARITY[_kind]
    if _urn.startswith(F1):
        _low, _high = _low1, _high1
    _SPECS.append(
        FunctionSpec(
            _urn,
            _low,
            _high,
            f"`{_kind}`: the function named by the first argument applied to bag members.",
            ("function", "dynamic"),
            returns="boolean" if _kind != "map" else "dynamic",
            impl=higher_order(_kind),
            category="xacml",
            signature=Signature(("function",), "boolean" if _kind != "map" else "*[]", True),
        )
    )


XACML_FUNCTIONS: Mapping[str, FunctionSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every XACML function by its URN."""
LAZY = frozenset({F1 + "and", F1 + "or", F1 + "n-of", F1 + "not"})
"""Functions the compiler evaluates argument by argument (`pbgm.decision.builders`)."""
