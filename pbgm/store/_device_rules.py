"""Rules for devices, device groups, network resources and device status, shared by
both stores.

A device is named to the operator's network by a CAMARA `Device` object
(domain.md §7.1): `phoneNumber` (E.164 with a leading `+`, 5 to 15 digits),
`networkAccessIdentifier` (`local@domain`), `ipv4Address` (`publicAddress`, with
`privateAddress` or `publicPort`, as CAMARA requires) and `ipv6Address` (one
address). `identifier_problems` lists every problem of such an object, so the REST
API and the CLI report them all at once; the stores refuse the same things with
the same problems, so nothing malformed is ever kept.

Device and group ids are names (`^[A-Za-z0-9][A-Za-z0-9._-]*$`, at most 100
characters): they travel in URL paths and in bus topics, where `/`, `+` and `#`
would change the meaning.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.errors import InvalidInputError, Problem, ValidationError
from pbgm.store._common import check_id, check_text, to_json
from pbgm.store.base import (
    NETWORK_RESOURCE_KINDS,
    Device,
    DeviceGroup,
    DeviceStatus,
    NetworkResource,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{4,14}")
NETWORK_ACCESS_IDENTIFIER = re.compile(r"[^@\s]+@[^@\s]+")
MAX_NAI = 256
IDENTIFIERS = ("phoneNumber", "networkAccessIdentifier", "ipv4Address", "ipv6Address")
IPV4_FIELDS = ("publicAddress", "privateAddress", "publicPort")
CONNECTIVITY = ("DATA", "SMS")
NETWORK_TYPES = ("2G", "3G", "4G", "5G", "UNKNOWN")
TOKEN_HASH = re.compile(r"[0-9a-f]{64}")
MAX_MEMBERS_PER_CALL = 10_000


def check_name(value: Any, what: str) -> str:
    """A device or group id: a name that is safe in a URL path and a bus topic."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 60 else "..."
        raise InvalidInputError(
            f"{what} `{shown}` must be 1-100 letters, digits, `.`, `_` or `-`, "
            "starting with a letter or digit",
            code="invalid_name",
        )
    return value


def _ipv4(value: Any) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return False
    return isinstance(value, str)


def _ipv6(value: Any) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return False
    return isinstance(value, str)


def _port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def _ipv4_problems(value: Any, path: str) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem(path, "type", "`ipv4Address` must be an object")]
    problems = [
        Problem(f"{path}.{key}", "unknown_field", f"unknown field `{key}`")
        for key in value
        if key not in IPV4_FIELDS
    ]
    for key in ("publicAddress", "privateAddress"):
        if key in value and not _ipv4(value[key]):
            problems.append(
                Problem(f"{path}.{key}", "invalid_ipv4", f"`{value[key]}` is not an IPv4 address")
            )
    if "publicPort" in value and not _port(value["publicPort"]):
        problems.append(Problem(f"{path}.publicPort", "invalid_port", "a port is 0 to 65535"))
    if "publicAddress" not in value:
        problems.append(Problem(path, "missing_field", "`publicAddress` is required"))
    elif "privateAddress" not in value and "publicPort" not in value:
        message = "give `privateAddress` or `publicPort` with `publicAddress` (CAMARA)"
        problems.append(Problem(path, "ipv4_incomplete", message))
    return problems


def identifier_problems(identifiers: Any, path: str = "$.identifiers") -> list[Problem]:
    """Every problem of a CAMARA `Device` object (module docstring)."""
    if not isinstance(identifiers, Mapping):
        return [Problem(path, "type", "the identifiers must be an object")]
    problems = [
        Problem(f"{path}.{key}", "unknown_identifier", f"`{key}` is not a CAMARA identifier")
        for key in identifiers
        if key not in IDENTIFIERS
    ]
    if not any(key in identifiers for key in IDENTIFIERS):
        message = "give at least one of " + ", ".join(f"`{k}`" for k in IDENTIFIERS)
        problems.append(Problem(path, "missing_identifier", message))
    phone = identifiers.get("phoneNumber")
    if phone is not None and not (isinstance(phone, str) and PHONE_NUMBER.fullmatch(phone)):
        message = f"`{phone}` is not an E.164 number such as `+4915100000003`"
        problems.append(Problem(f"{path}.phoneNumber", "invalid_phone_number", message))
    nai = identifiers.get("networkAccessIdentifier")
    if nai is not None and not (
        isinstance(nai, str) and len(nai) <= MAX_NAI and NETWORK_ACCESS_IDENTIFIER.fullmatch(nai)
    ):
        message = "a network access identifier reads `local@domain`"
        problems.append(Problem(f"{path}.networkAccessIdentifier", "invalid_nai", message))
    if "ipv4Address" in identifiers:
        problems.extend(_ipv4_problems(identifiers["ipv4Address"], f"{path}.ipv4Address"))
    ipv6 = identifiers.get("ipv6Address")
    if ipv6 is not None and not _ipv6(ipv6):
        message = f"`{ipv6}` is not an IPv6 address"
        problems.append(Problem(f"{path}.ipv6Address", "invalid_ipv6", message))
    return problems


def check_device(device: Device, actor: str, at: datetime) -> Device:
    """Id, identifiers and texts checked; identifiers a private JSON copy; times set."""
    check_id(actor, "actor")
    check_name(device.id, "device id")
    problems = identifier_problems(device.identifiers)
    if problems:
        raise ValidationError(problems)
    check_text(device.owner, "owner")
    check_text(device.description, "description")
    if device.asset_id is not None:
        check_id(device.asset_id, "asset id")
    identifiers = to_json(device.identifiers)
    return replace(device, identifiers=identifiers, created_at=at, updated_at=at)


def unique_keys(device: Device) -> dict[str, str]:
    """The identifiers no two devices may share: phone number and access identifier."""
    keys = {}
    for name in ("phoneNumber", "networkAccessIdentifier"):
        value = device.identifiers.get(name)
        if isinstance(value, str):
            keys[name] = value
    return keys


def check_group(group: DeviceGroup, actor: str, at: datetime) -> DeviceGroup:
    check_id(actor, "actor")
    check_name(group.id, "device group id")
    check_text(group.description, "description")
    members = check_member_ids(group.members)
    return replace(group, members=tuple(sorted(set(members))), created_at=at)


def check_member_ids(device_ids: Any) -> list[str]:
    if isinstance(device_ids, str) or not isinstance(device_ids, list | tuple):
        raise InvalidInputError("devices must be given as a list of ids")
    if len(device_ids) > MAX_MEMBERS_PER_CALL:
        raise InvalidInputError(f"at most {MAX_MEMBERS_PER_CALL} devices per call")
    return [check_name(d, "device id") for d in device_ids]


def check_resource(resource: NetworkResource, actor: str, at: datetime) -> NetworkResource:
    check_id(actor, "actor")
    if resource.kind not in NETWORK_RESOURCE_KINDS:
        raise InvalidInputError(f"unknown network resource kind `{resource.kind}`")
    check_id(resource.remote_id, "remote id")
    check_name(resource.device_id, "device id")
    check_id(resource.status, "status")
    if resource.qos_profile is not None:
        check_id(resource.qos_profile, "QoS profile")
    hashed = resource.sink_token_hash
    if hashed is not None and not TOKEN_HASH.fullmatch(hashed):
        raise InvalidInputError("a sink token hash is 64 lowercase hex digits (SHA-256)")
    details = to_json(resource.details)
    if not isinstance(details, dict):
        raise InvalidInputError("resource details must be a JSON object")
    return replace(resource, details=details, updated_at=at)


def check_status(status: DeviceStatus, actor: str, at: datetime) -> DeviceStatus:
    check_id(actor, "actor")
    check_name(status.device_id, "device id")
    if not set(status.connectivity) <= set(CONNECTIVITY):
        raise InvalidInputError("connectivity is `DATA` and/or `SMS`")
    if status.network_type is not None and status.network_type not in NETWORK_TYPES:
        raise InvalidInputError(f"unknown network type `{status.network_type}`")
    code = status.country_code
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise InvalidInputError("a country code is a number")
    check_text(status.source, "source")
    return replace(status, connectivity=tuple(sorted(set(status.connectivity))), updated_at=at)


def token_hash(token: str) -> str:
    """What the stores keep of a sink credential: its SHA-256, hex (the credential is
    random and long, so a slow hash would add nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def resource_details(resource: NetworkResource, details: Mapping[str, Any] | None) -> Any:
    """What the audit log says about a recorded network resource."""
    out: dict[str, Any] = {
        "kind": resource.kind,
        "remote_id": resource.remote_id,
        "status": resource.status,
    }
    if resource.qos_profile is not None:
        out["qos_profile"] = resource.qos_profile
    if resource.duration_s is not None:
        out["duration_s"] = resource.duration_s
    out.update(details or {})
    return to_json(out)


def status_details(status: DeviceStatus) -> dict[str, Any]:
    """What the audit log says about a connectivity update."""
    out: dict[str, Any] = {"source": status.source}
    for name in ("reachable", "roaming", "network_type", "country_code"):
        value = getattr(status, name)
        if value is not None:
            out[name] = value
    if status.connectivity:
        out["connectivity"] = list(status.connectivity)
    return out
