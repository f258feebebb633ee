"""One action on one device: decide, call the network, say what to record.

Each action returns an `Outcome` and never raises for what a device can meet
(denied by policy, a network error, no session to act on, the device gone): a
group action then reports every device, and a single call raises the outcome's
error after it is recorded (`pbgm.devices._manager`). The decision always comes
first: a denied action makes no call.

=====================  ===========================  ====================================
action                 policy action                network
=====================  ===========================  ====================================
`start`                `qos_change`                 QoD create session (capped duration)
`extend`               `qos_extend`                 QoD extend session (capped addition)
`release`              `qos_release`                QoD delete session
`provision`            `provisioning`               QoS Provisioning create assignment
`deprovision`          `deprovisioning`             QoS Provisioning delete assignment
`refresh`              `connectivity_monitoring`    reachability, roaming, network type
`subscribe`            `connectivity_monitoring`    status subscriptions (with a sink)
=====================  ===========================  ====================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pbgm.devices._context import DeviceSettings, NetworkHolder
from pbgm.devices._decide import Ask, DeviceDecisions, Verdict
from pbgm.devices._results import DENIED, DONE, FAILED, SKIPPED, DeviceResult, Outcome
from pbgm.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from pbgm.model import Clock
from pbgm.network import NetworkError, QosSession, Sink
from pbgm.store.base import Device, DeviceStatus, NetworkResource, Store

POLICY_ACTION = {
    "start": "qos_change",
    "extend": "qos_extend",
    "release": "qos_release",
    "provision": "provisioning",
    "deprovision": "deprovisioning",
    "refresh": "connectivity_monitoring",
    "subscribe": "connectivity_monitoring",
}
LIVE = ("REQUESTED", "AVAILABLE")
SUBSCRIPTION_TYPES = {
    "reachability": (
        "org.camaraproject.device-reachability-status-subscriptions.v0.reachability-disconnected",
        "org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data",
    ),
    "roaming": ("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status",),
    "network_type": (
        "org.camaraproject.connected-network-type-subscriptions.v0.network-type-changed",
    ),
}
"""What `subscribe` asks for: one subscription per event type, as CAMARA has it."""


def _stamp(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def session_data(resource: NetworkResource) -> dict[str, Any]:
    return {
        "session_id": resource.remote_id,
        "qos_profile": resource.qos_profile,
        "qos_status": resource.status,
        "duration_s": resource.duration_s,
        "started_at": _stamp(resource.started_at),
        "expires_at": _stamp(resource.expires_at),
    }


@dataclass(frozen=True)
class _Act:
    """One action on one device by one actor: what every outcome of it names."""

    action: str
    actor: str
    device: Device
    groups: tuple[str, ...]
    group: str | None
    decisions: DeviceDecisions

    def decide(self, **fields: Any) -> Verdict:
        ask = Ask(
            self.actor, POLICY_ACTION[self.action], self.device, self.groups, group=self.group,
            **fields,
        )  # fmt: skip
        return self.decisions.decide(ask)

    def denied(self, verdict: Verdict) -> Outcome:
        result = DeviceResult(self.device.id, DENIED, verdict.code, verdict.reason)
        error = PermissionDeniedError(
            verdict.reason,
            code=verdict.code,
            decision=verdict.response.decision.value,
            policy_ids=list(verdict.response.policy_ids),
        )
        return self._outcome(result, {**verdict.audit(), "result": DENIED}, error=error)

    def failed(self, audit: Mapping[str, Any], error: NetworkError) -> Outcome:
        data = {k: v for k, v in error.details.items() if k in ("correlator", "retry_after")}
        result = DeviceResult(self.device.id, FAILED, error.code, error.message, data)
        details = {**audit, "result": FAILED, "error": error.code, **error.details}
        return self._outcome(result, details, error=error)

    def skipped(self, code: str, message: str) -> Outcome:
        result = DeviceResult(self.device.id, SKIPPED, code, message)
        audit = {"result": SKIPPED, "reason": code}
        return self._outcome(result, audit, error=NotFoundError(message))

    def done(self, verdict: Verdict, data: Mapping[str, Any], **record: Any) -> Outcome:
        result = DeviceResult(self.device.id, DONE, data=data)
        return self._outcome(result, {**verdict.audit(), "result": DONE}, **record)

    def _outcome(self, result: DeviceResult, audit: Mapping[str, Any], **rest: Any) -> Outcome:
        return Outcome(result, POLICY_ACTION[self.action], self.actor, audit, **rest)


class DeviceActions:
    """The actions of the module table, for one actor at a time."""

    def __init__(
        self,
        store: Store,
        network: NetworkHolder,
        decisions: DeviceDecisions,
        settings: DeviceSettings,
        clock: Clock,
    ) -> None:
        self.store, self.network, self.decisions = store, network, decisions
        self.settings, self.clock = settings, clock
        self._run: dict[str, Callable[[_Act, Mapping[str, Any]], Outcome]] = {
            "start": self._start,
            "extend": self._extend,
            "release": self._release,
            "provision": self._provision,
            "deprovision": self._deprovision,
            "refresh": self._refresh,
            "subscribe": self._subscribe,
        }

    def run(
        self,
        action: str,
        actor: str,
        device: Device,
        groups: tuple[str, ...],
        params: Mapping[str, Any],
        group: str | None = None,
    ) -> Outcome:
        """`action` on `device` (whose groups are `groups`), as `actor`."""
        act = _Act(action, actor, device, groups, group, self.decisions)
        try:
            return self._run[action](act, params)
        except NotFoundError as error:  # the device or its resource went away meanwhile
            return act.skipped("not_found", error.message)
        except NetworkError as error:
            return act.failed({}, error)

    def _live_session(self, device_id: str) -> NetworkResource | None:
        sessions = [
            r
            for r in self.store.list_network_resources(device_id=device_id, kind="qos_session")
            if r.status in LIVE
        ]
        sessions.sort(key=lambda r: r.created_at or r.updated_at or self.clock())
        return sessions[-1] if sessions else None

    def _assignment(self, device_id: str) -> NetworkResource | None:
        found = self.store.list_network_resources(device_id=device_id, kind="qos_assignment")
        return found[-1] if found else None

    # -- QoS sessions

    def _start(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        profile = params.get("qos_profile") or self.decisions.default_profile(act.groups)
        asked = params["duration_s"]
        verdict = act.decide(qos_profile=profile, duration_s=asked)
        if not verdict.allowed:
            return act.denied(verdict)
        sink, hashed = self.settings.new_sink(self.clock())
        server = params.get("application_server") or self.settings.application_server
        try:
            session = self.network.get().create_session(
                act.device.identifiers,
                qos_profile=profile,
                duration_s=verdict.duration_s or asked,
                application_server=server,
                sink=sink,
            )
        except NetworkError as error:
            return act.failed(verdict.audit(), error)
        resource = _session_resource(act.device.id, session, profile, hashed, sink)
        data = {
            **session_data(resource),
            "requested_duration_s": asked,
            "capped": session.duration_s < asked,
        }
        return act.done(verdict, data, resources=(resource,))

    def _extend(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        current = self._live_session(act.device.id)
        if current is None:
            return _no_session(act)
        asked = params["additional_s"]
        verdict = act.decide(
            qos_profile=current.qos_profile,
            duration_s=asked,
            current_duration_s=current.duration_s,
        )
        if not verdict.allowed:
            return act.denied(verdict)
        try:
            session = self.network.get().extend_session(
                current.remote_id, verdict.duration_s or asked
            )
        except NetworkError as error:
            return act.failed(verdict.audit(), error)
        resource = _session_resource(
            act.device.id, session, current.qos_profile, current.sink_token_hash, None
        )
        resource = replace(resource, details={**current.details, **resource.details})
        wanted = (current.duration_s or 0) + asked
        data = {
            **session_data(resource),
            "requested_additional_s": asked,
            "capped": session.duration_s < wanted,
        }
        return act.done(verdict, data, resources=(resource,), update=True)

    def _release(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        current = self._live_session(act.device.id)
        if current is None:
            return _no_session(act)
        return self._delete(act, current, self.network.get().delete_session, "session_id")

    # -- QoS provisioning

    def _provision(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        profile = params.get("qos_profile") or self.decisions.default_profile(act.groups)
        verdict = act.decide(qos_profile=profile)
        if not verdict.allowed:
            return act.denied(verdict)
        sink, hashed = self.settings.new_sink(self.clock())
        try:
            assigned = self.network.get().create_assignment(
                act.device.identifiers, qos_profile=profile, sink=sink
            )
        except NetworkError as error:
            return act.failed(verdict.audit(), error)
        resource = NetworkResource(
            "qos_assignment",
            assigned.assignment_id,
            act.device.id,
            assigned.status,
            qos_profile=assigned.qos_profile,
            started_at=assigned.started_at,
            sink_token_hash=hashed,
            details=_sink_details(sink),
        )
        data = {
            "assignment_id": assigned.assignment_id,
            "qos_profile": assigned.qos_profile,
            "status": assigned.status,
        }
        return act.done(verdict, data, resources=(resource,))

    def _deprovision(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        current = self._assignment(act.device.id)
        if current is None:
            message = f"device `{act.device.id}` has no QoS profile assigned"
            return act.skipped("not_provisioned", message)
        return self._delete(act, current, self.network.get().delete_assignment, "assignment_id")

    def _delete(
        self,
        act: _Act,
        current: NetworkResource,
        delete: Callable[[str], object],
        id_name: str,
    ) -> Outcome:
        """Release a session or revoke an assignment: decided, then deleted at the
        operator (one it no longer knows counts as deleted), then forgotten here."""
        verdict = act.decide(qos_profile=current.qos_profile)
        if not verdict.allowed:
            return act.denied(verdict)
        try:
            delete(current.remote_id)
        except NetworkError as error:
            if error.code != "network_not_found":  # already ended at the operator
                return act.failed(verdict.audit(), error)
        flag = "released" if current.kind == "qos_session" else "revoked"
        data = {id_name: current.remote_id, flag: True}
        return act.done(verdict, data, forget=(current.kind, current.remote_id))

    # -- connectivity

    def _refresh(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        verdict = act.decide()
        if not verdict.allowed:
            return act.denied(verdict)
        network = self.network.get()
        identifiers = act.device.identifiers
        try:
            reach = network.reachability(identifiers)
        except NetworkError as error:
            return act.failed(verdict.audit(), error)
        status = DeviceStatus(
            act.device.id,
            reach.reachable,
            reach.connectivity,
            last_status_time=reach.last_status_time,
            source="poll",
        )
        notes: dict[str, str] = {}
        for name, read in (("roaming", network.roaming), ("network_type", network.network_type)):
            try:
                found = read(identifiers)
            except NetworkError as error:
                notes[name] = error.code  # reachability is what matters; keep the rest partial
                continue
            status = _with(status, found)
        data: dict[str, Any] = {
            "reachable": status.reachable,
            "connectivity": list(status.connectivity),
            "roaming": status.roaming,
            "network_type": status.network_type,
        }
        if notes:
            data["unavailable"] = notes
        return act.done(verdict, data, status=status)

    def _subscribe(self, act: _Act, params: Mapping[str, Any]) -> Outcome:
        kinds = params.get("kinds") or tuple(SUBSCRIPTION_TYPES)
        unknown = [k for k in kinds if k not in SUBSCRIPTION_TYPES]
        if unknown:
            raise InvalidInputError(f"unknown subscription kind `{unknown[0]}`")
        verdict = act.decide()
        if not verdict.allowed:
            return act.denied(verdict)
        if self.settings.sink_url is None:
            error = NetworkError(
                "notifications need `sink_url` in the network configuration",
                code="network_not_configured",
            )
            return act.failed(verdict.audit(), error)
        made: list[NetworkResource] = []
        try:
            for kind in kinds:
                for event_type in SUBSCRIPTION_TYPES[kind]:
                    made.append(self._one_subscription(act.device, kind, event_type))
        except NetworkError as error:  # the ones made are kept: they exist at the operator
            return replace(act.failed(verdict.audit(), error), resources=tuple(made))
        data = {
            "subscriptions": [
                {"kind": r.kind, "subscription_id": r.remote_id, "type": r.details["type"]}
                for r in made
            ]
        }
        return act.done(verdict, data, resources=tuple(made))

    def _one_subscription(self, device: Device, kind: str, event_type: str) -> NetworkResource:
        sink, hashed = self.settings.new_sink(self.clock())
        assert sink is not None
        made = self.network.get().subscribe(kind, device.identifiers, sink=sink, types=[event_type])
        return NetworkResource(
            f"{kind}_subscription",
            made.subscription_id,
            device.id,
            made.status,
            expires_at=made.expires_at,
            sink_token_hash=hashed,
            details={"type": event_type, **_sink_details(sink)},
        )


def _no_session(act: _Act) -> Outcome:
    return act.skipped("no_active_session", f"device `{act.device.id}` has no active QoS session")


def _sink_details(sink: Sink | None) -> dict[str, Any]:
    return {"sink_expires_at": _stamp(sink.expires_at)} if sink is not None else {}


def _session_resource(
    device_id: str,
    session: QosSession,
    profile: str | None,
    hashed: str | None,
    sink: Sink | None,
) -> NetworkResource:
    details: dict[str, Any] = _sink_details(sink)
    if session.status_info:
        details["status_info"] = session.status_info
    return NetworkResource(
        "qos_session",
        session.session_id,
        device_id,
        session.qos_status,
        qos_profile=session.qos_profile or profile,
        duration_s=session.duration_s,
        started_at=session.started_at,
        expires_at=session.expires_at,
        sink_token_hash=hashed,
        details=details,
    )


def _with(status: DeviceStatus, found: Any) -> DeviceStatus:
    if hasattr(found, "roaming"):
        return replace(status, roaming=found.roaming, country_code=found.country_code)
    return replace(status, network_type=found.network_type)
