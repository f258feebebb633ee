"""pbgm's request and response JSON: the one reading of a request, the one writing of a response.

A request is `{"subject": {...}, "resource": {...}, "action": {...}, "environment":
{...}}`: each category, when present, maps attribute names to values. A response is
`{"decision", "status": {"code", "message"}, "obligations": [{"id", "attributes"}],
"advice": [...], "policy_ids": [...], "errors": [{"code", "message", "policy_id",
"rule_id"}]}`. The REST API, `pbgm decide`, `pbgm.testing` and the XACML JSON profile
all read and write through here, so they cannot drift apart.

Attribute values in a response are made JSON-safe: date-times become ISO 8601 strings
(UTC with `Z` when they carry a timezone), dates and times ISO strings, durations ISO 8601
durations (`PT15M`), sets sorted lists. Stdlib only (a core module).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.model import CATEGORIES, EMPTY_BAG, EvaluationError, Request, Response
from pbgm.policy import format_datetime, freeze

__all__ = ["json_value", "request_from_json", "request_problems", "response_to_json"]


def request_problems(data: Any, path: str = "$", *, extra: Collection[str] = ()) -> list[Problem]:
    """Everything wrong with a request document, each problem with a stable code.

    `extra` names top-level keys a caller reads itself (such as the CLI's `now`); any
    other key that is not a category is `unknown_member`, a category that is not an
    object `invalid_type`.
    """
    if not isinstance(data, Mapping):
        return [Problem(path, "invalid_type", "a request is a JSON object")]
    problems = []
    for key, value in data.items():
        if key in CATEGORIES:
            if value.__class__ is not dict and not isinstance(value, Mapping):
                message = f"`{key}` maps attribute names to values"
                problems.append(Problem(f"{path}.{key}", "invalid_type", message))
        elif key not in extra:
            problems.append(Problem(f"{path}.{key}", "unknown_member", f"unknown member `{key}`"))
    return problems


def request_from_json(data: Any, path: str = "$", *, extra: Collection[str] = ()) -> Request:
    """A frozen `Request` from pbgm's request JSON; strict (see `request_problems`).

    Raises `ValidationError` listing every problem; `path` locates the document
    inside a larger one (`$.requests[3]`).
    """
    problems = request_problems(data, path, extra=extra)
    if problems:
        raise ValidationError(problems)
    get = data.get  # `freeze` copies each bag: the caller's data stays its own
    return Request(*(freeze(get(c, EMPTY_BAG)) for c in CATEGORIES))


def response_to_json(response: Response) -> dict[str, Any]:
    """A `Response` as pbgm's JSON answer (what the API returns and `pbgm decide` prints)."""
    return {
        "decision": str(response.decision),
        "status": {"code": response.status.code, "message": response.status.message},
        "obligations": [
            {"id": o.id, "attributes": json_value(o.attributes)} for o in response.obligations
        ],
        "advice": [{"id": a.id, "attributes": json_value(a.attributes)} for a in response.advice],
        "policy_ids": list(response.policy_ids),
        "errors": [_error(e) for e in response.errors],
    }


def _error(error: EvaluationError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "policy_id": error.policy_id,
        "rule_id": error.rule_id,
    }


def json_value(value: Any) -> Any:
    """A plain, JSON-safe copy of an attribute value (frozen or not)."""
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, set | frozenset):
        return _sorted([json_value(v) for v in value])
    if isinstance(value, datetime):
        return format_datetime(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value)
    return value


def _sorted(items: list[Any]) -> list[Any]:
    """Sorted by value; by `repr` when the members cannot be compared (mixed kinds)."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _duration(delta: timedelta) -> str:
    """ISO 8601, as the condition language reads it (`P1DT2H30M`, `PT0.5S`; `-` if negative)."""
    sign, delta = ("-", -delta) if delta < timedelta(0) else ("", delta)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second = f"{seconds}.{delta.microseconds:06d}".rstrip("0").rstrip(".")
    days = f"{delta.days}D" if delta.days else ""
    clock = "".join(
        f"{amount}{unit}"
        for amount, unit in ((hours, "H"), (minutes, "M"), (second, "S"))
        if amount not in (0, "0")
    )
    if not days and not clock:
        return "PT0S"
    return f"{sign}P{days}T{clock}" if clock else f"{sign}P{days}"
