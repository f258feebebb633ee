"""What one `data_access` policy asks a poller to do: its endpoints, data points, period.

`Plan.from_document(document, secrets_dir)` reads a validated `data_access` policy (its
content, see `pbgm/policy/schemas/data_access.json`) into plain values; anything a poller
cannot do with it (no `data_points`, an auth method `adapters.rest` does not speak) is a
`ConfigurationError` with a code, and the running poller keeps its last good plan.

A policy only names secrets. `auth.secret_ref` is a name in the deployment's secrets
directory (`kibernet/client-secret` -> `<secrets_dir>/kibernet/client-secret`), or
`{env: NAME}` / `{file: PATH}`; it becomes an `adapters.rest.SecretRef`, read when the
endpoint's client is built, never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters._rules import seconds
from adapters.rest import RestEndpoint
from pbgm.bus import check_topic
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.policy.data_access import point_endpoint

__all__ = ["DEFAULT_STATUS_TOPIC", "EndpointPlan", "Plan", "Point", "rest_settings"]

DEFAULT_STATUS_TOPIC = "/pbgm/kibernet/status"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


@dataclass(frozen=True)
class Point:
    """One data point: where it is read, how its answer is read, where it goes."""

    name: str
    endpoint: str
    id: str
    path: str
    query: tuple[tuple[str, str], ...]
    select: tuple[str, ...]
    value: tuple[str, ...]
    time: tuple[str, ...]
    topic: str
    format: str
    signal: str
    sogno: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The topic checked however the point was made (`Plan.from_document` or in code):
        the poller publishes each reading on it (after the delivery's renames), so a
        wildcard or an empty name would fail every publish."""
        _topic(self.topic, f"data point `{self.name}`: `topic`")

    @property
    def resource_path(self) -> str:
        return self.path.replace("{id}", self.id)


@dataclass(frozen=True)
class EndpointPlan:
    """An endpoint's client settings (`adapters.rest.RestEndpoint`) and its rate limit."""

    name: str
    settings: Mapping[str, Any]
    requests_per_minute: int | None
    burst: int | None

    def __post_init__(self) -> None:
        """The rate limit checked however the plan was made: a count below 1 or not an
        integer would refuse (or fail) every read of the endpoint."""
        for key in ("requests_per_minute", "burst"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise _refuse(f"endpoint `{self.name}`: `rate_limit.{key}` must be an integer >= 1")

    def endpoint(self) -> RestEndpoint:
        return RestEndpoint.from_mapping(
            self.settings, name=self.name, where=f"$.content.endpoints.{self.name}"
        )


@dataclass(frozen=True)
class Plan:
    """Everything a poller takes from one `data_access` policy version."""

    policy_id: str
    version: Any
    interval_s: float
    jitter_s: float
    endpoints: Mapping[str, EndpointPlan]
    points: tuple[Point, ...]
    status_topic: str

    def __post_init__(self) -> None:
        """Checked however the plan was made (`from_document` or in code): a period that
        is no finite number or a negative jitter would spin the poller's thread, a bad
        status topic fail every status publish."""
        object.__setattr__(self, "interval_s", _seconds(self.interval_s, "polling.interval_s"))
        object.__setattr__(self, "jitter_s", _seconds(self.jitter_s, "polling.jitter_s", zero=True))
        _topic(self.status_topic, "`status_topic`")

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], secrets_dir: Path = DEFAULT_SECRETS_DIR
    ) -> Plan:
        content = document.get("content")
        if not isinstance(content, Mapping):
            raise _refuse("the policy has no `content`", "invalid_policy")
        if document.get("type", "data_access") != "data_access":
            raise _refuse(f"a `{document.get('type')}` policy is not a data_access policy")
        raw_points = content.get("data_points")
        polling = content.get("polling")
        if not isinstance(raw_points, Mapping) or not raw_points:
            raise _refuse("the policy names no `data_points` to read", "no_data_points")
        if not isinstance(polling, Mapping) or "interval_s" not in polling:
            raise _refuse("the policy has no `polling.interval_s`", "no_polling")
        points = tuple(_point(name, spec, content) for name, spec in raw_points.items())
        default_rate = content.get("rate_limit") or {}
        endpoints = {}
        for name in sorted({p.endpoint for p in points}):
            spec = (content.get("endpoints") or {}).get(name)
            if not isinstance(spec, Mapping):
                raise _refuse(f"data points read endpoint `{name}`, which is not defined")
            rate = spec.get("rate_limit") or default_rate
            endpoints[name] = EndpointPlan(
                name,
                rest_settings(spec, secrets_dir, f"$.content.endpoints.{name}"),
                rate.get("requests_per_minute"),
                rate.get("burst"),
            )
        plan = cls(
            policy_id=str(document.get("id", "")),
            version=document.get("version"),
            interval_s=polling["interval_s"],
            jitter_s=polling.get("jitter_s", 0.0),
            endpoints=endpoints,
            points=points,
            status_topic=content.get("status_topic") or DEFAULT_STATUS_TOPIC,
        )
        for endpoint in endpoints.values():
            endpoint.endpoint()  # every setting checked now, not at the first read
        return plan


def _path(value: Any, default: str) -> tuple[str, ...]:
    return tuple(str(value or default).split(".")) if (value or default) else ()


def _point(name: str, spec: Mapping[str, Any], content: Mapping[str, Any]) -> Point:
    endpoint = point_endpoint(content, spec)
    if endpoint is None:
        raise _refuse(f"data point `{name}` names no endpoint", "missing_endpoint")
    if not isinstance(spec.get("path"), str) or "topic" not in spec:
        raise _refuse(f"data point `{name}` needs a `path` and a `topic`")
    fmt = str(spec.get("format", "time_value"))
    sogno = dict(spec.get("sogno") or {})
    if fmt == "sogno_v4":
        sogno.setdefault("phase", "A")
    return Point(
        name=name,
        endpoint=endpoint,
        id=str(spec.get("id", name)),
        path=spec["path"],
        query=tuple((str(k), str(v)) for k, v in (spec.get("query") or {}).items()),
        select=_path(spec.get("select"), ""),
        value=_path(spec.get("value"), "value"),
        time=_path(spec.get("time"), "time"),
        topic=spec["topic"],
        format=fmt,
        signal=str(spec.get("signal", name)),
        sogno=sogno,
    )


def rest_settings(spec: Mapping[str, Any], secrets_dir: Path, where: str) -> dict[str, Any]:
    """A policy's endpoint as the settings of `adapters.rest.RestEndpoint.from_mapping`."""
    settings: dict[str, Any] = {"base_url": spec.get("base_url")}
    for key in ("timeout_s", "connect_timeout_s", "retries", "max_response_bytes", "ca_file"):
        if key in spec:
            settings[key] = spec[key]
    auth = spec.get("auth") or {"method": "none"}
    method = auth.get("method", "none")
    ref = _secret(auth.get("secret_ref"), secrets_dir)
    if method == "none":
        settings["auth"] = {"mode": "none"}
    elif method == "oauth2_client_credentials":
        settings["auth"] = {
            "mode": method,
            "token_url": auth.get("token_url"),
            "client_id": auth.get("client_id"),
            "client_secret": ref,
            **({"scope": " ".join(auth["scopes"])} if auth.get("scopes") else {}),
        }
    elif method == "api_key":
        settings["auth"] = {"mode": method, "key": ref, "header": auth.get("header", "X-API-Key")}
    elif method == "mtls":
        settings["auth"] = {"mode": method, "cert_file": auth.get("cert_file"), "key_file": ref}
    else:
        raise _refuse(
            f"`{where}.auth.method` `{method}` is not spoken by the poller; use "
            "oauth2_client_credentials, api_key or mtls",
            "unsupported_auth",
        )
    return settings


def _secret(ref: Any, secrets_dir: Path) -> Any:
    if isinstance(ref, str):
        return {"file": str(secrets_dir / ref)}
    return ref


def _topic(value: Any, where: str) -> str:
    """A topic the poller publishes on, by the bus's rule (`pbgm.bus.check_topic`)."""
    try:
        return check_topic(value)
    except InvalidInputError as error:
        raise _refuse(f"{where}: {error.message}") from None


def _seconds(value: Any, where: str, *, zero: bool = False) -> float:
    """A time of the plan: a finite number of seconds above 0 (from 0 with `zero`), by the
    adapters' rule (`adapters._rules.seconds`), refused as the plan's."""
    try:
        return seconds(value, where, zero=zero, most=None)
    except ConfigurationError as error:
        raise _refuse(error.message) from None


def _refuse(message: str, code: str = "invalid_plan") -> ConfigurationError:
    return ConfigurationError(message, code=code)
