"""The XACML data types and functions, as §A.2 and §A.3 define them, through the compiler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbgm.decision import check_condition, compile_condition, compile_expression
from pbgm.errors import ValidationError
from pbgm.functions import XACML_FUNCTIONS, EvaluationFailure
from pbgm.functions import datatypes as dt
from pbgm.model import Apply, AttributeRef, ExtendedRequest, Literal, Request, typed_key

F1 = "urn:oasis:names:tc:xacml:1.0:function:"
F2 = "urn:oasis:names:tc:xacml:2.0:function:"
F3 = "urn:oasis:names:tc:xacml:3.0:function:"
XS = dt.XS
X1 = dt.XACML1
X2 = dt.XACML2


def lit(text: str, kind: str = "string") -> Literal:
    uri = {"rfc822Name": X1, "x500Name": X1, "ipAddress": X2, "dnsName": X2}.get(kind, XS) + kind
    return Literal(text, uri)


def call(function: str, *args) -> Apply:
    return Apply(
        function,
        tuple(a if not isinstance(a, str | int | float | bool) else Literal(a) for a in args),
    )


def bag(kind: str, *texts: str) -> Apply:
    prefix = F3 if "Duration" in kind else (F2 if kind in ("ipAddress", "dnsName") else F1)
    return Apply(prefix + f"{kind}-bag", tuple(lit(t, kind) for t in texts))


def run(expr):
    return compile_expression(expr)(Request())


CASES = [
    # equality, with the equality of each type
    (call(F1 + "string-equal", "a", "a"), True),
    (call(F3 + "string-equal-ignore-case", "ABC", "abc"), True),
    (call(F1 + "double-equal", lit("27.50", "double"), 27.5), True),
    (
        call(
            F1 + "rfc822Name-equal",
            lit("a@EXAMPLE.com", "rfc822Name"),
            lit("a@example.COM", "rfc822Name"),
        ),
        True,
    ),
    (
        call(
            F1 + "rfc822Name-equal",
            lit("A@example.com", "rfc822Name"),
            lit("a@example.com", "rfc822Name"),
        ),
        False,
    ),
    (
        call(
            F1 + "x500Name-equal",
            lit("cn=Alice  Smith, o=Medico", "x500Name"),
            lit("CN=alice smith,O=MEDICO", "x500Name"),
        ),
        True,
    ),
    (
        call(
            F1 + "dateTime-equal",
            lit("2002-03-22T08:23:47-05:00", "dateTime"),
            lit("2002-03-22T13:23:47Z", "dateTime"),
        ),
        True,
    ),
    (call(F1 + "time-equal", lit("08:00:00-05:00", "time"), lit("13:00:00Z", "time")), True),
    (call(F1 + "date-equal", lit("2002-03-22", "date"), lit("2002-03-22Z", "date")), True),
    (
        call(
            F3 + "dayTimeDuration-equal",
            lit("P1DT2H", "dayTimeDuration"),
            lit("PT26H", "dayTimeDuration"),
        ),
        True,
    ),
    (
        call(
            F3 + "yearMonthDuration-equal",
            lit("P1Y2M", "yearMonthDuration"),
            lit("P14M", "yearMonthDuration"),
        ),
        True,
    ),
    (call(F1 + "hexBinary-equal", lit("0fb8", "hexBinary"), lit("0FB8", "hexBinary")), True),
    (
        call(
            F1 + "base64Binary-equal",
            lit("c3VyZS4=", "base64Binary"),
            lit("c3Vy ZS4=", "base64Binary"),
        ),
        True,
    ),
    (call(F1 + "anyURI-equal", lit("http://a/b", "anyURI"), lit("http://a/b", "anyURI")), True),
    # arithmetic
    (call(F1 + "integer-add", 1, 2, 3), 6),
    (call(F1 + "integer-divide", -7, 2), -3),
    (call(F1 + "integer-mod", -7, 2), -1),
    (call(F1 + "double-multiply", 1.5, 2.0), 3.0),
    (call(F1 + "round", 2.5), 3.0),
    (call(F1 + "round", -2.5), -2.0),
    (call(F1 + "floor", -1.5), -2.0),
    (call(F1 + "double-to-integer", -2.7), -2),
    (call(F1 + "integer-abs", -4), 4),
    # strings
    (call(F1 + "string-normalize-space", "  a  b  "), "a  b"),
    (call(F1 + "string-normalize-to-lower-case", "AbC"), "abc"),
    (call(F2 + "string-concatenate", "a", "b", "c"), "abc"),
    (call(F3 + "string-starts-with", "ab", "abc"), True),
    (call(F3 + "string-ends-with", "bc", "abc"), True),
    (call(F3 + "anyURI-contains", "medico", lit("http://medico.com/x", "anyURI")), True),
    (call(F3 + "string-substring", "hello", 1, 3), "el"),
    (call(F3 + "string-substring", "hello", 1, -1), "ello"),
    (call(F3 + "anyURI-substring", lit("http://x", "anyURI"), 0, 4), "http"),
    (call(F3 + "integer-from-string", "-12"), -12),
    (call(F3 + "string-from-boolean", True), "true"),
    (call(F3 + "string-from-dayTimeDuration", lit("PT26H", "dayTimeDuration")), "P1DT2H"),
    # comparison
    (call(F1 + "string-less-than", "a", "b"), True),
    (call(F1 + "time-greater-than", lit("23:00:00-05:00", "time"), lit("01:00:00Z", "time")), True),
    (
        call(
            F2 + "time-in-range",
            lit("23:30:00Z", "time"),
            lit("22:00:00Z", "time"),
            lit("02:00:00Z", "time"),
        ),
        True,
    ),
    (
        call(
            F2 + "time-in-range",
            lit("12:00:00Z", "time"),
            lit("22:00:00Z", "time"),
            lit("02:00:00Z", "time"),
        ),
        False,
    ),
    # date arithmetic
    (
        call(
            F3 + "dateTime-add-yearMonthDuration",
            lit("2024-01-31T00:00:00Z", "dateTime"),
            lit("P1M", "yearMonthDuration"),
        ),
        datetime(2024, 2, 29, tzinfo=UTC),
    ),
    (
        call(
            F3 + "dateTime-subtract-dayTimeDuration",
            lit("2024-01-01T00:00:00Z", "dateTime"),
            lit("PT1H", "dayTimeDuration"),
        ),
        datetime(2023, 12, 31, 23, tzinfo=UTC),
    ),
    # logic
    (call(F1 + "and"), True),
    (call(F1 + "or"), False),
    (call(F1 + "n-of", 2, True, False, True), True),
    (call(F1 + "n-of", 2, True, False, False), False),
    (call(F1 + "not", False), True),
    # bags and sets
    (call(F1 + "string-one-and-only", bag("string", "a")), "a"),
    (call(F1 + "string-bag-size", bag("string", "a", "b")), 2),
    (call(F1 + "integer-is-in", 2, Apply(F1 + "integer-bag", (Literal(1), Literal(2)))), True),
    (call(F1 + "string-set-equals", bag("string", "a", "b", "a"), bag("string", "b", "a")), True),
    (call(F1 + "string-subset", bag("string", "a"), bag("string", "b", "a")), True),
    (call(F1 + "string-intersection", bag("string", "a", "b", "b"), bag("string", "b")), ("b",)),
    (
        call(F1 + "string-union", bag("string", "a"), bag("string", "b"), bag("string", "a")),
        ("a", "b"),
    ),
    (
        call(
            F1 + "rfc822Name-at-least-one-member-of",
            bag("rfc822Name", "x@A.COM"),
            bag("rfc822Name", "x@a.com"),
        ),
        True,
    ),
    # higher-order
    (call(F3 + "any-of", Literal(F1 + "string-equal"), "b", bag("string", "a", "b")), True),
    (
        call(
            F3 + "all-of",
            Literal(F1 + "integer-greater-than"),
            10,
            Apply(F1 + "integer-bag", (Literal(1), Literal(2))),
        ),
        True,
    ),
    (
        call(
            F3 + "any-of-any",
            Literal(F1 + "string-equal"),
            bag("string", "a", "b"),
            bag("string", "c", "b"),
        ),
        True,
    ),
    (
        call(
            F1 + "all-of-any",
            Literal(F1 + "integer-greater-than"),
            Apply(F1 + "integer-bag", (Literal(10), Literal(20))),
            Apply(F1 + "integer-bag", (Literal(15), Literal(5))),
        ),
        True,
    ),
    (
        call(
            F1 + "any-of-all",
            Literal(F1 + "integer-greater-than"),
            Apply(F1 + "integer-bag", (Literal(3), Literal(20))),
            Apply(F1 + "integer-bag", (Literal(15), Literal(5))),
        ),
        True,
    ),
    (
        call(
            F1 + "all-of-all",
            Literal(F1 + "integer-greater-than"),
            Apply(F1 + "integer-bag", (Literal(3), Literal(20))),
            Apply(F1 + "integer-bag", (Literal(1), Literal(2))),
        ),
        True,
    ),
    (
        call(F3 + "map", Literal(F1 + "string-normalize-to-lower-case"), bag("string", "A", "B")),
        ("a", "b"),
    ),
    # regular expressions (XPath fn:matches: anywhere in the text) and special matches
    (call(F1 + "string-regexp-match", "J.* K.* Hibbert", "J K Hibbert"), True),
    (call(F1 + "string-regexp-match", "b+", "abbbc"), True),
    (call(F1 + "string-regexp-match", "^b+$", "abbbc"), False),
    (
        call(F2 + "rfc822Name-regexp-match", ".*@medico\\.com", lit("a@medico.com", "rfc822Name")),
        True,
    ),
    (
        call(
            F1 + "x500Name-match",
            lit("o=Medico, c=US", "x500Name"),
            lit("cn=John, o=Medico, c=US", "x500Name"),
        ),
        True,
    ),
    (call(F1 + "rfc822Name-match", "medico.com", lit("anne@MEDICO.com", "rfc822Name")), True),
    (call(F1 + "rfc822Name-match", ".medico.com", lit("anne@medico.com", "rfc822Name")), False),
    (call(F1 + "rfc822Name-match", ".medico.com", lit("anne@east.medico.com", "rfc822Name")), True),
    (call(F1 + "rfc822Name-match", "Anne@medico.com", lit("anne@medico.com", "rfc822Name")), False),
]


@pytest.mark.parametrize(
    ("expr", "expected"),
    CASES,
    ids=[c[0].function.rsplit(":", 1)[1] + f"-{i}" for i, c in enumerate(CASES)],
)
def test_a_function_computes_what_the_standard_says(expr, expected):
    assert run(expr) == expected


def test_every_mandatory_function_is_registered():
    kinds = (
        "one-and-only",
        "bag-size",
        "is-in",
        "bag",
        "intersection",
        "union",
        "subset",
        "set-equals",
        "at-least-one-member-of",
    )
    for name in (
        "string",
        "boolean",
        "integer",
        "double",
        "date",
        "time",
        "dateTime",
        "anyURI",
        "hexBinary",
        "base64Binary",
        "x500Name",
        "rfc822Name",
    ):
        for kind in kinds:
            assert F1 + f"{name}-{kind}" in XACML_FUNCTIONS
    for name in ("dayTimeDuration", "yearMonthDuration"):
        assert all(F3 + f"{name}-{kind}" in XACML_FUNCTIONS for kind in kinds)
    for name in ("ipAddress", "dnsName"):
        assert all(
            F2 + f"{name}-{k}" in XACML_FUNCTIONS for k in ("one-and-only", "bag-size", "bag")
        )
        assert F3 + f"{name}-from-string" in XACML_FUNCTIONS
        assert F2 + f"{name}-regexp-match" in XACML_FUNCTIONS
    assert len(XACML_FUNCTIONS) >= 250


FAILING = [
    (
        call(
            F1 + "integer-divide",
            Apply(
                F1 + "integer-one-and-only", (AttributeRef("subject", "n", False, XS + "integer"),)
            ),
            0,
        ),
        "function_error",
    ),
    (
        call(F1 + "string-one-and-only", AttributeRef("subject", "s", True, XS + "string")),
        "not_single_value",
    ),
    (
        call(F1 + "string-one-and-only", AttributeRef("subject", "s", False, XS + "string")),
        "missing_attribute",
    ),
]


@pytest.mark.parametrize(("expr", "code"), FAILING)
def test_a_failing_call_is_an_evaluation_failure(expr, code):
    request = ExtendedRequest({"n": (1,), typed_key("n", XS + "integer"): (1,)})
    with pytest.raises(EvaluationFailure) as failure:
        compile_expression(expr)(request)
    assert failure.value.code == code


def test_a_missing_attribute_names_itself():
    expr = call(
        F1 + "string-one-and-only", AttributeRef("urn:my:category", "x", False, XS + "string")
    )
    with pytest.raises(EvaluationFailure) as failure:
        compile_expression(expr)(Request())
    assert failure.value.missing == (("urn:my:category", "x", XS + "string", None),)


STATIC = [
    (
        call(F1 + "string-equal", "a", AttributeRef("subject", "x", True, XS + "string")),
        "type_mismatch",
    ),
    (call(F1 + "integer-add", "a", 1), "type_mismatch"),
    (call(F3 + "anyURI-substring", lit("http://x", "anyURI"), -2, 8), "constant_fails"),
    (
        call(
            F3 + "any-of", Literal(F1 + "integer-add"), 1, Apply(F1 + "integer-bag", (Literal(1),))
        ),
        "type_mismatch",
    ),
    (call(F1 + "integer-bag-size", Apply(F1 + "string-bag", ())), "type_mismatch"),
    (Apply(F1 + "string-bag", (Literal("a"),)), "type_mismatch"),  # not a boolean
    (call(F1 + "string-regexp-match", "(a)\\1", "a"), "constant_fails"),
]


@pytest.mark.parametrize(("expr", "code"), STATIC)
def test_a_static_error_is_found_before_any_decision(expr, code):
    assert code in {p.code for p in check_condition(expr)}
    with pytest.raises(ValidationError):
        compile_condition(expr)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("dateTime", "2002-01-01T24:00:00Z", datetime(2002, 1, 2, tzinfo=UTC)),
        ("dateTime", "2002-01-01T10:00:00", datetime(2002, 1, 1, 10, tzinfo=UTC)),
        ("dayTimeDuration", "-P1DT1S", -timedelta(days=1, seconds=1)),
        ("double", "INF", float("inf")),
        ("boolean", "1", True),
        ("yearMonthDuration", "-P5Y3M", dt.YearMonthDuration(-63)),
    ],
)
def test_lexical_forms_are_read_as_xml_schema_says(kind, text, expected):
    assert dt.BY_NAME[kind].parse(text) == expected


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("integer", "1.0"),
        ("boolean", "yes"),
        ("date", "2002-13-01"),
        ("time", "25:00:00"),
        ("dayTimeDuration", "P1Y"),
        ("hexBinary", "ABC"),
        ("rfc822Name", "no-at-sign"),
        ("ipAddress", "300.1.1.1"),
        ("dnsName", "bad_host"),
        ("x500Name", "cn"),
    ],
)
def test_a_bad_lexical_form_is_refused(kind, text):
    with pytest.raises(ValueError):
        dt.BY_NAME[kind].parse(text)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("double", "27.5"),
        ("dateTime", "2002-03-22T08:23:47-05:00"),
        ("time", "22:12:10-14:00"),
        ("date", "1256-11-11"),
        ("dayTimeDuration", "P50DT5H4M3S"),
        ("yearMonthDuration", "-P28Y7M"),
        ("hexBinary", "0BF7A9876CDE"),
        ("base64Binary", "c3VyZS4="),
        ("ipAddress", "35.123.111.56/255.64.32.255:9999"),
        ("ipAddress", "[::1]:80-90"),
        ("dnsName", "*.host.name:147-874"),
    ],
)
def test_a_value_is_written_back_to_an_equal_lexical_form(kind, text):
    value = dt.BY_NAME[kind].parse(text)
    assert dt.BY_NAME[kind].parse(dt.lexical(value)) == value
