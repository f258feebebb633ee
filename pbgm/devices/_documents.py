"""Untrusted input of device management (REST bodies, CLI files), read strictly.

Every problem is listed at once (`ValidationError`, each with its JSON path): unknown
fields, ids that are not names, malformed identifiers (phone numbers, addresses),
QoS profile names CAMARA would refuse, durations outside CAMARA's int32 seconds
(1 to 2^31-1: 0 and 2^31 are refused, not clamped). Nothing is stored or called for
a document with a problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.store._device_rules import MAX_MEMBERS_PER_CALL, NAME, identifier_problems
from pbgm.store.base import Device, DeviceGroup

PROFILE = re.compile(r"[a-zA-Z0-9_.-]{3,256}")
MAX_SECONDS = 2**31 - 1
MAX_TEXT = 1000
SUBSCRIPTION_KINDS = ("reachability", "roaming", "network_type")

ACTION_FIELDS: dict[str, dict[str, bool]] = {
    "start": {"qos_profile": False, "duration_s": True, "application_server": False},
    "extend": {"additional_s": True},
    "release": {},
    "provision": {"qos_profile": False},
    "deprovision": {},
    "refresh": {},
    "subscribe": {"kinds": False},
}
"""The fields of each action's body: name -> required."""


def _object(data: Any, path: str = "$") -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError([Problem(path, "type", "must be a JSON object")])
    return data


def _unknown(data: Mapping[str, Any], known: Any, problems: list[Problem]) -> None:
    for key in data:
        if key not in known:
            shown = str(key)[:60]
            problems.append(Problem(f"$.{shown}", "unknown_field", f"unknown field `{shown}`"))


def _name(value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        message = "a name of 1-100 letters, digits, `.`, `_`, `-`, starting with a letter or digit"
        problems.append(Problem(path, "invalid_name", message))


def _text(
    data: Mapping[str, Any], key: str, problems: list[Problem], limit: int = MAX_TEXT
) -> None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit or "\x00" in value):
        problems.append(
            Problem(
                f"$.{key}", "invalid_text", f"`{key}` must be a text of at most {limit} characters"
            )
        )


def _seconds(value: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SECONDS:
        message = f"a duration is whole seconds from 1 to {MAX_SECONDS} (CAMARA int32)"
        problems.append(Problem(path, "out_of_range", message))


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise ValidationError(problems)


def read_device(data: Any, *, device_id: str | None = None) -> Device:
    """A device from `{"id", "identifiers", "owner", "asset_id", "description"}`; with
    `device_id` (an update) the body's `id` may be left out but must not differ."""
    body = _object(data)
    problems: list[Problem] = []
    _unknown(body, ("id", "identifiers", "owner", "asset_id", "description"), problems)
    given = body.get("id", device_id)
    _name(given, "$.id", problems)
    if device_id is not None and given != device_id:
        problems.append(
            Problem("$.id", "id_mismatch", f"the body names `{given}`, the path `{device_id}`")
        )
    if "identifiers" not in body:
        problems.append(Problem("$.identifiers", "missing_field", "`identifiers` is required"))
    else:
        problems.extend(identifier_problems(body["identifiers"]))
    _text(body, "owner", problems)
    _text(body, "description", problems)
    _text(body, "asset_id", problems, limit=255)
    _raise(problems)
    return Device(
        id=given,
        identifiers=body["identifiers"],
        owner=body.get("owner") or "",
        asset_id=body.get("asset_id"),
        description=body.get("description") or "",
    )


def _ids(value: Any, path: str, problems: list[Problem]) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_MEMBERS_PER_CALL:
        problems.append(
            Problem(path, "type", f"a list of at most {MAX_MEMBERS_PER_CALL} device ids")
        )
        return []
    for i, item in enumerate(value):
        _name(item, f"{path}[{i}]", problems)
    return [v for v in value if isinstance(v, str)]


def read_group(data: Any) -> DeviceGroup:
    """A new group from `{"id", "description", "members"}`."""
    body = _object(data)
    problems: list[Problem] = []
    _unknown(body, ("id", "description", "members"), problems)
    _name(body.get("id"), "$.id", problems)
    _text(body, "description", problems)
    members = _ids(body.get("members", []), "$.members", problems)
    _raise(problems)
    return DeviceGroup(body["id"], body.get("description") or "", tuple(members))


def read_membership(data: Any) -> tuple[list[str], list[str]]:
    """`{"add": [...], "remove": [...]}`: at least one id, no id in both."""
    body = _object(data)
    problems: list[Problem] = []
    _unknown(body, ("add", "remove"), problems)
    add = _ids(body.get("add", []), "$.add", problems)
    remove = _ids(body.get("remove", []), "$.remove", problems)
    if not add and not remove and not problems:
        problems.append(Problem("$", "missing_field", "name devices to `add` or `remove`"))
    both = sorted(set(add) & set(remove))
    if both:
        problems.append(
            Problem("$", "conflicting_change", f"`{both[0]}` is both added and removed")
        )
    _raise(problems)
    return add, remove


def read_action(action: str, data: Any) -> dict[str, Any]:
    """The parameters of `action` (`ACTION_FIELDS`), checked; `None` reads as `{}`."""
    body = _object({} if data is None else data)
    fields = ACTION_FIELDS[action]
    problems: list[Problem] = []
    _unknown(body, fields, problems)
    for name, required in fields.items():
        if required and name not in body:
            problems.append(Problem(f"$.{name}", "missing_field", f"`{name}` is required"))
    for name in ("duration_s", "additional_s"):
        if name in body:
            _seconds(body[name], f"$.{name}", problems)
    profile = body.get("qos_profile")
    if profile is not None and not (isinstance(profile, str) and PROFILE.fullmatch(profile)):
        message = "a QoS profile name is 3-256 letters, digits, `_`, `.` or `-`"
        problems.append(Problem("$.qos_profile", "invalid_qos_profile", message))
    if "application_server" in body:
        _application_server(body["application_server"], problems)
    if "kinds" in body:
        kinds = body["kinds"]
        if (
            not isinstance(kinds, list)
            or not kinds
            or any(k not in SUBSCRIPTION_KINDS for k in kinds)
        ):
            listed = ", ".join(f"`{k}`" for k in SUBSCRIPTION_KINDS)
            problems.append(Problem("$.kinds", "enum", f"a list of {listed}"))
    _raise(problems)
    return {k: v for k, v in body.items() if v is not None}


def _application_server(value: Any, problems: list[Problem]) -> None:
    ok = (
        isinstance(value, Mapping)
        and value
        and set(value) <= {"ipv4Address", "ipv6Address"}
        and all(isinstance(v, str) and 0 < len(v) <= 64 for v in value.values())
    )
    if not ok:
        message = "a CAMARA ApplicationServer: `ipv4Address` and/or `ipv6Address`"
        problems.append(Problem("$.application_server", "invalid_application_server", message))
