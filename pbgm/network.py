"""The operator's network API as pbgm sees it: a Protocol, its records, its errors.

pbgm never imports an HTTP client. `pbgm.devices` talks to a `Network`; the
implementation that speaks CAMARA (domain.md §7: Quality-On-Demand, QoS Profiles,
QoS Provisioning, Device Reachability Status, Device Roaming Status, Connected
Network Type and their subscriptions) lives in `adapters.camara` and is found at run
time through the entry-point group `pbgm.network` (or a `factory` named in the
configuration), as `pbgm.bus` finds the MQTT bus.

Devices are passed as CAMARA `Device` objects (`phoneNumber`, `networkAccessIdentifier`,
`ipv4Address`, `ipv6Address`). Every failure is a `NetworkError` whose `code` says what
happened and whose message says what to do (table in `NETWORK_CODES`); an
implementation never lets a library's exception out.

The configuration (`NetworkConfig.load(path)`, a YAML or JSON file named by
`PBGM_NETWORK_CONFIG`) holds where the API is and how to authenticate: the client
secret is read from a file or an environment variable it names, never written in the
file, a policy or a log.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pbgm.bus import load_factory
from pbgm.errors import ConfigurationError, PbgmError, Problem
from pbgm.policy import load_file

__all__ = [
    "NETWORK_CODES",
    "NETWORK_ENTRY_POINT_GROUP",
    "Network",
    "NetworkConfig",
    "NetworkConfigError",
    "NetworkError",
    "NetworkType",
    "QosAssignment",
    "QosProfile",
    "QosSession",
    "Reachability",
    "Roaming",
    "Sink",
    "StatusSubscription",
    "device_problems",
    "is_loopback",
    "open_network",
]

NETWORK_ENTRY_POINT_GROUP = "pbgm.network"
SUBSCRIPTION_KINDS = ("reachability", "roaming", "network_type")

NETWORK_CODES: Mapping[str, str] = MappingProxyType(
    {
        "network_not_configured": "no network API is configured: set `PBGM_NETWORK_CONFIG`",
        "network_unavailable": "the operator's API could not be reached or failed (5xx)",
        "network_timeout": "the operator's API did not answer in time",
        "network_busy": "the operator's API asks to slow down (429): retry after `retry_after`",
        "network_auth_failed": "the operator refused pbgm's client credentials or token",
        "network_permission_denied": "the operator refused the operation for pbgm's client",
        "network_rejected": "the operator refused the request as malformed (400)",
        "network_not_found": "the operator no longer knows the session or subscription",
        "session_conflict": "the device already has a QoS session for this flow",
        "session_extension_not_allowed": "only an AVAILABLE session can be extended",
        "assignment_conflict": "the device already has a QoS profile assigned",
        "qos_profile_not_applicable": "the operator does not offer that QoS profile now",
        "duration_out_of_range": "the operator refuses that duration for the QoS profile",
        "identifier_not_found": "the operator does not know the device's identifier",
        "unsupported_identifier": "the operator does not support the device's identifiers",
        "missing_identifier": "the operator cannot identify the device",
        "unnecessary_identifier": "the operator identifies the device from the token",
        "service_not_applicable": "the operator does not offer the service for the device",
    }
)
"""Every `NetworkError.code`, with what it means."""


class NetworkError(PbgmError):
    """The operator's network API failed or refused. `upstream_status` and
    `upstream_code` are the operator's answer (when there was one), `correlator` the
    `x-correlator` of the call, `retry_after` seconds to wait (for `network_busy`)."""

    code = "network_error"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        upstream_status: int | None = None,
        upstream_code: str | None = None,
        correlator: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        details: dict[str, Any] = {}
        for name, value in (
            ("upstream_status", upstream_status),
            ("upstream_code", upstream_code),
            ("correlator", correlator),
            ("retry_after", retry_after),
        ):
            if value is not None:
                details[name] = value
        super().__init__(message, code=code, **details)
        self.retry_after = retry_after


# --- records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sink:
    """Where and how the operator sends notifications: pbgm's https endpoint and the
    bearer credential it must present (CAMARA `sinkCredential`, type ACCESSTOKEN)."""

    url: str
    token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QosSession:
    """A Quality-On-Demand session (`SessionInfo`)."""

    session_id: str
    qos_profile: str
    qos_status: str  # REQUESTED | AVAILABLE | UNAVAILABLE
    duration_s: int
    started_at: datetime | None = None
    expires_at: datetime | None = None
    status_info: str | None = None  # DURATION_EXPIRED | NETWORK_TERMINATED | DELETE_REQUESTED


@dataclass(frozen=True, slots=True)
class QosAssignment:
    """A QoS Provisioning assignment: a device's QoS profile without a duration."""

    assignment_id: str
    qos_profile: str
    status: str  # REQUESTED | AVAILABLE | UNAVAILABLE
    started_at: datetime | None = None
    status_info: str | None = None


@dataclass(frozen=True, slots=True)
class QosProfile:
    """A QoS profile the operator offers (QoS Profiles API), durations in seconds."""

    name: str
    status: str  # ACTIVE | INACTIVE | DEPRECATED
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Reachability:
    reachable: bool
    connectivity: tuple[str, ...] = ()  # DATA, SMS
    last_status_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Roaming:
    roaming: bool
    country_code: int | None = None
    country_name: tuple[str, ...] = ()
    last_status_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class NetworkType:
    network_type: str  # 2G | 3G | 4G | 5G | UNKNOWN
    last_status_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusSubscription:
    """A Device Status subscription: `kind` is `reachability`, `roaming` or
    `network_type`; `types` the CloudEvent types it sends."""

    subscription_id: str
    kind: str
    types: tuple[str, ...]
    status: str = "ACTIVE"
    expires_at: datetime | None = None


Device = Mapping[str, Any]
"""A CAMARA `Device` object."""


@runtime_checkable
class Network(Protocol):
    """The operations `pbgm.devices` needs of the operator (module docstring)."""

    def create_session(
        self,
        device: Device,
        *,
        qos_profile: str,
        duration_s: int,
        application_server: Mapping[str, Any],
        sink: Sink | None = None,
    ) -> QosSession: ...
    def get_session(self, session_id: str) -> QosSession: ...
    def extend_session(self, session_id: str, additional_s: int) -> QosSession: ...
    def delete_session(self, session_id: str) -> None: ...
    def sessions_of(self, device: Device) -> list[QosSession]: ...
    def qos_profiles(self) -> list[QosProfile]: ...
    def create_assignment(
        self, device: Device, *, qos_profile: str, sink: Sink | None = None
    ) -> QosAssignment: ...
    def delete_assignment(self, assignment_id: str) -> None: ...
    def reachability(self, device: Device) -> Reachability: ...
    def roaming(self, device: Device) -> Roaming: ...
    def network_type(self, device: Device) -> NetworkType: ...
    def subscribe(
        self, kind: str, device: Device, *, sink: Sink, types: Sequence[str] = ()
    ) -> StatusSubscription: ...
    def unsubscribe(self, kind: str, subscription_id: str) -> None: ...
    def close(self) -> None: ...


# --- configuration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """How to reach the operator's network API (module docstring).

    `base_url` is CAMARA's `{apiRoot}`; https, or http on a loopback address (a lab).
    `sink_url` is pbgm's notification endpoint as the operator reaches it (https, as
    CAMARA requires), without it no notification is asked for. `concurrency` bounds
    the calls of one group action in flight; `retries` applies to idempotent calls
    only (reads, deletes); `timeout_s` bounds one call.
    """

    base_url: str
    token_url: str
    client_id: str
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    kind: str = "camara"
    factory: str | None = None
    scope: str | None = None
    timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    retries: int = 2
    concurrency: int = 16
    sink_url: str | None = None
    sink_token_lifetime_s: int = 86_400
    application_server: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"ipv4Address": "198.51.100.10"})
    )
    ca_file: Path | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        """Every rule checked on the object, however it was made: read from a file or
        built in code (`open_network(NetworkConfig(...))`), a bad one never gets made."""
        problems = _problems(self)
        if problems:
            raise NetworkConfigError(problems)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NetworkConfig:
        path = Path(path)
        data = load_file(path)
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"the network configuration `{path}` must be a mapping")
        return cls.from_mapping(data, base_dir=path.parent)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> NetworkConfig:
        base = base_dir or Path.cwd()
        known = {f.name for f in fields(cls)}
        problems = [
            Problem(f"$.{key}", "unknown_setting", f"unknown setting `{key}`")
            for key in data
            if key not in known
        ]
        values = {k: v for k, v in data.items() if k in known}
        for name in ("client_secret_file", "ca_file"):
            if isinstance(values.get(name), str):
                values[name] = base / values[name]
        try:
            config = cls(**values)
        except TypeError as error:
            problems.append(Problem("$", "invalid_setting", str(error)))
        except NetworkConfigError as error:  # its own checks (`__post_init__`)
            problems.extend(error.problems)
        if problems:
            raise NetworkConfigError(problems) from None
        return config

    def client_secret(self) -> str:
        """The client secret, read now from its file or environment variable."""
        if self.client_secret_file is not None:
            try:
                return self.client_secret_file.read_text(encoding="utf-8").strip()
            except OSError:
                raise ConfigurationError(
                    f"cannot read the client secret file `{self.client_secret_file}`"
                ) from None
        value = os.environ.get(self.client_secret_env or "", "")
        if not value:
            raise ConfigurationError(f"the variable `{self.client_secret_env}` is not set")
        return value


class NetworkConfigError(ConfigurationError):
    """A network configuration that breaks its rules, every problem listed."""

    def __init__(self, problems: list[Problem]) -> None:
        names = ", ".join(f"`{p.path}`" for p in problems)
        super().__init__(
            f"{len(problems)} bad network setting(s): {names}",
            problems=[p.as_dict() for p in problems],
        )
        self.problems = tuple(problems)


def is_loopback(host: str | None) -> bool:
    """Whether `host` (a name or an address) is this machine: `localhost` or a loopback
    address. Plain `http://` is allowed only to such a host (a lab)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _url_problem(name: str, url: Any, *, https_only: bool) -> Problem | None:
    if not isinstance(url, str):
        return Problem(f"$.{name}", "invalid_setting", "must be a URL")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if not https_only and parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    where = "https" if https_only else "https (or http on a loopback address)"
    return Problem(f"$.{name}", "invalid_setting", f"`{url}` must be an {where} URL")


def _problems(config: NetworkConfig) -> list[Problem]:
    problems = []
    for name in ("base_url", "token_url"):
        found = _url_problem(name, getattr(config, name), https_only=False)
        if found:
            problems.append(found)
    if not isinstance(config.client_id, str) or not config.client_id:
        problems.append(Problem("$.client_id", "invalid_setting", "must be a non-empty text"))
    if (config.client_secret_file is None) == (config.client_secret_env is None):
        message = "give exactly one of `client_secret_file` and `client_secret_env`"
        problems.append(Problem("$.client_secret_file", "invalid_setting", message))
    problems += _out_of_range(
        config, (("timeout_s", 0.01, 300), ("connect_timeout_s", 0.01, 60), ("retries", 0, 10))
    )
    return problems + device_problems(config)


def device_problems(settings: Any) -> list[Problem]:
    """The rules of what a network configuration passes on to device management
    (`pbgm.devices.DeviceSettings`, which checks itself by them too): `concurrency`,
    `sink_url`, `sink_token_lifetime_s` and `application_server` of `settings`."""
    problems = []
    if settings.sink_url is not None:
        found = _url_problem("sink_url", settings.sink_url, https_only=True)
        if found:
            problems.append(found)
    problems += _out_of_range(
        settings, (("concurrency", 1, 256), ("sink_token_lifetime_s", 60, 31 * 86_400))
    )
    server = settings.application_server
    if not isinstance(server, Mapping) or not server:
        message = "must be a CAMARA ApplicationServer (`ipv4Address` or `ipv6Address`)"
        problems.append(Problem("$.application_server", "invalid_setting", message))
    return problems


def _out_of_range(settings: Any, ranges: Iterable[tuple[str, float, float]]) -> list[Problem]:
    problems = []
    for name, low, high in ranges:
        value = getattr(settings, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            problems.append(Problem(f"$.{name}", "invalid_setting", f"must be {low} to {high}"))
    return problems


def open_network(config: NetworkConfig) -> Network:
    """The network API implementation for `config`: its `factory`, else the entry
    point of its `kind` in the group `pbgm.network` (`camara` is `adapters.camara`)."""
    if config.factory is not None:
        factory: Callable[[NetworkConfig], Network] = load_factory(config.factory, "network")
        return factory(config)
    for entry_point in entry_points(group=NETWORK_ENTRY_POINT_GROUP, name=config.kind):
        opened: Network = entry_point.load()(config)
        return opened
    raise ConfigurationError(
        f"no network API implementation named `{config.kind}`: install the package that "
        "provides it or name a `factory`"
    )
