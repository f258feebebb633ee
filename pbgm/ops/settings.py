"""Settings of pbgm's server and command line, read once and validated once.

Every setting comes from the first of these that gives it (`resolve_settings`):

1. a command-line flag (`pbgm --db`, `pbgm serve --bind`, `pbgm serve --set NAME=VALUE`),
2. a `PBGM_*` environment variable,
3. the settings file named by `pbgm --config FILE` or `$PBGM_CONFIG` (JSON or YAML,
   keys named as the fields below, e.g. `database_url`),
4. the default.

A mapping given to `create_app` is taken as a complete set of field names (as a
test would). Every bad setting is reported at once in one `ConfigurationError`
whose `problems` name the variables.

==========================  ==============================  ==========================
variable                    meaning                         default
==========================  ==============================  ==========================
PBGM_DATABASE_URL           repository URL                  sqlite:///pbgm.db
PBGM_KEYS_DIR               token signing keys (`pbgm keys`) keys
PBGM_TOKEN_ISSUER           `iss` of issued tokens          pbgm
PBGM_TOKEN_AUDIENCE         `aud` of issued tokens          pbgm-api
PBGM_TOKEN_LIFETIME         token lifetime, seconds         900
PBGM_MAX_CONTENT_LENGTH     largest request body, bytes     1048576
PBGM_MAX_BATCH              most requests in one batch      100
PBGM_RATE_LIMIT             requests per client (token      600/minute
                            subject), Flask-Limiter syntax
                            (`100/second;2000/hour`); a
                            bare number is per minute; 0
                            turns it off
PBGM_RATE_LIMIT_STORAGE     where the counts live: per      memory://
                            process, or shared by every
                            worker and server with
                            `redis://host:6379` (limits'
                            storage URIs)
PBGM_PROXY_HOPS             trusted reverse proxies in      0 (the socket's peer is
                            front: the client address is    the client)
                            taken from that many
                            `X-Forwarded-For` hops
PBGM_REQUEST_TIMEOUT        seconds a request may run       30
                            (`503 request_timeout`); the
                            worker is restarted 10 s later
PBGM_AUDIT_MAX_REQUEST      bytes of each request kept in   2048
                            the decision log (longer ones
                            are cut and marked)
PBGM_AUDIT_MASK             request attributes masked in    (none)
                            the decision log, e.g.
                            `subject.*,resource.location`
PBGM_AUDIT_RETENTION_DAYS   days `pbgm audit prune` keeps   365
                            of the administrative audit
                            log (0: forever)
PBGM_DECISION_RETENTION_DAYS days `pbgm decisions prune`    90
                            keeps of the decision log
                            (0: forever)
PBGM_DECISION_LOG_QUEUE     decision log calls queued for   10000
                            writing before new ones are
                            dropped (and counted)
PBGM_METRICS_PUBLIC         `/metrics` without a token (on   false (a token with
                            a port only Prometheus          `metrics:read`)
                            reaches)
PBGM_METRICS_DIR            directory of the workers'       a fresh temporary
                            shared metric files (emptied    directory per start
                            when `pbgm serve` starts)
PBGM_LOG_LEVEL              debug, info, warning, error     info
PBGM_LOG_FORMAT             `text` (one line: time, level,  text
                            pid, logger, message, request
                            id) or `json` (one object a
                            line)
PBGM_ACCESS_LOG             one line per request            true
PBGM_BIND                   address:port of `pbgm serve`    127.0.0.1:8080
PBGM_WORKERS                gunicorn worker processes       2
PBGM_TLS_CERT, PBGM_TLS_KEY certificate and key (both or    (plain HTTP)
                            neither)
PBGM_GUNICORN_CONFIG        a gunicorn configuration file   (none)
                            (`gunicorn.conf.py`) for every
                            other gunicorn option
PBGM_NOTIFY_BUS_URL         MQTT broker for change notices, (no notices; loaders
                            e.g. `mqtt://127.0.0.1:1883`    poll)
PBGM_NOTIFY_TOPIC           topic of the change notices     pbgm/changes
PBGM_NETWORK_CONFIG         the operator's network API      (none: device actions
                            (CAMARA): a YAML/JSON file,     answer 503
                            `pbgm.network.NetworkConfig`    `network_not_configured`)
PBGM_DEVICE_POLICY_GROUP    policy group of the device_qos  device-management
                            policies
PBGM_DEVICE_TOPIC_PREFIX    device events are published on  /pbgm/devices
                            `<prefix>/<device id>/events`
                            (on the notice bus)
==========================  ==============================  ==========================
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from pbgm.errors import ConfigurationError, Problem
from pbgm.functions import topic_prefix_problem
from pbgm.policy import load_file

ENV_PREFIX = "PBGM_"
_MASK = re.compile(r"(subject|resource|action|environment)\.([A-Za-z0-9_:.\-]+|\*)")
_BIND = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})|unix:/\S+")


FLAG, ENVIRONMENT, FILE, DEFAULT = "flag", "environment", "file", "default"
"""Where a setting came from, strongest first (`resolve_settings`)."""

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the API, `pbgm serve` and the command line read from the outside
    (see the module table)."""

    database_url: str = "sqlite:///pbgm.db"
    keys_dir: str = "keys"
    token_issuer: str = "pbgm"  # noqa: S105  (a name, not a secret)
    token_audience: str = "pbgm-api"  # noqa: S105
    token_lifetime: int = 900
    max_content_length: int = 1_048_576
    max_batch: int = 100
    rate_limit: str = "600/minute"
    rate_limit_storage: str = "memory://"
    proxy_hops: int = 0
    request_timeout: int = 30
    audit_mask: tuple[str, ...] = ()
    audit_max_request: int = 2048
    audit_retention_days: int = 365
    decision_retention_days: int = 90
    decision_log_queue: int = 10_000
    metrics_public: bool = False
    metrics_dir: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = True
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    tls_cert: str | None = None
    tls_key: str | None = None
    gunicorn_config: str | None = None
    notify_bus_url: str | None = None
    notify_topic: str = "pbgm/changes"
    # -- 5G device management (docs/devices.md)
    network_config: str | None = None
    device_policy_group: str = "device-management"
    device_topic_prefix: str = "/pbgm/devices"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated again."""
        return validated(replace(self, **changes))


_DEFAULTS = Settings()


def variable(name: str) -> str:
    """The environment variable of setting `name`: `PBGM_<NAME>`."""
    return f"{ENV_PREFIX}{name.upper()}"


def config_file(environ: Mapping[str, str] | None = None) -> str | None:
    """The settings file `$PBGM_CONFIG` names, if any."""
    environ = os.environ if environ is None else environ
    return environ.get(f"{ENV_PREFIX}CONFIG") or None


def _layers(
    flags: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None,
    file: str | os.PathLike[str] | None,
    problems: list[Problem],
) -> list[tuple[str, dict[str, Any]]]:
    """The raw values of each layer, strongest first."""
    environ = os.environ if environ is None else environ
    path = file if file is not None else config_file(environ)
    from_file = _file_values(Path(path), problems) if path else {}
    from_environment = {
        field.name: environ[variable(field.name)]
        for field in fields(Settings)
        if variable(field.name) in environ
    }
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    return [(FLAG, given), (ENVIRONMENT, from_environment), (FILE, from_file)]


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """The settings and, for each field, where its value came from.

    Flag > environment (`PBGM_*`) > file (`file`, else `$PBGM_CONFIG`) > default;
    every bad value of any layer is reported at once.
    """
    problems: list[Problem] = []
    raw: dict[str, Any] = {}
    sources = {field.name: DEFAULT for field in fields(Settings)}
    for source, values in reversed(_layers(flags, environ, file, problems)):
        raw.update(values)
        sources.update(dict.fromkeys((k for k in values if k in sources), source))
    return settings_from(raw, problems), sources


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from flags, `PBGM_*` variables, a file and the defaults, in that order."""
    return resolve_settings(flags, environ, file=file)[0]


def setting(
    name: str,
    flag: Any = None,
    environ: Mapping[str, str] | None = None,
    *,
    file: str | os.PathLike[str] | None = None,
) -> Any:
    """One setting, in the same order as `resolve_settings`, parsed and checked alone.

    For commands that need one value (`pbgm --db`, `pbgm keys --keys-dir`) and must
    not fail on a bad value of a setting they do not use.
    """
    problems: list[Problem] = []
    known = {field.name for field in fields(Settings)}
    value: Any = _MISSING
    for _source, values in _layers({name: flag}, environ, file, problems):
        problems += [_unknown(key) for key in values if key not in known]
        if value is _MISSING and name in values:
            value = values[name]
    _raise_if(problems)
    if value is _MISSING:
        return getattr(Settings(), name)
    parse: Callable[[Any], Any] = _PARSERS.get(name, _text)
    try:
        return parse(value)
    except ValueError as error:
        _raise_if([Problem(variable(name), "invalid_setting", str(error))])
        raise  # unreachable: _raise_if raised


_MISSING = object()


def _unknown(key: object) -> Problem:
    return Problem(variable(str(key)), "unknown_setting", f"unknown setting `{key}`")


def settings_from(values: Mapping[str, Any], problems: list[Problem] | None = None) -> Settings:
    """Settings from a mapping of field names (strings are parsed as variables are)."""
    problems = list(problems or [])
    known = {field.name for field in fields(Settings)}
    given: dict[str, Any] = {}
    for key, value in values.items():
        if key in known:
            given[key] = value
        else:
            problems.append(_unknown(key))
    settings, found = _read(Settings(**given))
    _raise_if([*problems, *found])
    return settings


def validated(settings: Settings) -> Settings:
    """`settings` with each field read as its variable would be (`0` as the rate limit
    is no limit, `100` is `100/minute`), or `ConfigurationError` naming every bad one.
    A `Settings` made in code is checked here (`replace`, `create_app`) as one read
    from variables is: a bad value fails at start, not in every request."""
    settings, found = _read(settings)
    _raise_if(found)
    return settings


def _read(settings: Settings) -> tuple[Settings, list[Problem]]:
    """Every field parsed (`_PARSERS`, a non-empty text by default; a parser takes its
    own output unchanged), and the problems found, the cross-field rules included. A
    field that does not parse is checked against the others at its default."""
    problems: list[Problem] = []
    parsed: dict[str, Any] = {}
    for field in fields(Settings):
        parse: Callable[[Any], Any] = _PARSERS.get(field.name, _text)
        try:
            parsed[field.name] = parse(getattr(settings, field.name))
        except ValueError as error:
            problems.append(Problem(variable(field.name), "invalid_setting", str(error)))
            parsed[field.name] = getattr(_DEFAULTS, field.name)
    settings = replace(settings, **parsed)
    return settings, [*problems, *_problems(settings)]


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        names = ", ".join(f"`{p.path}`" for p in problems)
        raise ConfigurationError(
            f"{len(problems)} bad setting(s): {names}",
            problems=[p.as_dict() for p in problems],
        )


def _file_values(path: Path, problems: list[Problem]) -> dict[str, Any]:
    if not path.is_file():
        problems.append(Problem(variable("config"), "invalid_setting", f"no file `{path}`"))
        return {}
    try:
        data = load_file(path)
    except Exception as error:  # any unreadable file is one bad setting, not a crash
        reason = getattr(error, "code", "unreadable")
        problems.append(Problem(variable("config"), "invalid_setting", f"`{path}`: {reason}"))
        return {}
    if not isinstance(data, Mapping):
        problems.append(
            Problem(variable("config"), "invalid_setting", f"`{path}` is not a mapping")
        )
        return {}
    return dict(data)


# --- parsing and checking -----------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty text")
    return value.strip()


def _optional_text(value: Any) -> str | None:
    return None if value in (None, "") else _text(value)


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, not `{value}`")
        return number

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, not `{value}`")


_RATE = re.compile(r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*", re.IGNORECASE)


def _rate_limit(value: Any) -> str:
    """Flask-Limiter's syntax (`100/minute;2000/hour`); a bare number is per minute;
    `0` (or `off`) turns the limit off and reads as the empty text."""
    text = str(value).strip()
    if text.lower() in ("0", "off", "none", ""):
        return ""
    if text.isdigit():
        return f"{int(text)}/minute"
    if not all(_RATE.fullmatch(part) for part in text.split(";")):
        raise ValueError(f"`{text}` is not a rate such as `600/minute` or `10/second;500/hour`")
    return text


def _storage(value: Any) -> str:
    text = _text(value)
    if "://" not in text:
        raise ValueError(f"`{text}` is not a storage URI such as `memory://` or `redis://host`")
    return text


def _mask(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a comma-separated list such as `subject.*,resource.location`")
    patterns = tuple(str(item).strip() for item in items if str(item).strip())
    bad = [p for p in patterns if not _MASK.fullmatch(p)]
    if bad:
        raise ValueError(f"`{bad[0]}` is not `<category>.<attribute>` or `<category>.*`")
    return patterns


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not `{value}`")
        return text

    return parse


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "token_lifetime": _integer(10, 86_400),
    "max_content_length": _integer(1024, 64 * 1_048_576),
    "max_batch": _integer(1, 10_000),
    "rate_limit": _rate_limit,
    "rate_limit_storage": _storage,
    "proxy_hops": _integer(0, 5),
    "request_timeout": _integer(1, 3600),
    "audit_max_request": _integer(256, 1_048_576),
    "audit_mask": _mask,
    "audit_retention_days": _integer(0, 36_500),
    "decision_retention_days": _integer(0, 36_500),
    "decision_log_queue": _integer(1, 1_000_000),
    "metrics_public": _boolean,
    "metrics_dir": _optional_text,
    "log_level": _choice(*LOG_LEVELS),
    "log_format": _choice(*LOG_FORMATS),
    "access_log": _boolean,
    "gunicorn_config": _optional_text,
    "network_config": _optional_text,
    "workers": _integer(1, 64),
    "tls_cert": _optional_text,
    "tls_key": _optional_text,
    "notify_bus_url": _optional_text,
}


def _problems(settings: Settings) -> list[Problem]:
    problems = []
    if not _BIND.fullmatch(settings.bind):
        problems.append(
            Problem(variable("bind"), "invalid_setting", f"`{settings.bind}` is not `host:port`")
        )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        problems.append(
            Problem(variable("tls_key"), "invalid_setting", "set both the TLS certificate and key")
        )
    for name in ("tls_cert", "tls_key", "gunicorn_config", "network_config"):
        path = getattr(settings, name)
        if path is not None and not Path(path).is_file():
            problems.append(Problem(variable(name), "invalid_setting", f"`{path}` is not a file"))
    message = topic_prefix_problem(settings.device_topic_prefix)
    if message is not None:
        problems.append(Problem(variable("device_topic_prefix"), "invalid_setting", message))
    return problems
