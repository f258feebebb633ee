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
    prefix = _text(relay, "prefix", "pbgm/relay/", "$.relay")
    if "+" in prefix or "#" in prefix or not prefix.endswith("/"):
        raise ConfigurationError("`$.relay.prefix` must be a topic prefix ending in `/`")
    secret = data.get("password_secret_file")
    if not isinstance(secret, str) or not secret:
        raise ConfigurationError("`$.password_secret_file` must name the broker secret")
    notices = _mapping(data, "notifications", required=False)
    return BrokerConfig(
        bus=bus,
        password_secret_file=base_dir / secret,
        kind=str(kind),
        store=data.get("store"),
        relay_principal=_text(relay, "principal", "pbgm-relay", "$.relay"),
        relay_prefix=prefix,
        named=_named(data.get("principals") or {}),
        refresh_s=_seconds(data, "refresh_s", 0.2),
        recheck_s=_seconds(data, "recheck_s", 60.0),
        notices_topic=notices.get("topic"),
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


def _text(data: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"`{where}.{key}` must be a non-empty string")
    return value


def _seconds(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
        raise ConfigurationError(f"`$.{key}` must be a number of seconds from 0 to 86400")
    return float(value)


def _named(data: Any) -> dict[str, NamedGrants]:
    if not isinstance(data, Mapping):
        raise ConfigurationError("`$.principals` must map principals to their grants")
    out = {}
    for name, grants in data.items():
        where = f"$.principals.{name}"
        if not isinstance(grants, Mapping) or set(grants) - {"publish", "subscribe"}:
            raise ConfigurationError(f"`{where}` may hold `publish` and `subscribe` lists")
        try:
            named = NamedGrants(
                check_filters(grants.get("publish") or (), f"`{where}.publish`"),
                check_filters(grants.get("subscribe") or (), f"`{where}.subscribe`"),
            )
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        if any(t.startswith("$CONTROL") for t in (*named.publish, *named.subscribe)):
            raise ConfigurationError(f"`{where}`: `$CONTROL` topics are the broker admin's")
        out[str(name)] = named
    return out
