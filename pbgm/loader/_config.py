"""The loader's configuration: one JSON or YAML file, checked once, every problem listed.

```yaml
server:
  url: https://pbgm.example:8443         # http or https; a path prefix is kept
  ca_file: /etc/pbgm/ca.pem              # optional: trust this CA (default: the system's)
  timeout_s: 10
  client_id: svc-voltage
  client_secret_env: PBGM_LOADER_SECRET  # or client_secret_file: /run/secrets/pbgm
  scope: policies:read                   # optional
refresh_interval_s: 30
jitter: 0.1                              # +-10 % on every poll interval
backoff: {initial_s: 1, max_s: 300}      # while the server cannot be reached
cache_dir: /var/lib/pbgm-loader
notifications: {topic: pbgm/changes}     # optional: refresh at once on a change notice
bus: {kind: mqtt, host: 127.0.0.1}       # optional: the bus (`pbgm.bus.open_bus`)
policies:
  - name: bess-limits
    asset_id: bess-01
    policy_type: operational_limits
    deliver_to: {mqtt_topic: services/voltage/limits, retain: true}
  - name: voltage-config
    policy_id: voltage-control-config
    policy_group: voltage-control
    deliver_to: on_config                # a callback given to `PolicyLoader(sinks=...)`
```

The secret is never written in the file: it comes from an environment variable
or a file, is read when a token is needed (so it can be rotated) and never
logged. Relative paths are relative to the configuration file.

A `LoaderConfig` made in code is held to the same rules: `validated_config` writes
it out as the plain data of its file and reads that back with the file's reader,
and `PolicyLoader` and `PolicyClient` call it when they are made, so a bad value
fails at start with a `LoaderConfigError` naming its place in the file form
(`$.backoff.initial_s` for `backoff_initial_s`), never in the polling thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pbgm.errors import ConfigurationError, PbgmError, Problem
from pbgm.model import POLICY_TYPES
from pbgm.network import is_loopback
from pbgm.policy import load_file

DEFAULT_REFRESH_S = 30.0
DEFAULT_TOPIC = "pbgm/changes"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TOP = frozenset(
    {
        "server",
        "refresh_interval_s",
        "jitter",
        "backoff",
        "cache_dir",
        "notifications",
        "bus",
        "policies",
    }
)
_SERVER = frozenset(
    {
        "url",
        "ca_file",
        "timeout_s",
        "client_id",
        "client_secret_env",
        "client_secret_file",
        "scope",
        "client_secret",  # known only to be refused with a clear message
    }
)
_POLICY = frozenset({"name", "policy_id", "policy_group", "asset_id", "policy_type", "deliver_to"})


class LoaderConfigError(ConfigurationError):
    """The loader configuration is wrong; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        super().__init__(
            f"{len(self.problems)} problem(s) in `{source}`, first at `{first.path}`: "
            f"{first.message}"
        )

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["problems"] = [p.as_dict() for p in self.problems]
        return out


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a policy goes: a named callback, or a (retained) bus topic."""

    callback: str | None = None
    mqtt_topic: str | None = None
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One policy a service needs: by `policy_id` + `policy_group`, or `asset_id` +
    `policy_type` (with an optional `policy_group` to pick one of several)."""

    name: str
    policy_id: str | None = None
    policy_group: str | None = None
    asset_id: str | None = None
    policy_type: str | None = None
    deliver_to: Delivery | None = None

    @property
    def query(self) -> dict[str, str]:
        """What identifies the policy on the server (kept in the cache file too)."""
        keys = ("policy_id", "policy_group", "asset_id", "policy_type")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class LoaderConfig:
    """Everything the loader reads from outside (see the module docstring); one made
    in code is checked by `validated_config` when a loader or client takes it."""

    server_url: str
    client_id: str
    cache_dir: Path
    policies: tuple[PolicySpec, ...]
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    scope: str | None = None
    ca_file: Path | None = None
    timeout_s: float = 10.0
    refresh_interval_s: float = DEFAULT_REFRESH_S
    jitter: float = 0.1
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    notifications_topic: str | None = None
    bus: Mapping[str, Any] | None = field(default=None, repr=False)

    def read_secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The client secret, read now from its variable or file; never logged."""
        environ = os.environ if environ is None else environ
        if self.client_secret_env is not None:
            secret = environ.get(self.client_secret_env, "")
            where = f"environment variable `{self.client_secret_env}`"
        else:
            assert self.client_secret_file is not None
            where = f"file `{self.client_secret_file}`"
            try:
                secret = self.client_secret_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                secret = ""
        if not secret:
            raise ConfigurationError(f"the client secret in {where} is missing or empty")
        return secret


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> LoaderConfig:
    """The configuration in a JSON or YAML file; relative paths are relative to it."""
    path = Path(path)
    try:
        data = load_file(path)
    except PbgmError as error:
        raise LoaderConfigError(str(path), [Problem("$", error.code, error.message)]) from None
    return parse_config(data, base_dir=path.parent, source=str(path), environ=environ)


def parse_config(
    data: Any,
    *,
    base_dir: str | os.PathLike[str] = ".",
    source: str = "loader configuration",
    environ: Mapping[str, str] | None = None,
) -> LoaderConfig:
    """A `LoaderConfig` from plain data, or `LoaderConfigError` listing every problem."""
    reader = _Reader(Path(base_dir), os.environ if environ is None else environ)
    config = reader.config(data)
    if config is None:
        raise LoaderConfigError(source, reader.problems)
    return config


def validated_config(
    config: LoaderConfig,
    *,
    environ: Mapping[str, str] | None = None,
    source: str = "loader configuration",
) -> LoaderConfig:
    """`config` read again as its file would be, or `LoaderConfigError` listing every
    problem by its place in the file (`$.server.url` for `server_url`,
    `$.backoff.initial_s` for `backoff_initial_s`, `$.policies[0].deliver_to.qos`).

    One copy of the rules: `config` is written out as plain data (`_file_data`) and read
    by `parse_config`, relative paths staying relative to the working directory. The
    checks on the outside world are made too, as `load_config` makes them, because the
    loader needs them from its first fetch: `ca_file` and `client_secret_file` must be
    files now, and the secret's variable must be set in `environ` (default the
    process's, which `LoaderConfig.read_secret` reads). A configuration `parse_config`
    made comes back equal; one made in code comes back read (text stripped, the URL
    without its trailing `/`, numbers as floats).
    """
    return parse_config(_file_data(config), source=source, environ=environ)


def _file_data(config: LoaderConfig) -> dict[str, Any]:
    """The plain data of the file `config` would be read from: the inverse of `_Reader`.

    A value of the wrong type is passed on as it is, for the reader to refuse; a value
    that is None is left out, as the file would leave it out (the default applies).
    """
    server = {
        "url": config.server_url,
        "client_id": config.client_id,
        "scope": config.scope,
        "ca_file": _path_text(config.ca_file),
        "timeout_s": config.timeout_s,
        "client_secret_env": config.client_secret_env,
        "client_secret_file": _path_text(config.client_secret_file),
    }
    backoff = {"initial_s": config.backoff_initial_s, "max_s": config.backoff_max_s}
    policies = config.policies
    data = {
        "server": _present(server),
        "refresh_interval_s": config.refresh_interval_s,
        "jitter": config.jitter,
        "backoff": _present(backoff),
        "cache_dir": _path_text(config.cache_dir),
        "notifications": _present({"topic": config.notifications_topic}) or None,
        "bus": config.bus,
        "policies": (
            [_policy_data(spec) for spec in policies]
            if isinstance(policies, list | tuple)
            else policies
        ),
    }
    return _present(data)


def _policy_data(spec: Any) -> Any:
    """A `PolicySpec` as its entry under `policies`."""
    if not isinstance(spec, PolicySpec):
        return spec
    entry = {
        "name": spec.name,
        "policy_id": spec.policy_id,
        "policy_group": spec.policy_group,
        "asset_id": spec.asset_id,
        "policy_type": spec.policy_type,
        "deliver_to": _delivery_data(spec.deliver_to),
    }
    return _present(entry)


def _delivery_data(delivery: Any) -> Any:
    """A `Delivery` as its `deliver_to`: the callback's name, or the topic's mapping.

    A delivery with both a callback and a topic, which no file can say, becomes the
    mapping with a `callback` key, which the reader refuses as an unknown setting.
    """
    if not isinstance(delivery, Delivery):
        return delivery
    if delivery.callback is not None and delivery.mqtt_topic is None:
        return delivery.callback
    data = {"mqtt_topic": delivery.mqtt_topic, "retain": delivery.retain, "qos": delivery.qos}
    return _present({**data, "callback": delivery.callback})


def _path_text(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _present(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


class _Reader:
    """Reads the mapping field by field, collecting problems instead of stopping."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, code: str = "invalid_setting") -> None:
        self.problems.append(Problem(path, code, message))

    def config(self, data: Any) -> LoaderConfig | None:
        if not isinstance(data, Mapping):
            self.problem("$", "the configuration must be a mapping")
            return None
        self.unknown(data, _TOP, "$")
        server = self.mapping(data, "server", "$", required=True)
        backoff = self.mapping(data, "backoff", "$")
        notifications = self.mapping(data, "notifications", "$")
        self.unknown(backoff, {"initial_s", "max_s"}, "$.backoff")
        self.unknown(notifications, {"topic"}, "$.notifications")
        bus = self.mapping(data, "bus", "$")
        values = {
            **(self.server(server) if isinstance(data.get("server"), Mapping) else {}),
            "cache_dir": self.path(data, "cache_dir", "$", required=True),
            "refresh_interval_s": self.number(data, "refresh_interval_s", "$", 1, 86_400),
            "jitter": self.number(data, "jitter", "$", 0, 0.5),
            "backoff_initial_s": self.number(backoff, "initial_s", "$.backoff", 0.1, 3600),
            "backoff_max_s": self.number(backoff, "max_s", "$.backoff", 0.1, 86_400),
            "notifications_topic": self.topic(notifications, "topic", "$.notifications"),
            "bus": dict(bus) if "bus" in data else None,
            "policies": self.policies(data.get("policies")),
        }
        initial, most = values["backoff_initial_s"], values["backoff_max_s"]
        if initial is not None and most is not None and initial > most:
            self.problem("$.backoff", "`initial_s` must not exceed `max_s`")
        if self.problems:
            return None
        return LoaderConfig(**{k: v for k, v in values.items() if v is not None})

    # --- sections -------------------------------------------------------------------

    def server(self, data: Mapping[str, Any]) -> dict[str, Any]:
        self.unknown(data, _SERVER, "$.server")
        if "client_secret" in data:
            self.problem(
                "$.server.client_secret",
                "do not write the secret in the file: use `client_secret_env` or "
                "`client_secret_file`",
                "inline_secret",
            )
        return {
            "server_url": self.url(data),
            "client_id": self.text(data, "client_id", "$.server", required=True),
            "scope": self.text(data, "scope", "$.server"),
            "ca_file": self.path(data, "ca_file", "$.server", must_exist=True),
            "timeout_s": self.number(data, "timeout_s", "$.server", 0.1, 300),
            **self.secret_source(data),
        }

    def secret_source(self, data: Mapping[str, Any]) -> dict[str, Any]:
        env = self.text(data, "client_secret_env", "$.server")
        file = self.path(data, "client_secret_file", "$.server", must_exist=True)
        if (env is None) == (file is None):
            self.problem(
                "$.server",
                "name the client secret by `client_secret_env` or "
                "`client_secret_file` (exactly one)",
                "missing_secret",
            )
        elif env is not None and not self.environ.get(env):
            self.problem(
                "$.server.client_secret_env",
                f"environment variable `{env}` is not set",
                "missing_secret",
            )
        return {"client_secret_env": env, "client_secret_file": file}

    def url(self, data: Mapping[str, Any]) -> str | None:
        text = self.text(data, "url", "$.server", required=True)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem("$.server.url", f"`{text}` is not an http(s) URL with a host")
        elif parts.scheme == "http" and not is_loopback(parts.hostname):
            self.problem(
                "$.server.url",
                f"`{text}`: use https (plain http only to a loopback address): the client "
                "secret would cross the network in the clear",
            )
        elif parts.username or parts.password or parts.query or parts.fragment:
            self.problem("$.server.url", "the URL must hold no credentials, query or fragment")
        return text.rstrip("/")

    def policies(self, items: Any) -> tuple[PolicySpec, ...]:
        if not isinstance(items, list) or not items:
            self.problem("$.policies", "list at least one policy")
            return ()
        specs = [self.policy(item, f"$.policies[{i}]") for i, item in enumerate(items)]
        names = [s.name for s in specs if s is not None]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.problem("$.policies", f"the name `{name}` is used twice", "duplicate_name")
        return tuple(s for s in specs if s is not None)

    def policy(self, item: Any, path: str) -> PolicySpec | None:
        if not isinstance(item, Mapping):
            self.problem(path, "a policy entry must be a mapping")
            return None
        self.unknown(item, _POLICY, path)
        name = self.text(item, "name", path, required=True)
        if name is not None and not _NAME.fullmatch(name):
            self.problem(f"{path}.name", f"`{name}` must be 1-100 letters, digits, `_.-`")
        query = {k: self.text(item, k, path) for k in ("policy_id", "policy_group")}
        query |= {k: self.text(item, k, path) for k in ("asset_id", "policy_type")}
        self.query_shape(query, path)
        delivery = self.delivery(item.get("deliver_to"), f"{path}.deliver_to")
        if name is None:
            return None
        return PolicySpec(name, **query, deliver_to=delivery)

    def query_shape(self, query: dict[str, str | None], path: str) -> None:
        by_id = query["policy_id"] is not None
        by_asset = query["asset_id"] is not None or query["policy_type"] is not None
        if by_id == by_asset:
            self.problem(path, "name `policy_id` + `policy_group`, or `asset_id` + `policy_type`")
        elif by_id and query["policy_group"] is None:
            self.problem(path, "`policy_id` needs its `policy_group`")
        elif by_asset and None in (query["asset_id"], query["policy_type"]):
            self.problem(path, "`asset_id` and `policy_type` go together")
        elif by_asset and query["policy_type"] not in POLICY_TYPES:
            self.problem(f"{path}.policy_type", f"unknown policy type `{query['policy_type']}`")

    def delivery(self, value: Any, path: str) -> Delivery | None:
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return Delivery(callback=value.strip())
        if not isinstance(value, Mapping):
            self.problem(path, "name a callback, or give `{mqtt_topic, retain, qos}`")
            return None
        self.unknown(value, {"mqtt_topic", "retain", "qos"}, path)
        topic = self.topic(value, "mqtt_topic", path, required=True)
        retain = value.get("retain", True)
        qos = value.get("qos", 1)
        if not isinstance(retain, bool):
            self.problem(f"{path}.retain", "`retain` must be true or false")
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            self.problem(f"{path}.qos", "`qos` must be 0, 1 or 2")
        return Delivery(mqtt_topic=topic, retain=retain is True, qos=qos if qos in (0, 1, 2) else 1)

    # --- scalars --------------------------------------------------------------------

    def unknown(self, data: Mapping[str, Any], known: set[str] | frozenset[str], path: str) -> None:
        for key in data:
            if key not in known:
                self.problem(f"{path}.{key}", f"unknown setting `{key}`", "unknown_setting")

    def mapping(
        self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False
    ) -> Mapping[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", f"`{key}` is required", "missing_setting")
            return {}
        if not isinstance(value, Mapping):
            self.problem(f"{path}.{key}", f"`{key}` must be a mapping")
            return {}
        return value

    def text(
        self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(f"{path}.{key}", f"`{key}` is required", "missing_setting")
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > 2000:
            self.problem(f"{path}.{key}", f"`{key}` must be a non-empty text")
            return None
        return value.strip()

    def number(
        self, data: Mapping[str, Any], key: str, path: str, low: float, high: float
    ) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low <= value <= high)
        ):
            self.problem(f"{path}.{key}", f"`{key}` must be a number from {low} to {high}")
            return None
        return float(value)

    def path(
        self,
        data: Mapping[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        must_exist: bool = False,
    ) -> Path | None:
        text = self.text(data, key, where, required=required)
        if text is None:
            return None
        path = self.base_dir / Path(text).expanduser()
        if must_exist and not path.is_file():
            self.problem(f"{where}.{key}", f"`{text}` is not a readable file")
        return path

    def topic(
        self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        text = self.text(data, key, path, required=required)
        if text is not None and ("+" in text or "#" in text):
            self.problem(f"{path}.{key}", f"topic `{text}` must not hold `+` or `#`")
        return text
