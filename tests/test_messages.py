"""pbgm.messages: the one reading of pbgm's request JSON and writing of its response JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.errors import ValidationError
from pbgm.functions.temporal import parse_duration
from pbgm.messages import json_value, request_from_json, response_to_json
from pbgm.model import (
    Advice,
    Decision,
    EvaluationError,
    Obligation,
    Request,
    Response,
    Status,
)
from pbgm.policy.syntax import freeze
from pbgm.testing import make_request

# --- requests ----------------------------------------------------------------------------

BAD_REQUESTS = [
    # what is checked, document, the problems expected as (path, code)
    ("a document that is not an object", ["subject"], [("$", "invalid_type")]),
    ("a string is not a request", "subject", [("$", "invalid_type")]),
    (
        "an unknown top-level key",
        {"subject": {}, "colour": "red"},
        [("$.colour", "unknown_member")],
    ),
    ("a category that is a string", {"subject": "alice"}, [("$.subject", "invalid_type")]),
    ("a category that is null", {"action": None}, [("$.action", "invalid_type")]),
    ("a category that is a list", {"resource": [1]}, [("$.resource", "invalid_type")]),
    (
        "every problem listed at once",
        {"subject": 1, "now": "x", "environment": []},
        [
            ("$.subject", "invalid_type"),
            ("$.now", "unknown_member"),
            ("$.environment", "invalid_type"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("what", "document", "problems"), BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS]
)
def test_a_bad_request_lists_every_problem_with_a_stable_code(what, document, problems):
    with pytest.raises(ValidationError) as raised:
        request_from_json(document)
    assert [(p.path, p.code) for p in raised.value.problems] == problems
    assert raised.value.code == "validation_failed"


def test_problems_are_located_inside_a_larger_document():
    with pytest.raises(ValidationError) as raised:
        request_from_json({"colour": 1}, "$.requests[2]")
    assert [p.path for p in raised.value.problems] == ["$.requests[2].colour"]


def test_keys_the_caller_reads_itself_are_allowed_and_left_out():
    document = {"subject": {"id": "alice"}, "now": "2026-01-01T00:00:00Z", "memberships": {}}
    request = request_from_json(document, extra=("now", "memberships"))
    assert request == Request(subject={"id": "alice"})


def test_a_request_is_frozen_and_missing_categories_are_empty():
    request = request_from_json({"subject": {"id": "alice", "groups": ["ops", "admins"]}})
    assert isinstance(request.subject, MappingProxyType)
    assert request.subject["groups"] == ("ops", "admins")
    assert (dict(request.resource), dict(request.action), dict(request.environment)) == ({}, {}, {})
    with pytest.raises(TypeError):
        request.subject["id"] = "mallory"  # type: ignore[index]


def test_make_request_reads_through_the_same_function():
    bags = {"subject": {"id": "a"}, "action": {"id": "read"}}
    assert make_request(subject=bags["subject"], action=bags["action"]) == request_from_json(bags)


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
categories = st.fixed_dictionaries(
    {},
    optional={
        c: st.dictionaries(st.text(max_size=5), json_values, max_size=3)
        for c in ("subject", "resource", "action", "environment")
    },
)


@settings(max_examples=150, deadline=None)
@given(categories)
def test_a_request_read_from_json_gives_back_the_same_json(document):
    request = request_from_json(document)
    written = {c: json_value(request.bag(c)) for c in document}
    assert written == document


# --- responses ---------------------------------------------------------------------------

CEST = timezone(timedelta(hours=2))

VALUES = [
    # what is checked, attribute value, its JSON
    (
        "an aware date-time in UTC with Z",
        datetime(2026, 3, 2, 14, 0, tzinfo=CEST),
        "2026-03-02T12:00:00Z",
    ),
    ("a naive date-time as written", datetime(2026, 3, 2, 14, 0), "2026-03-02T14:00:00"),
    ("a date", date(2026, 3, 2), "2026-03-02"),
    ("a time of day", time(8, 30), "08:30:00"),
    ("a duration in minutes", timedelta(minutes=15), "PT15M"),
    ("a duration of days and hours", timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
    ("a duration of whole days", timedelta(days=3), "P3D"),
    ("a fraction of a second", timedelta(seconds=0.5), "PT0.5S"),
    ("a zero duration", timedelta(0), "PT0S"),
    ("a negative duration", timedelta(seconds=-90), "-PT1M30S"),
    ("a set sorted", frozenset({"b", "c", "a"}), ["a", "b", "c"]),
    ("a set of mixed kinds sorted by repr", frozenset({1, "a"}), ["a", 1]),
    ("a frozen bag as a list", ("x", 1), ["x", 1]),
    (
        "a frozen object as an object",
        freeze({"p_max_kw": 250, "at": [1, 2]}),
        {"p_max_kw": 250, "at": [1, 2]},
    ),
    ("a scalar as itself", 3.5, 3.5),
]


@pytest.mark.parametrize(("what", "value", "expected"), VALUES, ids=[r[0] for r in VALUES])
def test_attribute_values_are_written_json_safe(what, value, expected):
    assert json_value(value) == expected
    assert json.loads(json.dumps(json_value(value))) == expected


@pytest.mark.parametrize(
    "delta",
    [
        timedelta(minutes=15),
        timedelta(days=2, seconds=7),
        timedelta(seconds=59, microseconds=123456),
    ],
)
def test_durations_are_written_as_the_condition_language_reads_them(delta):
    assert parse_duration(json_value(delta)) == delta


def test_a_response_is_written_whole():
    moment = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    response = Response(
        Decision.DENY,
        Status("processing-error", "a rule failed"),
        obligations=(Obligation("clamp", freeze({"p_max_kw": 250, "until": moment})),),
        advice=(Advice("notify", freeze({"to": frozenset({"ops"})})),),
        policy_ids=("p1", "p2"),
        errors=(EvaluationError("type_error", "`x` is not a number", "p1", "r1"),),
    )
    assert response_to_json(response) == {
        "decision": "Deny",
        "status": {"code": "processing-error", "message": "a rule failed"},
        "obligations": [
            {"id": "clamp", "attributes": {"p_max_kw": 250, "until": "2026-03-02T12:00:00Z"}}
        ],
        "advice": [{"id": "notify", "attributes": {"to": ["ops"]}}],
        "policy_ids": ["p1", "p2"],
        "errors": [
            {
                "code": "type_error",
                "message": "`x` is not a number",
                "policy_id": "p1",
                "rule_id": "r1",
            }
        ],
    }


def test_an_empty_response_has_every_key():
    assert response_to_json(Response(Decision.NOT_APPLICABLE)) == {
        "decision": "NotApplicable",
        "status": {"code": "ok", "message": ""},
        "obligations": [],
        "advice": [],
        "policy_ids": [],
        "errors": [],
    }


# --- layering ----------------------------------------------------------------------------


def test_the_module_is_core_and_the_cli_needs_no_test_helpers():
    code = (
        "import sys, pbgm.messages\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded & {'flask', 'sqlalchemy', 'click', 'paho', 'numpy'}, loaded\n"
        "import pbgm.cli\n"
        "assert 'pbgm.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
