"""A CAMARA-speaking operator on 127.0.0.1 for the tests: a real socket (werkzeug,
threaded), an OAuth2 token endpoint, and the operations of `tests.camara.schemas`.

Every request is checked against its schema, its bearer token and its `x-correlator`;
every answer the server gives is checked too. What breaks a rule is answered as
CAMARA would (400 `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`) and recorded in
`violations`, which the `camara` fixture asserts empty after each test: pbgm cannot
send what CAMARA forbids without a test failing.

Behaviour, as the specifications describe it: sessions are AVAILABLE at once, run
`duration` seconds, are capped at the profile's `maxDuration` on extension, refuse a
duration outside the profile's range (400 `QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE`)
and a profile that is not ACTIVE (422 `QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE`);
a second session for a device is 409 `CONFLICT`; extending a session that is not
AVAILABLE is 409 `QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED`.

Knobs: `delay_s` (answers slowly), `fail(...)` (a status and code for matching calls,
a number of times), `unknown` (identifiers it answers 404 `IDENTIFIER_NOT_FOUND`),
`reachable` (the answers of the status APIs), and `notify(...)`, which sends a
CloudEvent to the sink of a session, assignment or subscription with its credential.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.camara import schemas as s

CLIENT_ID = "pbgm-client"
CLIENT_SECRET = "a-camara-client-secret"
TOKEN_LIFETIME_S = 3600
PROFILES: dict[str, dict[str, Any]] = {
    "LOW_LATENCY": {"status": "ACTIVE", "min": 60, "max": 86_400},
    "THROUGHPUT_M": {"status": "ACTIVE", "min": 60, "max": 43_200},
    "QOS_E": {"status": "ACTIVE", "min": 1, "max": 50_000},
    "THROUGHPUT_L": {"status": "DEPRECATED", "min": 60, "max": 3_600},
}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def device_key(device: Any) -> str:
    return json.dumps(device, sort_keys=True)


@dataclass
class Seen:
    """One request as the server received it."""

    operation: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    operation: str
    status: int
    code: str
    times: int | None
    match: Callable[[Any], bool] | None = None
    retry_after: int | str | None = None


@dataclass
class Resource:
    """A session, assignment or subscription, with the sink it notifies."""

    kind: str  # session | assignment | reachability | roaming | network_type
    id: str
    device: Any
    body: dict[str, Any]
    sink: str | None
    token: str | None = field(repr=False, default=None)


OPERATIONS = [
    ("token", "POST", "/oauth2/token"),
    ("reset", "POST", "/_reset"),  # not CAMARA: forget every resource (benchmark rounds)
    ("createSession", "POST", "/quality-on-demand/v1/sessions"),
    ("getSession", "GET", "/quality-on-demand/v1/sessions/<sid>"),
    ("deleteSession", "DELETE", "/quality-on-demand/v1/sessions/<sid>"),
    ("extendQosSessionDuration", "POST", "/quality-on-demand/v1/sessions/<sid>/extend"),
    ("retrieveSessionsByDevice", "POST", "/quality-on-demand/v1/retrieve-sessions"),
    ("retrieveQoSProfiles", "POST", "/qos-profiles/v1/retrieve-qos-profiles"),
    ("createAssignment", "POST", "/qos-provisioning/v0.3/qos-assignments"),
    ("revokeAssignment", "DELETE", "/qos-provisioning/v0.3/qos-assignments/<sid>"),
    ("getReachabilityStatus", "POST", "/device-reachability-status/v1/retrieve"),
    ("getRoamingStatus", "POST", "/device-roaming-status/v1/retrieve"),
    ("retrieveConnectedNetworkType", "POST", "/connected-network-type/v0.1/retrieve"),
    (
        "createSubscription.reachability",
        "POST",
        "/device-reachability-status-subscriptions/v0.7/subscriptions",
    ),
    (
        "deleteSubscription.reachability",
        "DELETE",
        "/device-reachability-status-subscriptions/v0.7/subscriptions/<sid>",
    ),
    (
        "createSubscription.roaming",
        "POST",
        "/device-roaming-status-subscriptions/v0.7/subscriptions",
    ),
    (
        "deleteSubscription.roaming",
        "DELETE",
        "/device-roaming-status-subscriptions/v0.7/subscriptions/<sid>",
    ),
    (
        "createSubscription.network_type",
        "POST",
        "/connected-network-type-subscriptions/v0.1/subscriptions",
    ),
    (
        "deleteSubscription.network_type",
        "DELETE",
        "/connected-network-type-subscriptions/v0.1/subscriptions/<sid>",
    ),
]
REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "createSession": s.CREATE_SESSION,
    "extendQosSessionDuration": s.EXTEND_SESSION,
    "retrieveSessionsByDevice": s.RETRIEVE_BY_DEVICE,
    "retrieveQoSProfiles": s.RETRIEVE_PROFILES,
    "createAssignment": s.CREATE_ASSIGNMENT,
    "getReachabilityStatus": s.RETRIEVE_BY_DEVICE,
    "getRoamingStatus": s.RETRIEVE_BY_DEVICE,
    "retrieveConnectedNetworkType": s.RETRIEVE_BY_DEVICE,
    **{f"createSubscription.{k}": s.subscription_request(k) for k in s.SUBSCRIPTION_TYPES},
}


class _Quiet(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as an operator's API gateway has it

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Every call is in `CamaraServer.requests`; no log line per request."""


class CamaraServer:
    """The operator (module docstring). `url` is its `{apiRoot}`."""

    def __init__(self, *, ca_file: Path | None = None, validate: bool = True) -> None:
        self.ca_file = ca_file
        self.validate = validate  # off only for benchmarks: the operator's cost, not pbgm's
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.delay_s = 0.0
        self.gate: threading.Event | None = None
        self.unknown: set[str] = set()
        self.reachable: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, Resource] = {}
        self.profiles = {name: dict(p) for name, p in PROFILES.items()}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._map = Map([Rule(path, endpoint=op, methods=[m]) for op, m, path in OPERATIONS])
        self.wsgi: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet
        )
        self.wsgi.daemon_threads = True
        self.port = self.wsgi.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.url}/oauth2/token"
        self._thread = threading.Thread(
            target=self.wsgi.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.wsgi.shutdown()
        self.wsgi.server_close()
        self._thread.join()

    # -- knobs

    def fail(
        self,
        operation: str,
        status: int,
        code: str,
        *,
        times: int | None = None,
        device: Any = None,
        retry_after: int | str | None = None,
    ) -> None:
        """Answer `status` `code` to `operation` (for `device` only, if given) the next
        `times` times (always without `times`)."""
        match = None if device is None else (lambda body: body.get("device") == device)
        with self._lock:
            self._faults.append(Fault(operation, status, code, times, match, retry_after))

    def hold(self) -> threading.Event:
        """Hold every API call until the returned event is set."""
        self.gate = threading.Event()
        return self.gate

    def calls(self, operation: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    def sessions(self) -> list[Resource]:
        with self._lock:
            return [r for r in self.resources.values() if r.kind == "session"]

    def subscription(self, kind: str, device: Any, event: str) -> Resource:
        """The `kind` subscription of `device` for the event type ending in `event`."""
        with self._lock:
            found = [
                r
                for r in self.resources.values()
                if r.kind == kind and r.device == device and r.body["types"][0].endswith(event)
            ]
        assert found, f"no {kind} subscription to {event} for {device}"
        return found[-1]

    def resource_of(self, kind: str, device: Any) -> Resource:
        with self._lock:
            found = [r for r in self.resources.values() if r.kind == kind and r.device == device]
        assert found, f"no {kind} for {device}"
        return found[-1]

    # -- notifications

    def notify(
        self,
        resource: Resource,
        event_type: str,
        data: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        specversion: str = "1.0",
        raw: bytes | None = None,
        event_id: str | None = None,
    ) -> httpx.Response:
        """POST a CloudEvent about `resource` to its sink, with its credential (or `token`)."""
        assert resource.sink is not None, "the resource has no sink"
        event = {
            "id": event_id or str(uuid.uuid4()),
            "source": f"{self.url}/{resource.kind}/{resource.id}",
            "type": event_type,
            "specversion": specversion,
            "datacontenttype": "application/json",
            "time": _stamp(_now()),
            "data": {**self._event_ids(resource), **(data or {})},
        }
        if raw is None and specversion == "1.0":
            self._check("notification", s.CLOUD_EVENT, event)
            self._check("notification data", s.EVENT_DATA[event_type], event["data"])
        body = raw if raw is not None else json.dumps(event).encode()
        headers = {
            "Content-Type": "application/cloudevents+json",
            "x-correlator": str(uuid.uuid4()),
            "Authorization": f"Bearer {token if token is not None else resource.token}",
        }
        verify: Any = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True
        with httpx.Client(verify=verify, timeout=10) as client:
            return client.post(resource.sink, content=body, headers=headers)

    @staticmethod
    def _event_ids(resource: Resource) -> dict[str, Any]:
        if resource.kind == "session":
            return {"sessionId": resource.id}
        if resource.kind == "assignment":
            return {"assignmentId": resource.id}
        return {"device": resource.device, "subscriptionId": resource.id}

    # -- the WSGI app

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _answer(self, request: Request) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            operation, args = adapter.match()
        except Exception:
            return self._error(404, "NOT_FOUND", "no such path")
        body = self._body(request, operation)
        with self._lock:
            self.requests.append(
                Seen(operation, request.method, request.path, dict(request.headers), body)
            )
        if operation == "token":
            return self._token(request)
        if operation == "reset":
            with self._lock:
                self.resources.clear()
                self.requests.clear()
            return Response(status=204)
        refused = self._refuse(request, operation, body)
        if refused is not None:
            return refused
        if self.delay_s:
            time.sleep(self.delay_s)
        gate = self.gate
        if gate is not None:
            gate.wait(10)
        fault = self._fault(operation, body)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return self._error(fault.status, fault.code, "injected", headers)
        handler = getattr(self, "_" + operation.split(".")[0])
        answer: Response = handler(body, args.get("sid"), operation.partition(".")[2])
        answer.headers["x-correlator"] = request.headers.get("x-correlator", "")
        return answer

    def _body(self, request: Request, operation: str) -> Any:
        if request.method in ("GET", "DELETE") or operation in ("token", "reset"):
            return None
        if request.mimetype != "application/json":
            self._violation(f"{operation}: Content-Type `{request.mimetype}`")
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            self._violation(f"{operation}: the body is not JSON")
            return None

    def _refuse(self, request: Request, operation: str, body: Any) -> Response | None:
        correlator = request.headers.get("x-correlator")
        if correlator is None or not s.X_CORRELATOR.fullmatch(correlator):
            self._violation(f"{operation}: x-correlator `{correlator}`")
            return self._error(400, "INVALID_ARGUMENT", "x-correlator")
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return self._error(401, "UNAUTHENTICATED", "a valid access token is required")
        schema = REQUEST_SCHEMAS.get(operation) if self.validate else None
        if schema is not None:
            found = s.problems(schema, body)
            if found:
                self._violation(f"{operation} request: {found}")
                return self._error(400, "INVALID_ARGUMENT", "; ".join(found)[:200])
        return None

    def _fault(self, operation: str, body: Any) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation != operation or fault.times == 0:
                    continue
                if fault.match is not None and not (isinstance(body, dict) and fault.match(body)):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _check(self, what: str, schema: dict[str, Any], instance: Any) -> None:
        found = s.problems(schema, instance)
        if found:
            self._violation(f"{what}: {found}")

    def _json(self, status: int, data: Any, schema: dict[str, Any] | None) -> Response:
        if schema is not None and self.validate:
            self._check(f"answer {status}", schema, data)
        return Response(json.dumps(data), status=status, mimetype="application/json")

    def _error(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        response = self._json(status, {"status": status, "code": code, "message": message}, None)
        response.headers.update(headers or {})
        return response

    # -- OAuth2 client credentials

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        form = request.form
        good = (
            auth is not None
            and auth.username == CLIENT_ID
            and auth.password == CLIENT_SECRET
            and form.get("grant_type") == "client_credentials"
        )
        if not good:
            return Response(
                json.dumps({"error": "invalid_client"}), 401, mimetype="application/json"
            )
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
            self.tokens_issued += 1
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}
        return Response(json.dumps(answer), mimetype="application/json")

    # -- Quality-On-Demand

    def _device_refused(self, device: Any) -> Response | None:
        if device_key(device) in self.unknown:
            return self._error(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")
        return None

    def _session_view(self, resource: Resource) -> dict[str, Any]:
        return {k: v for k, v in resource.body.items() if k != "sinkCredential"}

    def _createSession(self, body: dict[str, Any], _: Any, __: str) -> Response:
        refused = self._device_refused(body.get("device"))
        if refused is not None:
            return refused
        profile = self.profiles.get(body["qosProfile"])
        if profile is None or profile["status"] != "ACTIVE":
            return self._error(422, "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE", "profile")
        if not profile["min"] <= body["duration"] <= profile["max"]:
            return self._error(400, "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE", "duration")
        with self._lock:
            for other in self.resources.values():
                live = other.body.get("qosStatus") == "AVAILABLE"
                if other.kind == "session" and live and other.device == body.get("device"):
                    return self._error(409, "CONFLICT", "Conflict with an existing session")
            started = _now()
            session = {
                **body,
                "sessionId": str(uuid.uuid4()),
                "startedAt": _stamp(started),
                "expiresAt": _stamp(started + timedelta(seconds=body["duration"])),
                "qosStatus": "AVAILABLE",
            }
            token = (body.get("sinkCredential") or {}).get("accessToken")
            resource = Resource(
                "session",
                session["sessionId"],
                body.get("device"),
                session,
                body.get("sink"),
                token,
            )
            self.resources[resource.id] = resource
        return self._json(201, self._session_view(resource), s.SESSION_INFO)

    def _session(self, sid: str) -> Resource | None:
        found = self.resources.get(sid)
        return found if found is not None and found.kind == "session" else None

    def _getSession(self, _: Any, sid: str, __: str) -> Response:
        found = self._session(sid)
        if found is None:
            return self._error(404, "NOT_FOUND", "The specified resource is not found.")
        return self._json(200, self._session_view(found), s.SESSION_INFO)

    def _deleteSession(self, _: Any, sid: str, __: str) -> Response:
        with self._lock:
            found = self._session(sid)
            if found is None:
                return self._error(404, "NOT_FOUND", "The specified resource is not found.")
            del self.resources[sid]
        return Response(status=204)

    def _extendQosSessionDuration(self, body: dict[str, Any], sid: str, _: str) -> Response:
        with self._lock:
            found = self._session(sid)
            if found is None:
                return self._error(404, "NOT_FOUND", "The specified resource is not found.")
            if found.body["qosStatus"] != "AVAILABLE":
                code = "QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED"
                return self._error(409, code, "The session must be in the AVAILABLE state.")
            limit = self.profiles[found.body["qosProfile"]]["max"]
            duration = min(found.body["duration"] + body["requestedAdditionalDuration"], limit)
            started = datetime.fromisoformat(found.body["startedAt"].replace("Z", "+00:00"))
            found.body["duration"] = duration
            found.body["expiresAt"] = _stamp(started + timedelta(seconds=duration))
        return self._json(200, self._session_view(found), s.SESSION_INFO)

    def end_session(self, resource: Resource, status_info: str = "NETWORK_TERMINATED") -> None:
        """The network ends a session (its status becomes UNAVAILABLE)."""
        with self._lock:
            resource.body["qosStatus"] = "UNAVAILABLE"
            resource.body["statusInfo"] = status_info

    def _retrieveSessionsByDevice(self, body: dict[str, Any], _: Any, __: str) -> Response:
        with self._lock:
            found = [
                self._session_view(r)
                for r in self.resources.values()
                if r.kind == "session" and r.device == body["device"]
            ]
        return self._json(200, found, s.SESSION_LIST)

    # -- QoS Profiles and QoS Provisioning

    def _retrieveQoSProfiles(self, body: Any, _: Any, __: str) -> Response:
        listed = [
            {
                "name": name,
                "status": p["status"],
                "minDuration": {"value": p["min"], "unit": "Seconds"},
                "maxDuration": {"value": p["max"], "unit": "Seconds"},
            }
            for name, p in sorted(self.profiles.items())
        ]
        return self._json(200, listed, s.PROFILE_LIST)

    def _createAssignment(self, body: dict[str, Any], _: Any, __: str) -> Response:
        refused = self._device_refused(body.get("device"))
        if refused is not None:
            return refused
        if body["qosProfile"] not in self.profiles:
            return self._error(422, "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE", "profile")
        with self._lock:
            if any(
                r.kind == "assignment" and r.device == body.get("device")
                for r in self.resources.values()
            ):
                return self._error(409, "CONFLICT", "The device already has an assignment")
            info = {
                "assignmentId": str(uuid.uuid4()),
                "device": body.get("device"),
                "qosProfile": body["qosProfile"],
                "startedAt": _stamp(_now()),
                "status": "AVAILABLE",
            }
            if "sink" in body:
                info["sink"] = body["sink"]
            token = (body.get("sinkCredential") or {}).get("accessToken")
            resource = Resource(
                "assignment",
                info["assignmentId"],
                body.get("device"),
                info,
                body.get("sink"),
                token,
            )
            self.resources[resource.id] = resource
        return self._json(201, info, s.ASSIGNMENT_INFO)

    def _revokeAssignment(self, _: Any, sid: str, __: str) -> Response:
        with self._lock:
            found = self.resources.get(sid)
            if found is None or found.kind != "assignment":
                return self._error(404, "NOT_FOUND", "The specified resource is not found.")
            del self.resources[sid]
        return Response(status=204)

    # -- Device Status

    def _status(self, device: Any) -> dict[str, Any]:
        return self.reachable.get(device_key(device), {})

    def _getReachabilityStatus(self, body: dict[str, Any], _: Any, __: str) -> Response:
        refused = self._device_refused(body["device"])
        if refused is not None:
            return refused
        known = self._status(body["device"])
        reachable = known.get("reachable", True)
        answer: dict[str, Any] = {"lastStatusTime": _stamp(_now()), "reachable": reachable}
        if reachable:
            answer["connectivity"] = known.get("connectivity", ["DATA"])
        return self._json(200, answer, s.REACHABILITY_INFO)

    def _getRoamingStatus(self, body: dict[str, Any], _: Any, __: str) -> Response:
        refused = self._device_refused(body["device"])
        if refused is not None:
            return refused
        roaming = self._status(body["device"]).get("roaming", False)
        answer: dict[str, Any] = {"lastStatusTime": _stamp(_now()), "roaming": roaming}
        if roaming:
            answer.update(countryCode=208, countryName=["FR"])
        return self._json(200, answer, s.ROAMING_INFO)

    def _retrieveConnectedNetworkType(self, body: dict[str, Any], _: Any, __: str) -> Response:
        refused = self._device_refused(body["device"])
        if refused is not None:
            return refused
        kind = self._status(body["device"]).get("network_type", "5G")
        answer = {"lastStatusTime": _stamp(_now()), "connectedNetworkType": kind}
        return self._json(200, answer, s.NETWORK_TYPE_INFO)

    def _createSubscription(self, body: dict[str, Any], _: Any, kind: str) -> Response:
        device = body["config"]["subscriptionDetail"]["device"]
        refused = self._device_refused(device)
        if refused is not None:
            return refused
        info = {k: v for k, v in body.items() if k != "sinkCredential"}
        info.update(id=str(uuid.uuid4()), startsAt=_stamp(_now()), status="ACTIVE")
        expires = body["config"].get("subscriptionExpireTime")
        if expires:
            info["expiresAt"] = expires
        token = (body.get("sinkCredential") or {}).get("accessToken")
        resource = Resource(kind, info["id"], device, info, body["sink"], token)
        with self._lock:
            self.resources[resource.id] = resource
        return self._json(201, info, s.subscription_info(kind))

    def _deleteSubscription(self, _: Any, sid: str, kind: str) -> Response:
        with self._lock:
            found = self.resources.get(sid)
            if found is None or found.kind != kind:
                return self._error(404, "NOT_FOUND", "The specified resource is not found.")
            del self.resources[sid]
        return Response(status=204)
