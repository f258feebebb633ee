"""Devices, groups and connectivity as JSON data (REST answers, `pbgm device --json`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pbgm.errors import NotFoundError
from pbgm.store.base import Device, DeviceGroup, DeviceStatus, NetworkResource, Store

LIVE = ("REQUESTED", "AVAILABLE")


def stamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def device_json(device: Device, groups: Sequence[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": device.id,
        "identifiers": dict(device.identifiers),
        "owner": device.owner,
        "asset_id": device.asset_id,
        "description": device.description,
        "created_at": stamp(device.created_at),
        "updated_at": stamp(device.updated_at),
    }
    if groups is not None:
        out["groups"] = list(groups)
    return out


def group_json(group: DeviceGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "description": group.description,
        "members": list(group.members),
        "created_at": stamp(group.created_at),
    }


def _session(resource: NetworkResource, now: datetime) -> dict[str, Any]:
    expires = resource.expires_at
    remaining = max(0, int((expires - now).total_seconds())) if expires else None
    return {
        "session_id": resource.remote_id,
        "qos_profile": resource.qos_profile,
        "qos_status": resource.status,
        "duration_s": resource.duration_s,
        "started_at": stamp(resource.started_at),
        "expires_at": stamp(expires),
        "remaining_s": remaining,
    }


def connectivity_json(
    device_id: str,
    status: DeviceStatus | None,
    resources: Sequence[NetworkResource],
    now: datetime,
) -> dict[str, Any]:
    """The connectivity view of one device: status last seen, its live QoS session
    and expiry, its QoS assignment, its subscriptions."""
    sessions = [r for r in resources if r.kind == "qos_session" and r.status in LIVE]
    sessions.sort(key=lambda r: r.expires_at or now)
    assignments = [r for r in resources if r.kind == "qos_assignment"]
    out: dict[str, Any] = {
        "device": device_id,
        "reachable": status.reachable if status else None,
        "connectivity": list(status.connectivity) if status else [],
        "roaming": status.roaming if status else None,
        "country_code": status.country_code if status else None,
        "network_type": status.network_type if status else None,
        "last_status_time": stamp(status.last_status_time) if status else None,
        "source": status.source if status else None,
        "qos_session": _session(sessions[-1], now) if sessions else None,
        "qos_assignment": (
            {
                "assignment_id": assignments[-1].remote_id,
                "qos_profile": assignments[-1].qos_profile,
                "status": assignments[-1].status,
            }
            if assignments
            else None
        ),
        "subscriptions": [
            {
                "kind": r.kind,
                "subscription_id": r.remote_id,
                "type": r.details.get("type"),
                "status": r.status,
                "expires_at": stamp(r.expires_at),
            }
            for r in resources
            if r.kind.endswith("_subscription")
        ],
    }
    return out


def connectivity_of(store: Store, device_id: str, now: datetime) -> dict[str, Any]:
    store.get_device(device_id)
    try:
        status: DeviceStatus | None = store.get_device_status(device_id)
    except NotFoundError:
        status = None
    resources = store.list_network_resources(device_id=device_id)
    return connectivity_json(device_id, status, resources, now)


def group_connectivity(store: Store, group_id: str, now: datetime) -> dict[str, Any]:
    """The connectivity view of every member, from three reads whatever the group's size."""
    members = store.get_device_group(group_id).members
    wanted = set(members)
    statuses = {s.device_id: s for s in store.list_device_status() if s.device_id in wanted}
    resources: dict[str, list[NetworkResource]] = {m: [] for m in members}
    for resource in store.list_network_resources():
        if resource.device_id in wanted:
            resources[resource.device_id].append(resource)
    views = [connectivity_json(m, statuses.get(m), resources[m], now) for m in members]
    reachable = sum(1 for v in views if v["reachable"] is True)
    unreachable = sum(1 for v in views if v["reachable"] is False)
    return {
        "group": group_id,
        "members": len(members),
        "reachable": reachable,
        "unreachable": unreachable,
        "unknown": len(members) - reachable - unreachable,
        "devices": views,
    }
