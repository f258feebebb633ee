"""JSON Schemas of the CAMARA operations pbgm uses, written for these tests.

Not vendored: written from domain.md §7 (which quotes `camaraproject/QualityOnDemand`
r3.2, QoD 1.1.0 and QoS Profiles 1.1.0, QoS Provisioning 0.3.0, and
`camaraproject/DeviceStatus` r2.2) and the Commonalities conventions those documents
follow: `ErrorInfo`, `x-correlator`, `sinkCredential` of type ACCESSTOKEN, CloudEvents
1.0 notifications, one event type per subscription. Only the operations and fields
pbgm sends or reads are here; every schema is closed (`additionalProperties: false`)
where CAMARA's is, so a field pbgm invents fails the test.

`validator(schema)` checks the formats CAMARA uses (`date-time` with a zone, `uri`,
`ipv4`, `ipv6`, `uuid`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker

X_CORRELATOR = re.compile(r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$")
INT32 = 2_147_483_647

_formats = FormatChecker(formats=("ipv4", "ipv6", "uuid"))


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.tzinfo is not None and "T" in value


@_formats.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=_formats)


def problems(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every violation, as `path: message`."""
    found = validator(schema).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in found]


def closed(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


DATE_TIME = {"type": "string", "format": "date-time"}
PHONE_NUMBER = {"type": "string", "pattern": r"^\+[1-9][0-9]{4,14}$"}
PORT = {"type": "integer", "minimum": 0, "maximum": 65535}
DEVICE_IPV4 = {
    **closed(
        publicAddress={"type": "string", "format": "ipv4"},
        privateAddress={"type": "string", "format": "ipv4"},
        publicPort=PORT,
    ),
    "anyOf": [
        {"required": ["publicAddress", "privateAddress"]},
        {"required": ["publicAddress", "publicPort"]},
    ],
}
DEVICE = {
    **closed(
        phoneNumber=PHONE_NUMBER,
        networkAccessIdentifier={"type": "string"},
        ipv4Address=DEVICE_IPV4,
        ipv6Address={"type": "string", "format": "ipv6"},
    ),
    "minProperties": 1,
}
APPLICATION_SERVER = {
    **closed(ipv4Address={"type": "string"}, ipv6Address={"type": "string"}),
    "minProperties": 1,
}
PROFILE_NAME = {"type": "string", "minLength": 3, "maxLength": 256, "pattern": r"^[a-zA-Z0-9_.-]+$"}
SINK = {"type": "string", "format": "uri", "pattern": r"^https:\/\/.+$"}
SINK_CREDENTIAL = closed(
    ("credentialType", "accessToken", "accessTokenExpiresUtc", "accessTokenType"),
    credentialType={"const": "ACCESSTOKEN"},
    accessToken={"type": "string", "minLength": 1},
    accessTokenExpiresUtc=DATE_TIME,
    accessTokenType={"const": "bearer"},
)
DURATION = {"type": "integer", "minimum": 1, "maximum": INT32}
QOS_STATUS = {"enum": ["REQUESTED", "AVAILABLE", "UNAVAILABLE"]}
STATUS_INFO = {"enum": ["DURATION_EXPIRED", "NETWORK_TERMINATED", "DELETE_REQUESTED"]}
PORTS_SPEC = {
    **closed(
        ranges={
            "type": "array",
            "minItems": 1,
            "items": closed(("from", "to"), to=PORT, **{"from": PORT}),
        },
        ports={"type": "array", "minItems": 1, "items": PORT},
    ),
    "minProperties": 1,
}

ERROR_INFO = closed(
    ("status", "code", "message"),
    status={"type": "integer"},
    code={"type": "string"},
    message={"type": "string"},
)

# -- Quality-On-Demand 1.1.0

CREATE_SESSION = {
    **closed(
        ("applicationServer", "qosProfile", "duration"),
        device=DEVICE,
        applicationServer=APPLICATION_SERVER,
        devicePorts=PORTS_SPEC,
        applicationServerPorts=PORTS_SPEC,
        qosProfile=PROFILE_NAME,
        sink=SINK,
        sinkCredential=SINK_CREDENTIAL,
        duration=DURATION,
    ),
    "dependentRequired": {"sinkCredential": ["sink"]},
}
SESSION_INFO = closed(
    ("sessionId", "duration", "qosStatus"),
    device=DEVICE,
    applicationServer=APPLICATION_SERVER,
    devicePorts=PORTS_SPEC,
    applicationServerPorts=PORTS_SPEC,
    qosProfile=PROFILE_NAME,
    sink=SINK,
    sessionId={"type": "string", "format": "uuid"},
    duration=DURATION,
    startedAt=DATE_TIME,
    expiresAt=DATE_TIME,
    qosStatus=QOS_STATUS,
    statusInfo=STATUS_INFO,
)
EXTEND_SESSION = closed(("requestedAdditionalDuration",), requestedAdditionalDuration=DURATION)
RETRIEVE_BY_DEVICE = closed(("device",), device=DEVICE)
SESSION_LIST = {"type": "array", "items": SESSION_INFO}

# -- QoS Profiles 1.1.0

TIME_UNIT = {
    "enum": ["Days", "Hours", "Minutes", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds"]
}
DURATION_OBJECT = closed(("value", "unit"), value={"type": "integer", "minimum": 1}, unit=TIME_UNIT)
QOS_PROFILE = closed(
    ("name", "status"),
    name=PROFILE_NAME,
    description={"type": "string"},
    status={"enum": ["ACTIVE", "INACTIVE", "DEPRECATED"]},
    minDuration=DURATION_OBJECT,
    maxDuration=DURATION_OBJECT,
    priority={"type": "integer", "minimum": 1, "maximum": 100},
)
RETRIEVE_PROFILES = closed(
    device=DEVICE, name=PROFILE_NAME, status={"enum": ["ACTIVE", "INACTIVE", "DEPRECATED"]}
)
PROFILE_LIST = {"type": "array", "items": QOS_PROFILE}

# -- QoS Provisioning 0.3.0

CREATE_ASSIGNMENT = {
    **closed(
        ("qosProfile",),
        device=DEVICE,
        qosProfile=PROFILE_NAME,
        sink=SINK,
        sinkCredential=SINK_CREDENTIAL,
    ),
    "dependentRequired": {"sinkCredential": ["sink"]},
}
ASSIGNMENT_INFO = closed(
    ("assignmentId", "qosProfile", "status"),
    assignmentId={"type": "string", "format": "uuid"},
    device=DEVICE,
    qosProfile=PROFILE_NAME,
    sink=SINK,
    startedAt=DATE_TIME,
    status=QOS_STATUS,
    statusInfo={"enum": ["NETWORK_TERMINATED", "DELETE_REQUESTED"]},
)

# -- Device Status r2.2: reachability 1.0.0, roaming 1.0.0, connected network type 0.1.0

REACHABILITY_INFO = closed(
    ("lastStatusTime", "reachable"),
    lastStatusTime=DATE_TIME,
    reachable={"type": "boolean"},
    connectivity={"type": "array", "items": {"enum": ["DATA", "SMS"]}, "minItems": 1},
)
ROAMING_INFO = closed(
    ("lastStatusTime", "roaming"),
    lastStatusTime=DATE_TIME,
    roaming={"type": "boolean"},
    countryCode={"type": "integer"},
    countryName={"type": "array", "items": {"type": "string"}},
)
NETWORK_TYPE_INFO = closed(
    ("lastStatusTime", "connectedNetworkType"),
    lastStatusTime=DATE_TIME,
    connectedNetworkType={"enum": ["2G", "3G", "4G", "5G", "UNKNOWN"]},
)

EVENT_PREFIXES = {
    "reachability": "org.camaraproject.device-reachability-status-subscriptions.v0.",
    "roaming": "org.camaraproject.device-roaming-status-subscriptions.v0.",
    "network_type": "org.camaraproject.connected-network-type-subscriptions.v0.",
}
SUBSCRIPTION_TYPES = {
    "reachability": ("reachability-data", "reachability-sms", "reachability-disconnected"),
    "roaming": ("roaming-status", "roaming-on", "roaming-off", "roaming-change-country"),
    "network_type": ("network-type-changed",),
}


def subscription_request(kind: str) -> dict[str, Any]:
    types = [EVENT_PREFIXES[kind] + name for name in SUBSCRIPTION_TYPES[kind]]
    return closed(
        ("sink", "protocol", "config", "types"),
        protocol={"const": "HTTP"},
        sink=SINK,
        sinkCredential=SINK_CREDENTIAL,
        types={"type": "array", "minItems": 1, "maxItems": 1, "items": {"enum": types}},
        config=closed(
            ("subscriptionDetail",),
            subscriptionDetail=closed(("device",), device=DEVICE),
            subscriptionExpireTime=DATE_TIME,
            subscriptionMaxEvents={"type": "integer", "minimum": 1},
            initialEvent={"type": "boolean"},
        ),
    )


def subscription_info(kind: str) -> dict[str, Any]:
    request = subscription_request(kind)
    properties = {
        **request["properties"],
        "id": {"type": "string", "minLength": 1},
        "startsAt": DATE_TIME,
        "expiresAt": DATE_TIME,
        "status": {"enum": ["ACTIVATION_REQUESTED", "ACTIVE", "EXPIRED", "INACTIVE", "DELETED"]},
    }
    properties.pop("sinkCredential")  # never echoed
    return closed(("sink", "protocol", "config", "types", "id"), **properties)


# -- notifications: CloudEvents 1.0

QOD_STATUS_CHANGED = "org.camaraproject.quality-on-demand.v1.qos-status-changed"
ASSIGNMENT_STATUS_CHANGED = "org.camaraproject.qos-provisioning.v0.status-changed"
SUBSCRIPTION_ENDS = "subscription-ends"
SUBSCRIPTION_DATA = closed(
    ("device", "subscriptionId"), device=DEVICE, subscriptionId={"type": "string"}
)
EVENT_DATA: dict[str, dict[str, Any]] = {
    QOD_STATUS_CHANGED: closed(
        ("sessionId", "qosStatus"),
        sessionId={"type": "string", "format": "uuid"},
        qosStatus={"enum": ["AVAILABLE", "UNAVAILABLE"]},
        statusInfo=STATUS_INFO,
    ),
    ASSIGNMENT_STATUS_CHANGED: closed(
        ("assignmentId", "status"),
        assignmentId={"type": "string", "format": "uuid"},
        status={"enum": ["AVAILABLE", "UNAVAILABLE"]},
        statusInfo={"enum": ["NETWORK_TERMINATED", "DELETE_REQUESTED"]},
    ),
}
for _kind, _names in SUBSCRIPTION_TYPES.items():
    for _name in _names:
        EVENT_DATA[EVENT_PREFIXES[_kind] + _name] = {
            **SUBSCRIPTION_DATA,
            "properties": {
                **SUBSCRIPTION_DATA["properties"],
                "roaming": {"type": "boolean"},
                "countryCode": {"type": "integer"},
                "countryName": {"type": "array", "items": {"type": "string"}},
                "networkType": {"enum": ["2G", "3G", "4G", "5G", "UNKNOWN"]},
            },
        }
    EVENT_DATA[EVENT_PREFIXES[_kind] + SUBSCRIPTION_ENDS] = closed(
        ("device", "subscriptionId", "terminationReason"),
        device=DEVICE,
        subscriptionId={"type": "string"},
        terminationReason={
            "enum": [
                "MAX_EVENTS_REACHED",
                "NETWORK_TERMINATED",
                "SUBSCRIPTION_EXPIRED",
                "SUBSCRIPTION_DELETED",
                "ACCESS_TOKEN_EXPIRED",
            ]
        },
        terminationDescription={"type": "string"},
    )

CLOUD_EVENT = {
    "type": "object",
    "required": ["id", "source", "specversion", "type", "time"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"enum": sorted(EVENT_DATA)},
        "specversion": {"enum": ["1.0"]},
        "datacontenttype": {"enum": ["application/json"]},
        "data": {"type": "object"},
        "time": DATE_TIME,
    },
}
