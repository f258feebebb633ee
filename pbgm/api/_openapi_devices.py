"""The 5G device management part of the OpenAPI document (`pbgm.api._devices`)."""

from __future__ import annotations

from typing import Any

from pbgm.api._openapi_schemas import (
    PROTECTED_ERRORS,
    STRING,
    array,
    json_response,
    obj,
    op,
    param,
    ref,
)

DEVICE_ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}
SECONDS = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
PROFILE = {"type": "string", "pattern": r"^[a-zA-Z0-9_.-]{3,256}$"}
ACTION_ERRORS = (*PROTECTED_ERRORS, 409, 502, 504)
GONE = {204: {"description": "done"}}


def schemas() -> dict[str, Any]:
    identifiers = obj(
        phoneNumber={"type": "string", "pattern": r"^\+[1-9][0-9]{4,14}$"},
        networkAccessIdentifier=STRING,
        ipv4Address=obj(
            ("publicAddress",),
            publicAddress=STRING,
            privateAddress=STRING,
            publicPort={"type": "integer", "minimum": 0, "maximum": 65535},
        ),
        ipv6Address=STRING,
    )
    result = obj(
        ("device", "status"),
        device=STRING,
        status={"enum": ["done", "denied", "failed", "skipped"]},
        code=STRING,
        message=STRING,
    )
    failure = obj(("device", "code"), device=STRING, status=STRING, code=STRING, message=STRING)
    session = {"type": ["object", "null"]}
    return {
        "Device": obj(
            ("id", "identifiers"),
            id=DEVICE_ID,
            identifiers=identifiers,
            owner=STRING,
            asset_id={"type": ["string", "null"]},
            description=STRING,
            groups=array(STRING),
            connectivity={"type": "object"},
        ),
        "DeviceGroup": obj(
            ("id", "members"), id=DEVICE_ID, description=STRING, members=array(STRING)
        ),
        "DeviceResult": result,
        "GroupResult": obj(
            ("group", "action", "outcome", "members", "succeeded", "failed", "skipped", "results"),
            group=STRING,
            action=STRING,
            outcome={"enum": ["all", "some", "none"]},
            members={"type": "integer"},
            succeeded=array(STRING),
            failed=array(failure),
            skipped=array(failure),
            results=array(ref("DeviceResult")),
        ),
        "Connectivity": obj(
            ("device",),
            device=STRING,
            reachable={"type": ["boolean", "null"]},
            connectivity=array(STRING),
            roaming={"type": ["boolean", "null"]},
            network_type={"type": ["string", "null"]},
            qos_session=session,
            qos_assignment=session,
            subscriptions=array({"type": "object"}),
        ),
    }


def _actions(base: str, name: str, group: bool) -> dict[str, Any]:
    where = (param(name, "path", DEVICE_ID),)
    answer = (
        {
            200: json_response(ref("GroupResult"), "every member succeeded"),
            207: json_response(ref("GroupResult"), "some or none succeeded: each device's result"),
        }
        if group
        else None
    )

    def ok(status: int, what: str) -> dict[int, dict[str, Any]]:
        return answer or {status: json_response(ref("DeviceResult"), what)}

    start = obj(
        ("duration_s",),
        qos_profile=PROFILE,
        duration_s=SECONDS,
        application_server=obj(ipv4Address=STRING, ipv6Address=STRING),
    )
    return {
        f"{base}/qos": {
            "post": op(
                "Start a QoS session (QoD), decided by policy",
                ok(201, "started"),
                params=where,
                body=start,
                errors=ACTION_ERRORS,
            ),
            "patch": op(
                "Extend the QoS session (capped as the policy and CAMARA cap it)",
                ok(200, "extended"),
                params=where,
                body=obj(("additional_s",), additional_s=SECONDS),
                errors=ACTION_ERRORS,
            ),
            "delete": op(
                "Release the QoS session", ok(200, "released"), params=where, errors=ACTION_ERRORS
            ),
        },
        f"{base}/provisioning": {
            "post": op(
                "Assign a QoS profile (QoS Provisioning)",
                ok(201, "assigned"),
                params=where,
                body=obj(qos_profile=PROFILE),
                errors=ACTION_ERRORS,
            ),
            "delete": op(
                "Revoke the QoS profile assignment",
                ok(200, "revoked"),
                params=where,
                errors=ACTION_ERRORS,
            ),
        },
        f"{base}/connectivity/subscriptions": {
            "post": op(
                "Subscribe to reachability, roaming and network-type notifications",
                ok(201, "subscribed"),
                params=where,
                body=obj(kinds=array({"enum": ["reachability", "roaming", "network_type"]})),
                errors=ACTION_ERRORS,
            ),
        },
    }


def device_paths() -> dict[str, Any]:
    device = (param("device_id", "path", DEVICE_ID),)
    group = (param("group_id", "path", DEVICE_ID),)
    paths: dict[str, Any] = {
        "/api/v1/devices": {
            "get": op(
                "The device registry",
                {200: json_response(obj(("devices",), devices=array(ref("Device"))))},
                params=(param("group", "query", DEVICE_ID), param("asset_id", "query", STRING)),
            ),
            "post": op(
                "Register a device with its CAMARA identifiers",
                {201: json_response(ref("Device"), "registered")},
                body=ref("Device"),
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        "/api/v1/devices/{device_id}": {
            "get": op(
                "A device, its groups and its connectivity",
                {200: json_response(ref("Device"))},
                params=device,
            ),
            "put": op(
                "Change a device's identifiers, owner, asset or description",
                {200: json_response(ref("Device"))},
                params=device,
                body=ref("Device"),
                errors=(*PROTECTED_ERRORS, 409),
            ),
            "delete": op(
                "Remove a device (it must hold nothing at the operator)",
                GONE,
                params=device,
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        "/api/v1/devices/{device_id}/qos": {
            "get": op(
                "The device's QoS session and assignment",
                {200: json_response({"type": "object"})},
                params=device,
            ),
        },
        "/api/v1/devices/{device_id}/connectivity": {
            "get": op(
                "Connectivity as last seen",
                {200: json_response(ref("Connectivity"))},
                params=device,
            ),
            "post": op(
                "Retrieve reachability, roaming and network type from the network",
                {200: json_response(ref("DeviceResult"))},
                params=device,
                errors=ACTION_ERRORS,
            ),
        },
        "/api/v1/device-groups": {
            "get": op(
                "Device groups",
                {200: json_response(obj(("groups",), groups=array(ref("DeviceGroup"))))},
            ),
            "post": op(
                "Create a device group",
                {201: json_response(ref("DeviceGroup"), "created")},
                body=ref("DeviceGroup"),
                errors=(*PROTECTED_ERRORS, 409),
            ),
        },
        "/api/v1/device-groups/{group_id}": {
            "get": op(
                "A device group and its members",
                {200: json_response(ref("DeviceGroup"))},
                params=group,
            ),
            "delete": op("Delete a device group (its devices stay)", GONE, params=group),
        },
        "/api/v1/device-groups/{group_id}/members": {
            "patch": op(
                "Add and remove members, all or nothing",
                {200: json_response(ref("DeviceGroup"))},
                params=group,
                body=obj(add=array(DEVICE_ID), remove=array(DEVICE_ID)),
            ),
        },
        "/api/v1/device-groups/{group_id}/connectivity": {
            "get": op(
                "Connectivity of every member",
                {200: json_response({"type": "object"})},
                params=group,
            ),
            "post": op(
                "Retrieve every member's connectivity from the network",
                {
                    200: json_response(ref("GroupResult"), "every member succeeded"),
                    207: json_response(ref("GroupResult"), "some or none succeeded"),
                },
                params=group,
                errors=ACTION_ERRORS,
            ),
        },
        "/api/v1/device-notifications": {
            "post": {
                **op(
                    "CAMARA notifications (CloudEvents), with the sink credential pbgm gave",
                    {204: {"description": "accepted (or a duplicate, ignored)"}},
                    errors=(400, 401, 403, 413, 415, 422, 429, 503),
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/cloudevents+json": {"schema": {"type": "object"}}},
                },
            },
        },
    }
    for base, name, is_group in (
        ("/api/v1/devices/{device_id}", "device_id", False),
        ("/api/v1/device-groups/{group_id}", "group_id", True),
    ):
        for path, operations in _actions(base, name, is_group).items():
            paths.setdefault(path, {}).update(operations)
    return paths
