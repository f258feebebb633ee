"""The broker sync's configuration file (YAML or JSON); see `examples/broker.yaml`.

```yaml
store: sqlite:///pbgm.db              # the repository (else `pbgm-broker --db URL`)
broker:
  kind: mosquitto                     # the only built-in kind
  bus: {host: broker.example, port: 8883, ca_file: ca.pem, username: pbgm-admin,
        password_file: admin.password, client_id: pbgm-broker-sync}
password_secret_file: broker.secret   # derives every principal's broker password
relay: {principal: pbgm-relay, prefix: pbgm/relay/}
principals:                           # grants the data_access policies do not give
  pmu-gateway: {publish: [/edgeflex/#]}
refresh_s: 0.2                        # how often the repository revision is checked
recheck_s: 60                         # the plan is applied anew at least this often
notifications: {topic: pbgm/changes}  # change notices wake the sync at once
```

Every problem is a `ConfigurationError` naming the key; unknown keys are refused.
Relative paths are relative to the configuration file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters._rules import seconds
from adapters.broker._plan import NamedGrants, check_filters
from pbgm.errors import ConfigurationError
from pbgm.policy import load_file

KINDS = ("mosquitto",)
_KEYS = frozenset(
    {"store", "broker", "password_secret_file", "relay", "principals", "refresh_s",
     "recheck_s", "notifications"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """A broker sync's settings, read and checked."""

    bus: Mapping[str, Any]
    password_secret_file: Path
    kind: str = "mosquitto"
    store: str | None = None
    relay_principal: str = "pbgm-relay"
    relay_prefix: str = "pbgm/relay/"
    named: Mapping[str, NamedGrants] = field(default_factory=dict)
    refresh_s: float = 0.2
    recheck_s: float = 60.0
    notices_topic: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> BrokerConfig:
        path = Path(path)
        return from_mapping(load_file(path), base_dir=path.parent)


def from_mapping(data: Any, *, base_dir: Path) -> BrokerConfig:
    if not isinstance(data, Mapping):
        raise ConfigurationError("the broker sync configuration must be a mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigurationError(f"`$.{unknown[0]}` is not a known setting")
    broker = _mapping(data, "broker")
    kind = broker.get("kind", "mosquitto")
    if kind not in KINDS:
        raise ConfigurationError(f"`$.broker.kind` must be one of {', '.join(KINDS)}")
    bus = dict(_mapping(broker, "bus", "$.broker"))
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        if isinstance(bus.get(key), str):
            bus[key] = str(base_dir / bus[key])
    relay = _mapping(data, "relay", required=False)
    prefix = relay_prefix(relay.get("prefix", "pbgm/relay/"), "$.relay.prefix")
    secret = data.get("password_secret_file")
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("`$.password_secret_file` must name the broker secret")
    notices = _mapping(data, "notifications", required=False)
    if set(notices) - {"topic"}:
        raise ConfigurationError("`$.notifications` may hold `topic` only")
    return BrokerConfig(
        bus=bus,
        password_secret_file=base_dir / secret,
        kind=str(kind),
        store=data.get("store"),
        relay_principal=relay_principal(relay.get("principal", "pbgm-relay"), "$.relay.principal"),
        relay_prefix=prefix,
        named=named_grants(data.get("principals") or {}, "$.principals"),
        refresh_s=_seconds(data, "refresh_s", 0.2),
        recheck_s=_seconds(data, "recheck_s", 60.0),
        notices_topic=notices_filter(notices.get("topic"), "$.notifications.topic"),
    )


def _mapping(
    data: Mapping[str, Any], key: str, where: str = "$", *, required: bool = True
) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"`{where}.{key}` must be a mapping")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"`{where}` must be a non-empty string")
    return value


def _seconds(data: Mapping[str, Any], key: str, default: float) -> float:
    return seconds(data.get(key, default), f"$.{key}")


def notices_filter(value: Any, where: str) -> str | None:
    """The topic of the change notices (`$.notifications.topic`), read here from the file
    and by `BrokerSync` from code: None (no notices) or what the bus's subscribe takes, a
    topic name or filter; anything else would be refused only when the sync starts."""
    if value is None:
        return None
    try:
        return check_filters([value], f"`{where}`")[0]
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


# --- the plan's settings, read here from the file and by `PlanSettings` from code -------


def relay_principal(value: Any, where: str) -> str:
    """The relay's principal (`$.relay.principal`)."""
    return _text(value, where)


def relay_prefix(value: Any, where: str) -> str:
    """The relay's output prefix (`$.relay.prefix`): a topic prefix ending in `/`."""
    prefix = _text(value, where)
    if "+" in prefix or "#" in prefix or not prefix.endswith("/"):
        raise ConfigurationError(f"`{where}` must be a topic prefix ending in `/`")
    return prefix


def named_grants(data: Any, where: str) -> dict[str, NamedGrants]:
    """The grants given by name (`$.principals`): principal -> `publish` and `subscribe`
    lists of topic filters (a `NamedGrants` is taken as its two lists)."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"`{where}` must map principals to their grants")
    out = {}
    for name, given in data.items():
        at = f"{where}.{name}"
        grants = _lists(given) if isinstance(given, NamedGrants) else given
        if not isinstance(grants, Mapping) or set(grants) - {"publish", "subscribe"}:
            raise ConfigurationError(f"`{at}` may hold `publish` and `subscribe` lists")
        named = NamedGrants(_filters(grants, "publish", at), _filters(grants, "subscribe", at))
        if any(t.startswith("$CONTROL") for t in (*named.publish, *named.subscribe)):
            raise ConfigurationError(f"`{at}`: `$CONTROL` topics are the broker admin's")
        out[str(name)] = named
    return out


def _lists(grants: NamedGrants) -> dict[str, Any]:
    return {"publish": grants.publish, "subscribe": grants.subscribe}


def _filters(grants: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    topics = grants.get(key) or ()
    if not isinstance(topics, list | tuple):  # a text would be read as one filter a letter
        raise ConfigurationError(f"`{where}.{key}` must be a list of topic filters")
    try:
        return check_filters(topics, f"`{where}.{key}`")
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
