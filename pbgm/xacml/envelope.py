"""What pbgm keeps beside the XACML of a policy it writes: the envelope (type, group, asset,
content, validity window) in `urn:pbgm:policy:...` combiner parameters, and the validity
window as a target XACML PDPs honour (`validity_any_of`, added by the writer and taken
out again by the reader)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.errors import ValidationError
from pbgm.functions.datatypes import lexical
from pbgm.model import AnyOf, AttributeRef, Literal, Matcher, Policy
from pbgm.policy.syntax import freeze, parse_datetime
from pbgm.xacml import names

Fail = Callable[[str, str, str], None]


def with_envelope(policy: Policy, parameters: Mapping[str, str], fail: Fail, path: str) -> Policy:
    """The policy with what the pbgm parameters keep (type, group, asset, content,
    validity window); the window's generated target matches are taken out again."""
    if not parameters:
        return policy
    changes: dict[str, Any] = {}
    for key in ("type", "policy_group", "asset_id"):
        if key in parameters:
            changes[key] = parameters[key]
    if "content" in parameters:
        try:
            changes["content"] = freeze(json.loads(parameters["content"]))
        except ValueError:
            fail(path, "invalid_parameter", "the pbgm content parameter is JSON")
    window: dict[str, datetime] = {}
    for key in ("valid_from", "valid_until"):
        if key in parameters:
            try:
                window[key] = parse_datetime(parameters[key])
            except ValidationError:
                fail(path, "invalid_parameter", f"`{key}` is an ISO 8601 date-time")
    if window:
        changes.update(window)
        generated = set(validity_any_of(window.get("valid_from"), window.get("valid_until")))
        rest = tuple(a for a in policy.target.any_of if a not in generated)
        changes["target"] = replace(policy.target, any_of=rest)
    return replace(policy, **changes)


def validity_any_of(valid_from: datetime | None, valid_until: datetime | None) -> Iterator[AnyOf]:
    """The `<AnyOf>`s that say a validity window in XACML: `valid_from <= current-dateTime`
    and `valid_until > current-dateTime` (what the writer adds and the reader removes)."""
    now = AttributeRef("environment", "current_time", True, names.XS + "dateTime")
    for moment, function in (
        (valid_from, "dateTime-less-than-or-equal"),
        (valid_until, "dateTime-greater-than"),
    ):
        if moment is not None:
            value = Literal(lexical(moment), names.XS + "dateTime")
            matcher = Matcher(f"urn:oasis:names:tc:xacml:1.0:function:{function}", value, now)
            yield ((matcher,),)
