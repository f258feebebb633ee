"""`CamaraNetwork`: `pbgm.network.Network` over the CAMARA APIs (domain.md §7).

=========================  ==========================================  ===========
API                        base (below `{apiRoot}`)                    operations
=========================  ==========================================  ===========
Quality-On-Demand 1.1      /quality-on-demand/v1                       sessions: create, get,
                                                                       extend, delete,
                                                                       retrieve by device
QoS Profiles 1.1           /qos-profiles/v1                            retrieve profiles
QoS Provisioning 0.3       /qos-provisioning/v0.3                      assignments: create,
                                                                       delete
Device Reachability 1.0    /device-reachability-status/v1              retrieve
Device Roaming 1.0         /device-roaming-status/v1                   retrieve
Connected Network Type     /connected-network-type/v0.1                retrieve
...-subscriptions          /device-reachability-status-subscriptions/  create, delete
                           v0.7, /device-roaming-status-subscriptions/
                           v0.7, /connected-network-type-subscriptions/
                           v0.1
=========================  ==========================================  ===========

A configuration may move a base (`options: {paths: {qod: ...}}`). Idempotent calls
(reads, deletes and the `retrieve` operations, which only read) are retried; creates
and extends are not (`adapters.camara._http`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from adapters.camara._http import CamaraHttp
from pbgm.errors import InvalidInputError
from pbgm.network import (
    Device,
    NetworkConfig,
    NetworkError,
    NetworkType,
    QosAssignment,
    QosProfile,
    QosSession,
    Reachability,
    Roaming,
    Sink,
    StatusSubscription,
)

PATHS = {
    "qod": "/quality-on-demand/v1",
    "profiles": "/qos-profiles/v1",
    "provisioning": "/qos-provisioning/v0.3",
    "reachability": "/device-reachability-status/v1",
    "roaming": "/device-roaming-status/v1",
    "network_type": "/connected-network-type/v0.1",
    "reachability_subscriptions": "/device-reachability-status-subscriptions/v0.7",
    "roaming_subscriptions": "/device-roaming-status-subscriptions/v0.7",
    "network_type_subscriptions": "/connected-network-type-subscriptions/v0.1",
}
EVENT_TYPES = {
    "reachability": tuple(
        f"org.camaraproject.device-reachability-status-subscriptions.v0.{name}"
        for name in ("reachability-data", "reachability-sms", "reachability-disconnected")
    ),
    "roaming": tuple(
        f"org.camaraproject.device-roaming-status-subscriptions.v0.{name}"
        for name in ("roaming-on", "roaming-off", "roaming-change-country")
    ),
    "network_type": (
        "org.camaraproject.connected-network-type-subscriptions.v0.network-type-changed",
    ),
}
DURATION_UNITS = {"Days": 86_400, "Hours": 3_600, "Minutes": 60, "Seconds": 1}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _seconds(value: Any) -> int | None:
    """A QoS Profiles `Duration` (`{"value", "unit"}`) in seconds."""
    if not isinstance(value, Mapping):
        return None
    amount, unit = value.get("value"), DURATION_UNITS.get(value.get("unit", ""))
    if isinstance(amount, int) and not isinstance(amount, bool) and unit is not None:
        return amount * unit
    return None


def _sink_credential(sink: Sink) -> dict[str, str]:
    expires = sink.expires_at.isoformat().replace("+00:00", "Z")
    return {
        "credentialType": "ACCESSTOKEN",
        "accessToken": sink.token,
        "accessTokenExpiresUtc": expires,
        "accessTokenType": "bearer",
    }


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise NetworkError(
            "the operator answered something that is not JSON; report this",
            code="network_rejected",
            upstream_status=response.status_code,
        ) from None


def _object(response: httpx.Response, *required: str) -> dict[str, Any]:
    body = _json(response)
    if not isinstance(body, dict) or any(key not in body for key in required):
        raise NetworkError(
            "the operator's answer lacks " + ", ".join(f"`{k}`" for k in required),
            code="network_rejected",
            upstream_status=response.status_code,
        )
    return body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def session_of(body: Mapping[str, Any]) -> QosSession:
    duration = body.get("duration")
    return QosSession(
        session_id=str(body["sessionId"]),
        qos_profile=str(body.get("qosProfile", "")),
        qos_status=str(body.get("qosStatus", "")),
        duration_s=duration if isinstance(duration, int) else 0,
        started_at=_time(body.get("startedAt")),
        expires_at=_time(body.get("expiresAt")),
        status_info=_text(body.get("statusInfo")),
    )


class CamaraNetwork:
    """The CAMARA APIs of one operator (module docstring)."""

    def __init__(self, config: NetworkConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        self.http = CamaraHttp(config, transport=transport)
        self.paths: dict[str, str] = {**PATHS, **dict(config.options.get("paths") or {})}

    def close(self) -> None:
        self.http.close()

    def _path(self, api: str, tail: str) -> str:
        return self.paths[api] + tail

    # -- Quality-On-Demand

    def create_session(
        self,
        device: Device,
        *,
        qos_profile: str,
        duration_s: int,
        application_server: Mapping[str, Any],
        sink: Sink | None = None,
    ) -> QosSession:
        body: dict[str, Any] = {
            "device": dict(device),
            "applicationServer": dict(application_server),
            "qosProfile": qos_profile,
            "duration": duration_s,
        }
        if sink is not None:
            body["sink"] = sink.url
            body["sinkCredential"] = _sink_credential(sink)
        path = self._path("qod", "/sessions")
        response = self.http.call("POST", path, body=body, ok=(201,), idempotent=False)
        return session_of(_object(response, "sessionId", "duration", "qosStatus"))

    def get_session(self, session_id: str) -> QosSession:
        path = self._path("qod", f"/sessions/{_segment(session_id)}")
        response = self.http.call("GET", path, idempotent=True)
        return session_of(_object(response, "sessionId", "duration", "qosStatus"))

    def extend_session(self, session_id: str, additional_s: int) -> QosSession:
        path = self._path("qod", f"/sessions/{_segment(session_id)}/extend")
        body = {"requestedAdditionalDuration": additional_s}
        response = self.http.call("POST", path, body=body, idempotent=False)
        return session_of(_object(response, "sessionId", "duration", "qosStatus"))

    def delete_session(self, session_id: str) -> None:
        path = self._path("qod", f"/sessions/{_segment(session_id)}")
        self.http.call("DELETE", path, ok=(204,), idempotent=True)

    def sessions_of(self, device: Device) -> list[QosSession]:
        path = self._path("qod", "/retrieve-sessions")
        response = self.http.call("POST", path, body={"device": dict(device)}, idempotent=True)
        body = _json(response)
        if not isinstance(body, list):
            raise NetworkError("the operator's session list is not a list", code="network_rejected")
        return [session_of(item) for item in body if isinstance(item, dict) and "sessionId" in item]

    # -- QoS Profiles and QoS Provisioning

    def qos_profiles(self) -> list[QosProfile]:
        path = self._path("profiles", "/retrieve-qos-profiles")
        response = self.http.call("POST", path, body={}, idempotent=True)
        body = _json(response)
        items = body if isinstance(body, list) else []
        return [
            QosProfile(
                name=str(item["name"]),
                status=str(item.get("status", "")),
                min_duration_s=_seconds(item.get("minDuration")),
                max_duration_s=_seconds(item.get("maxDuration")),
                description=str(item.get("description", "")),
            )
            for item in items
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        ]

    def create_assignment(
        self, device: Device, *, qos_profile: str, sink: Sink | None = None
    ) -> QosAssignment:
        body: dict[str, Any] = {"device": dict(device), "qosProfile": qos_profile}
        if sink is not None:
            body["sink"] = sink.url
            body["sinkCredential"] = _sink_credential(sink)
        path = self._path("provisioning", "/qos-assignments")
        response = self.http.call(
            "POST", path, body=body, ok=(201,), idempotent=False, assignment=True
        )
        found = _object(response, "assignmentId", "qosProfile", "status")
        return QosAssignment(
            assignment_id=str(found["assignmentId"]),
            qos_profile=str(found["qosProfile"]),
            status=str(found["status"]),
            started_at=_time(found.get("startedAt")),
            status_info=found.get("statusInfo")
            if isinstance(found.get("statusInfo"), str)
            else None,
        )

    def delete_assignment(self, assignment_id: str) -> None:
        path = self._path("provisioning", f"/qos-assignments/{_segment(assignment_id)}")
        self.http.call("DELETE", path, ok=(202, 204), idempotent=True)

    # -- Device Status

    def reachability(self, device: Device) -> Reachability:
        path = self._path("reachability", "/retrieve")
        response = self.http.call("POST", path, body={"device": dict(device)}, idempotent=True)
        body = _object(response, "reachable")
        connectivity = body.get("connectivity") or []
        return Reachability(
            reachable=body["reachable"] is True,
            connectivity=tuple(c for c in connectivity if c in ("DATA", "SMS")),
            last_status_time=_time(body.get("lastStatusTime")),
        )

    def roaming(self, device: Device) -> Roaming:
        path = self._path("roaming", "/retrieve")
        response = self.http.call("POST", path, body={"device": dict(device)}, idempotent=True)
        body = _object(response, "roaming")
        code = body.get("countryCode")
        names = body.get("countryName") or []
        return Roaming(
            roaming=body["roaming"] is True,
            country_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            country_name=tuple(n for n in names if isinstance(n, str)),
            last_status_time=_time(body.get("lastStatusTime")),
        )

    def network_type(self, device: Device) -> NetworkType:
        path = self._path("network_type", "/retrieve")
        response = self.http.call("POST", path, body={"device": dict(device)}, idempotent=True)
        body = _object(response, "connectedNetworkType")
        return NetworkType(
            network_type=str(body["connectedNetworkType"]),
            last_status_time=_time(body.get("lastStatusTime")),
        )

    def subscribe(
        self, kind: str, device: Device, *, sink: Sink, types: Sequence[str] = ()
    ) -> StatusSubscription:
        if kind not in EVENT_TYPES:
            raise InvalidInputError(f"unknown subscription kind `{kind}`")
        wanted = list(types or EVENT_TYPES[kind])
        expires = sink.expires_at.isoformat().replace("+00:00", "Z")
        body = {
            "protocol": "HTTP",
            "sink": sink.url,
            "sinkCredential": _sink_credential(sink),
            "types": wanted,
            "config": {
                "subscriptionDetail": {"device": dict(device)},
                "subscriptionExpireTime": expires,
            },
        }
        path = self._path(f"{kind}_subscriptions", "/subscriptions")
        response = self.http.call("POST", path, body=body, ok=(201,), idempotent=False)
        found = _object(response, "id")
        return StatusSubscription(
            subscription_id=str(found["id"]),
            kind=kind,
            types=tuple(found.get("types") or wanted),
            status=str(found.get("status", "ACTIVE")),
            expires_at=_time(found.get("expiresAt")),
        )

    def unsubscribe(self, kind: str, subscription_id: str) -> None:
        if kind not in EVENT_TYPES:
            raise InvalidInputError(f"unknown subscription kind `{kind}`")
        path = self._path(f"{kind}_subscriptions", f"/subscriptions/{_segment(subscription_id)}")
        self.http.call("DELETE", path, ok=(202, 204), idempotent=True)


def _segment(value: str) -> str:
    """An operator id as one path segment: never a way to reach another path."""
    if not value or any(c in value for c in "/?#%\\") or value in (".", ".."):
        raise InvalidInputError(f"`{value[:60]}` is not an id the operator could have given")
    return value
