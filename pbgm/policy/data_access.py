"""The cross-field checks of `data_access` contents that JSON Schema cannot express.

They run on content that passed its schema (`pbgm.policy.validate`), after the table
checks (`polling.endpoint` and each data point's `endpoint` name an endpoint):

=========================  ==============================================================
`missing_endpoint`         a data point names no endpoint, there is no `polling.endpoint`
                           and more than one endpoint to choose from
`unknown_placeholder`      a path or query template holds a `{name}` other than `{id}`
                           (paths) or `{id}`, `{since}`, `{now}` (query values)
`inconsistent_format`      two data points publish on one topic in different formats
`duplicate_signal`         two `json.edgeflex` data points give one topic the same signal
`rate_limit_too_low`       reading every data point of an endpoint once per
                           `polling.interval_s` needs more requests a minute than the
                           endpoint's rate limit allows
`invalid_secret_reference` a `secret_ref` name that climbs out of the secrets directory
=========================  ==============================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pbgm.errors import Problem
from pbgm.policy.schema import member, show

__all__ = ["PATH_PLACEHOLDERS", "QUERY_PLACEHOLDERS", "check_data_access", "point_endpoint"]

PATH_PLACEHOLDERS = frozenset({"id"})
QUERY_PLACEHOLDERS = frozenset({"id", "since", "now"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def point_endpoint(content: Mapping[str, Any], point: Mapping[str, Any]) -> str | None:
    """The endpoint a data point is read from: its own, `polling.endpoint`, or the only one."""
    named = point.get("endpoint") or (content.get("polling") or {}).get("endpoint")
    if named:
        return str(named)
    endpoints = content.get("endpoints") or {}
    return next(iter(endpoints)) if len(endpoints) == 1 else None


def check_data_access(content: Mapping[str, Any], base: str) -> list[Problem]:
    problems = _secret_problems(content, base)
    points = content.get("data_points") or {}
    if not points:
        return problems
    where = member(base, "data_points")
    topics: dict[str, tuple[str, str]] = {}
    signals: dict[tuple[str, str], str] = {}
    per_endpoint: dict[str, int] = {}
    for name, point in points.items():
        path = member(where, name)
        endpoint = point_endpoint(content, point)
        if endpoint is None:
            message = "name the `endpoint` to read from (or set `polling.endpoint`)"
            problems.append(Problem(path, "missing_endpoint", message))
        else:
            per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
        problems += _template_problems(point, path)
        topic, fmt = point["topic"], point.get("format", "time_value")
        first = topics.setdefault(topic, (name, fmt))
        if first[1] != fmt:
            message = (
                f"data point `{show(first[0])}` publishes `{show(topic)}` as `{first[1]}`; "
                f"one topic carries one format, not also `{fmt}`"
            )
            problems.append(Problem(member(path, "format"), "inconsistent_format", message))
        if fmt == "json.edgeflex":
            signal = point.get("signal", name)
            other = signals.setdefault((topic, signal), name)
            if other != name:
                message = (
                    f"data point `{show(other)}` already gives `{show(topic)}` "
                    f"the signal `{show(signal)}`"
                )
                problems.append(Problem(member(path, "signal"), "duplicate_signal", message))
    problems += _rate_problems(content, base, per_endpoint)
    return problems


def _template_problems(point: Mapping[str, Any], path: str) -> list[Problem]:
    problems = []
    for name in _PLACEHOLDER.findall(point["path"]):
        if name not in PATH_PLACEHOLDERS:
            message = f"`{{{show(name)}}}` is not a path placeholder; use `{{id}}`"
            problems.append(Problem(member(path, "path"), "unknown_placeholder", message))
    for key, value in (point.get("query") or {}).items():
        for name in _PLACEHOLDER.findall(value):
            if name not in QUERY_PLACEHOLDERS:
                message = (
                    f"`{{{show(name)}}}` is not a query placeholder; "
                    "use {id}, {since} or {now}"
                )
                where = member(member(path, "query"), key)
                problems.append(Problem(where, "unknown_placeholder", message))
    return problems


def _rate_problems(
    content: Mapping[str, Any], base: str, per_endpoint: Mapping[str, int]
) -> list[Problem]:
    interval = float((content.get("polling") or {}).get("interval_s", 0) or 0)
    if interval <= 0:
        return []
    problems = []
    endpoints = content.get("endpoints") or {}
    for endpoint, count in sorted(per_endpoint.items()):
        own = (endpoints.get(endpoint) or {}).get("rate_limit")
        limit = (own or content.get("rate_limit") or {}).get("requests_per_minute")
        if limit is None:
            continue
        needed = math.ceil(count * 60.0 / interval)
        if needed > limit:
            path = (
                member(member(member(base, "endpoints"), endpoint), "rate_limit")
                if own
                else member(base, "rate_limit")
            )
            message = (
                f"reading {count} data point(s) of `{show(endpoint)}` every {interval:g} s needs "
                f"{needed} requests a minute; the rate limit allows {limit}: raise it, read "
                "fewer data points or poll less often"
            )
            problems.append(
                Problem(member(path, "requests_per_minute"), "rate_limit_too_low", message)
            )
    return problems


def _secret_problems(content: Mapping[str, Any], base: str) -> list[Problem]:
    problems = []
    for name, endpoint in (content.get("endpoints") or {}).items():
        ref = (endpoint.get("auth") or {}).get("secret_ref")
        if isinstance(ref, str) and ".." in ref.split("/"):
            path = member(member(member(member(base, "endpoints"), name), "auth"), "secret_ref")
            message = "a secret name stays inside the secrets directory: no `..`"
            problems.append(Problem(path, "invalid_secret_reference", message))
    return problems
