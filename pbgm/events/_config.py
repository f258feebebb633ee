"""The event service's configuration file (YAML or JSON); see `examples/events.yaml`.

Every key is checked: an unknown key, a wrong type or an impossible value is a
`ConfigurationError` naming the key's path, so a typo never silently changes what
the service does. Relative paths (policy files, JWKS file, key directory) are
resolved against the directory of the configuration file.

A configuration made in code is checked by the same rules: `EventServiceConfig.checked`
(called by `EventService` at construction) turns it back into the data its file would
hold and reads that, so a bad value fails at start with the same error, never per
message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from math import inf
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pbgm.errors import ConfigurationError
from pbgm.functions import parse_topic_filter
from pbgm.policy import config_data, load_file

KINDS = ("measurement", "data_request", "grid_state")
DEFAULT_CODECS = {"measurement": "json.edgeflex", "data_request": "json", "grid_state": "json"}


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    """A topic filter the service listens to, and what its messages are."""

    topic: str
    kind: str
    codec: str
    policy_group: str
    qos: int = 1
    decide: bool = True
    device_level: int | None = None
    frequency_field: str | None = None
    power_field: str | None = None
    s_base_mw: float | None = None


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """How data-request tokens are verified: a JWKS file or a pbgm key directory."""

    issuer: str
    audience: str
    jwks_file: Path | None = None
    keys_dir: Path | None = None
    leeway_s: float = 30.0


@dataclass(frozen=True, slots=True)
class EventServiceConfig:
    subscriptions: tuple[SubscriptionConfig, ...]
    bus: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({"kind": "memory"}))
    store: str | None = None
    policies: tuple[Path, ...] = ()
    policy_group: str = "grid-services"
    service_id: str = "pbgm-event-service"
    rocof_window_ms: int = 200
    delta_p_window_ms: int = 500
    history_s: float = 60.0
    max_samples_per_topic: int = 10_000
    max_topics: int = 10_000
    reply_topic_prefix: str = "/pbgm/replies/"
    reply_window_s: float = 10.0
    data_topic_prefix: str = "/pbgm/data/"
    notification_topic: str = "/pbgm/events"
    refresh_ms: int = 500
    audit_interval_s: float = 60.0
    service_workers: int = 2
    jwt: JwtConfig | None = None
    services: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)
    require_policies: bool = False

    @classmethod
    def load(cls, path: str | Path) -> EventServiceConfig:
        path = Path(path)
        return cls.from_mapping(load_file(path), base_dir=path.parent)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> EventServiceConfig:
        return _read_config(_Reader(data, "$", base_dir or Path.cwd()))

    def checked(self) -> EventServiceConfig:
        """This configuration, unchanged, if its file would be accepted; else the
        `ConfigurationError` reading that file raises, naming the setting's path
        (`$.rocof_window_ms`, `$.subscriptions[0].qos`).

        The file's data is the fields by name (the keys of the file), nested
        configurations as mappings, tuples as lists and paths as text; it is read as
        `from_mapping` reads a file, so a configuration made in code meets exactly the
        rules of one read from a file. The copy read is dropped: the service keeps the
        object its caller made (relative paths as given, not resolved against a directory).
        """
        _read_config(_Reader(config_data(self, keep_none=True), "$", Path()))
        return self


class _Reader:
    """Typed access to one mapping of the configuration, with unknown keys refused.

    An absent key takes its default; `null` is accepted only for a setting whose
    default is none (an optional one), never in place of a default value.
    """

    def __init__(self, data: Any, path: str, base_dir: Path) -> None:
        if not isinstance(data, Mapping):
            raise _error(path, "must be a mapping")
        self.data, self.path, self.base_dir = data, path, base_dir
        self.seen: set[str] = set()

    def raw(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.data.get(key, default)

    def text(self, key: str, default: str | None = None) -> Any:
        value = self.raw(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value:
            raise _error(f"{self.path}.{key}", "must be a non-empty string")
        return value

    def number(self, key: str, default: float | None, *, minimum: float = 0) -> Any:
        value = self.raw(key, default)
        if value is None and default is None:
            return None
        # written so that NaN (above nothing) and infinity are refused too
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not minimum < value < inf
        ):
            raise _error(f"{self.path}.{key}", f"must be a finite number above {minimum}")
        return value

    def integer(self, key: str, default: int | None, *, minimum: int = 1) -> Any:
        value = self.raw(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _error(f"{self.path}.{key}", f"must be an integer of at least {minimum}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise _error(f"{self.path}.{key}", "must be true or false")
        return value

    def child(self, key: str) -> _Reader | None:
        value = self.raw(key)
        return None if value is None else _Reader(value, f"{self.path}.{key}", self.base_dir)

    def file(self, key: str) -> Path | None:
        value = self.text(key)
        return None if value is None else self.base_dir / value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise _error(f"{self.path}.{unknown[0]}", "is not a known setting")


def _error(path: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"`{path}` {message}")


def _read_config(r: _Reader) -> EventServiceConfig:
    group = r.text("policy_group", "grid-services")
    subscriptions = r.raw("subscriptions")
    if not isinstance(subscriptions, list) or not subscriptions:
        raise _error(f"{r.path}.subscriptions", "must be a non-empty list")
    config = EventServiceConfig(
        subscriptions=tuple(
            _subscription(_Reader(s, f"{r.path}.subscriptions[{i}]", r.base_dir), group)
            for i, s in enumerate(subscriptions)
        ),
        bus=MappingProxyType(dict(_mapping(r, "bus", {"kind": "memory"}))),
        store=r.text("store"),
        policies=tuple(r.base_dir / p for p in _strings(r, "policies")),
        policy_group=group,
        service_id=r.text("service_id", "pbgm-event-service"),
        rocof_window_ms=r.integer("rocof_window_ms", 200),
        delta_p_window_ms=r.integer("delta_p_window_ms", 500),
        history_s=r.number("history_s", 60.0),
        max_samples_per_topic=r.integer("max_samples_per_topic", 10_000, minimum=10),
        max_topics=r.integer("max_topics", 10_000),
        reply_topic_prefix=r.text("reply_topic_prefix", "/pbgm/replies/"),
        reply_window_s=r.number("reply_window_s", 10.0),
        data_topic_prefix=r.text("data_topic_prefix", "/pbgm/data/"),
        notification_topic=r.text("notification_topic", "/pbgm/events"),
        refresh_ms=r.integer("refresh_ms", 500, minimum=0),
        audit_interval_s=r.number("audit_interval_s", 60.0, minimum=-1),
        service_workers=r.integer("service_workers", 2),
        jwt=_jwt(r.child("jwt")),
        services=MappingProxyType(_services(r)),
        require_policies=r.flag("require_policies", False),
    )
    r.done()
    if config.store and config.policies:
        raise _error(f"{r.path}.policies", "cannot be combined with `store`")
    return config


def _mapping(r: _Reader, key: str, default: Mapping[str, Any]) -> Mapping[str, Any]:
    value = r.raw(key, default)
    if not isinstance(value, Mapping):
        raise _error(f"{r.path}.{key}", "must be a mapping")
    return value


def _strings(r: _Reader, key: str) -> list[str]:
    value = r.raw(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _error(f"{r.path}.{key}", "must be a list of non-empty strings")
    return value


def _subscription(r: _Reader, default_group: str) -> SubscriptionConfig:
    topic, kind = r.text("topic"), r.raw("kind")
    try:
        parse_topic_filter(topic or "")
    except ValueError as exc:
        raise _error(f"{r.path}.topic", f"is not a topic filter: {exc}") from None
    if kind not in KINDS:
        raise _error(f"{r.path}.kind", f"must be one of {', '.join(KINDS)}")
    qos = r.raw("qos", 1)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise _error(f"{r.path}.qos", "must be 0, 1 or 2")
    subscription = SubscriptionConfig(
        topic=topic,
        kind=kind,
        codec=r.text("codec", DEFAULT_CODECS[kind]),
        policy_group=r.text("policy_group", default_group),
        qos=qos,
        decide=r.flag("decide", True),
        device_level=r.integer("device_level", None, minimum=0),
        frequency_field=r.text("frequency_field"),
        power_field=r.text("power_field"),
        s_base_mw=r.number("s_base_mw", None),
    )
    r.done()
    return subscription


def _jwt(r: _Reader | None) -> JwtConfig | None:
    if r is None:
        return None
    config = JwtConfig(
        issuer=r.text("issuer"),
        audience=r.text("audience"),
        jwks_file=r.file("jwks_file"),
        keys_dir=r.file("keys_dir"),
        leeway_s=r.number("leeway_s", 30.0, minimum=-1),
    )
    r.done()
    if not config.issuer or not config.audience:
        raise _error(r.path, "needs `issuer` and `audience`")
    if (config.jwks_file is None) == (config.keys_dir is None):
        raise _error(r.path, "needs exactly one of `jwks_file` and `keys_dir`")
    return config


def _services(r: _Reader) -> dict[str, Mapping[str, Any]]:
    services = _mapping(r, "services", {})
    for name, options in services.items():
        if not isinstance(options, Mapping):
            raise _error(f"{r.path}.services.{name}", "must be a mapping of options")
    return {str(name): MappingProxyType(dict(options)) for name, options in services.items()}
