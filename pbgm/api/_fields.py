"""Reading the small JSON objects of the administration endpoints, all problems at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from pbgm.api._http import json_object
from pbgm.errors import Problem, ValidationError

MAX_INTEGER = 2**31 - 1
"""Integers of these bodies are version numbers: a PostgreSQL INTEGER column holds them."""
_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    int: f"a whole number from 1 to {MAX_INTEGER}",
    list: "an array",
}


def optional_body() -> dict[str, Any]:
    """The JSON object of the body, or `{}` when there is no body at all."""
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return {}
    return json_object()


def fields(
    body: Mapping[str, Any],
    required: Mapping[str, type] | None = None,
    optional: Mapping[str, type] | None = None,
) -> dict[str, Any]:
    """The known members of `body`, type-checked; `ValidationError` lists every problem."""
    required, optional = dict(required or {}), dict(optional or {})
    problems = [
        Problem(f"$.{name}", "unknown_member", f"unknown member `{name}`")
        for name in body
        if name not in required and name not in optional
    ]
    problems += [
        Problem(f"$.{name}", "missing_field", f"`{name}` is required")
        for name in required
        if name not in body
    ]
    for name, kind in {**required, **optional}.items():
        if name in body and not _is(body[name], kind):
            problems.append(
                Problem(f"$.{name}", "invalid_type", f"`{name}` must be {_TYPE_NAMES[kind]}")
            )
    if problems:
        raise ValidationError(problems)
    return {name: body[name] for name in body}


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INTEGER
    return isinstance(value, kind)


def strings(value: list[Any], path: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in value):
        raise ValidationError([Problem(path, "invalid_type", "an array of strings")])
    return tuple(value)
