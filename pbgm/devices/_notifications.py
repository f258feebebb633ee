"""CAMARA notifications (CloudEvents 1.0) arriving at pbgm's sink.

Checked, in this order, each failure a clear error and nothing changed:

1. **The credential** (`authenticate`): the `Authorization: Bearer` token must be the
   sink credential pbgm gave the operator for one of its sessions, assignments or
   subscriptions (found by its SHA-256), not past its expiry: else `401
   sink_credential_invalid`. A forged or unknown notification stops here.
2. **The event** (`accept`): at most `MAX_NOTIFICATION_BYTES`, JSON, `specversion`
   `1.0` (`unsupported_specversion`), the CloudEvents attributes CAMARA requires
   (`id`, `source`, `type`, `time`), a `type` pbgm knows, and the `data` that type
   carries (`invalid_notification`, every problem listed).
3. **The resource**: the event must name the very resource the credential belongs to
   (its `sessionId`, `assignmentId` or `subscriptionId`, and a type of its kind):
   else `403 notification_mismatch`. An event id already seen for the resource is
   acknowledged and ignored (the operator may deliver twice).

Then, in one transaction: the resource's new status (and the event id), the device's
connectivity (reachable, roaming, network type) and an audit entry. Last, the event
is published on the bus, on `<topic_prefix>/<device id>/events`, as a flat JSON object
the event service reads as a measurement (`device`, `event`, `time`, and numbers a
`service_trigger` condition can test: `reachable` 1/0, `roaming` 1/0, `qos_available`
1/0; texts: `network_type`, `qos_status`, `status_info`; docs/devices.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pbgm.bus import Bus, check_topic
from pbgm.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    PermissionDeniedError,
    Problem,
    ValidationError,
)
from pbgm.model import Clock
from pbgm.policy import load_document, parse_datetime
from pbgm.store._device_rules import token_hash
from pbgm.store.base import DeviceStatus, NetworkResource, Store

log = logging.getLogger(__name__)

MAX_NOTIFICATION_BYTES = 65_536
MAX_REMEMBERED_EVENTS = 50
NOTIFIER = "camara"
QOD = "org.camaraproject.quality-on-demand.v1.qos-status-changed"
ASSIGNMENT = "org.camaraproject.qos-provisioning.v0.status-changed"
PREFIXES = {
    "reachability_subscription": "org.camaraproject.device-reachability-status-subscriptions.v0.",
    "roaming_subscription": "org.camaraproject.device-roaming-status-subscriptions.v0.",
    "network_type_subscription": "org.camaraproject.connected-network-type-subscriptions.v0.",
}
SUBSCRIPTION_EVENTS = {
    "reachability_subscription": (
        "reachability-data",
        "reachability-sms",
        "reachability-disconnected",
        "subscription-ends",
    ),
    "roaming_subscription": (
        "roaming-status",
        "roaming-on",
        "roaming-off",
        "roaming-change-country",
        "subscription-ends",
    ),
    "network_type_subscription": ("network-type-changed", "subscription-ends"),
}
NETWORK_TYPES = ("2G", "3G", "4G", "5G", "UNKNOWN")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    name: str  # the part after the API's prefix, e.g. `reachability-disconnected`
    time: datetime
    data: Mapping[str, Any]


def kind_of(event_type: str) -> str | None:
    """The network resource kind an event type is about, or None for an unknown type."""
    if event_type == QOD:
        return "qos_session"
    if event_type == ASSIGNMENT:
        return "qos_assignment"
    for kind, prefix in PREFIXES.items():
        name = event_type.removeprefix(prefix)
        if name != event_type and name in SUBSCRIPTION_EVENTS[kind]:
            return kind
    return None


def _text(data: Mapping[str, Any], key: str, path: str, problems: list[Problem]) -> None:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 255:
        problems.append(Problem(f"{path}.{key}", "invalid_attribute", f"`{key}` must be a text"))


def parse_event(raw: bytes) -> Event:
    """The checked CloudEvent of a notification body (module docstring, step 2)."""
    body = load_document(raw, source="notification", max_bytes=MAX_NOTIFICATION_BYTES)
    if not isinstance(body, dict):
        raise InvalidInputError("a notification is a JSON object", code="invalid_notification")
    if body.get("specversion") != "1.0":
        shown = str(body.get("specversion"))[:20]
        raise InvalidInputError(
            f"CloudEvents `specversion` `{shown}` is not supported: CAMARA sends `1.0`",
            code="unsupported_specversion",
        )
    problems: list[Problem] = []
    for key in ("id", "source", "type", "time"):
        _text(body, key, "$", problems)
    if problems:
        raise ValidationError(problems, "the notification lacks CloudEvents attributes")
    if kind_of(body["type"]) is None:
        raise InvalidInputError(
            f"unknown event type `{body['type'][:120]}`", code="unknown_event_type"
        )
    time = _time(body["time"])
    data = body.get("data")
    if not isinstance(data, dict):
        raise ValidationError([Problem("$.data", "invalid_attribute", "`data` must be an object")])
    _check_data(body["type"], data)
    name = body["type"].rpartition(".")[2]
    return Event(body["id"], body["type"], name, time, data)


def _time(text: str) -> datetime:
    try:
        return parse_datetime(text, "time")
    except PbgmError:
        problem = Problem("$.time", "invalid_attribute", "`time` must be an RFC 3339 time")
        raise ValidationError([problem]) from None


def _check_data(event_type: str, data: Mapping[str, Any]) -> None:
    problems: list[Problem] = []
    if event_type == QOD:
        _text(data, "sessionId", "$.data", problems)
        if data.get("qosStatus") not in ("AVAILABLE", "UNAVAILABLE"):
            problems.append(
                Problem("$.data.qosStatus", "invalid_attribute", "AVAILABLE or UNAVAILABLE")
            )
    elif event_type == ASSIGNMENT:
        _text(data, "assignmentId", "$.data", problems)
        if data.get("status") not in ("AVAILABLE", "UNAVAILABLE"):
            problems.append(
                Problem("$.data.status", "invalid_attribute", "AVAILABLE or UNAVAILABLE")
            )
    else:
        _text(data, "subscriptionId", "$.data", problems)
        if "roaming" in data and not isinstance(data["roaming"], bool):
            problems.append(
                Problem("$.data.roaming", "invalid_attribute", "`roaming` is true or false")
            )
        if "networkType" in data and data["networkType"] not in NETWORK_TYPES:
            problems.append(
                Problem("$.data.networkType", "invalid_attribute", "unknown network type")
            )
    if problems:
        raise ValidationError(problems, "the notification's data is not what its type carries")


def _remote_id(event: Event) -> Any:
    for key in ("sessionId", "assignmentId", "subscriptionId"):
        if key in event.data:
            return event.data[key]
    return None


class NotificationSink:
    """Checks notifications and applies them (module docstring)."""

    def __init__(self, store: Store, *, bus: Bus | None, topic_prefix: str, clock: Clock) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.topic_prefix = topic_prefix.rstrip("/")

    def authenticate(self, token: str) -> NetworkResource:
        """The resource whose sink credential `token` is, else `sink_credential_invalid`."""
        refused = AuthenticationError(
            "the notification's credential is not one pbgm gave, or it expired",
            code="sink_credential_invalid",
        )
        try:
            resource = self.store.find_network_resource(token_hash(token))
        except NotFoundError:
            raise refused from None
        expires = resource.details.get("sink_expires_at")
        if isinstance(expires, str) and parse_datetime(expires, "sink_expires_at") < self.clock():
            raise refused
        return resource

    def accept(self, resource: NetworkResource, raw: bytes) -> dict[str, Any]:
        """Check and apply one notification for `resource`; what was done."""
        event = parse_event(raw)
        if kind_of(event.type) != resource.kind or _remote_id(event) != resource.remote_id:
            raise PermissionDeniedError(
                "the notification is about another resource than its credential's",
                code="notification_mismatch",
            )
        seen = list(resource.details.get("events") or ())
        summary: dict[str, Any] = {
            "device": resource.device_id,
            "event": event.name,
            "id": event.id,
        }
        if event.id in seen:
            return {**summary, "duplicate": True}
        status = self._status(resource.device_id, event)
        updated = self._resource(resource, event, [*seen, event.id][-MAX_REMEMBERED_EVENTS:])
        with self.store.atomic() as view:
            details = {"type": event.type, "id": event.id}
            if updated is None:
                view.delete_network_resource(
                    resource.kind, resource.remote_id, actor=NOTIFIER, details=details
                )
            else:
                view.put_network_resource(
                    updated, actor=NOTIFIER, action="device.notification", details=details
                )
            if status is not None:
                view.put_device_status(status, actor=NOTIFIER)
        summary["published"] = self._publish(resource, event, status, updated)
        return summary

    def _resource(
        self, resource: NetworkResource, event: Event, seen: list[str]
    ) -> NetworkResource | None:
        details = {**resource.details, "events": seen}
        if event.name == "subscription-ends":
            return None  # the operator ended it: forgotten
        if event.type == QOD:
            info = event.data.get("statusInfo")
            if isinstance(info, str):
                details["status_info"] = info
            return replace(resource, status=event.data["qosStatus"], details=details)
        if event.type == ASSIGNMENT:
            return replace(resource, status=event.data["status"], details=details)
        return replace(resource, details=details)

    def _status(self, device_id: str, event: Event) -> DeviceStatus | None:
        changes = _status_changes(event)
        if not changes:
            return None
        try:
            known = self.store.get_device_status(device_id)
        except NotFoundError:
            known = DeviceStatus(device_id)
        return replace(known, **changes, last_status_time=event.time, source="notification")

    def _publish(
        self,
        resource: NetworkResource,
        event: Event,
        status: DeviceStatus | None,
        updated: NetworkResource | None,
    ) -> bool:
        if self.bus is None:
            return False
        payload = bus_payload(resource, event, status, updated)
        try:
            topic = check_topic(f"{self.topic_prefix}/{resource.device_id}/events")
            self.bus.publish(topic, json.dumps(payload).encode(), qos=1)
        except PbgmError as error:
            log.warning("device event of `%s` not published: %s", resource.device_id, error.code)
            return False
        return True


def _status_changes(event: Event) -> dict[str, Any]:
    data, name = event.data, event.name
    if name == "reachability-data":
        return {"reachable": True, "connectivity": ("DATA",)}
    if name == "reachability-sms":
        return {"reachable": True, "connectivity": ("SMS",)}
    if name == "reachability-disconnected":
        return {"reachable": False, "connectivity": ()}
    changes: dict[str, Any] = {}
    if name in ("roaming-on", "roaming-off"):
        changes["roaming"] = name == "roaming-on"
    elif "roaming" in data:
        changes["roaming"] = data["roaming"]
    code = data.get("countryCode")
    if isinstance(code, int) and not isinstance(code, bool):
        changes["country_code"] = code
    if "networkType" in data:
        changes["network_type"] = data["networkType"]
    return changes


def bus_payload(
    resource: NetworkResource,
    event: Event,
    status: DeviceStatus | None,
    updated: NetworkResource | None,
) -> dict[str, Any]:
    """The flat message published for a device event (module docstring)."""
    payload: dict[str, Any] = {
        "device": resource.device_id,
        "event": event.name,
        "type": event.type,
        "id": event.id,
        "time": event.time.isoformat().replace("+00:00", "Z"),
    }
    if status is not None:
        for name in ("reachable", "roaming"):
            value = getattr(status, name)
            if value is not None:
                payload[name] = int(value)
        if status.network_type is not None:
            payload["network_type"] = status.network_type
    if resource.kind == "qos_session" and updated is not None:
        payload.update(
            session_id=resource.remote_id,
            qos_profile=resource.qos_profile,
            qos_status=updated.status,
            qos_available=int(updated.status == "AVAILABLE"),
        )
        if "status_info" in updated.details:
            payload["status_info"] = updated.details["status_info"]
    return payload
