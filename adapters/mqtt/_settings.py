"""How to reach an MQTT broker: `MqttSettings`, read from a config mapping.

Keys (all optional but `host`; unknown keys are refused so a typo does not pass silently):

| key | default | meaning |
|---|---|---|
| `host`, `port` | -, 1883 (TLS: 8883) | the broker, or `url: mqtt://host:port` (`mqtts://`) |
| `transport` | `tcp` | only `tcp` is supported |
| `protocol` | `5` | `5` or `3.1.1` |
| `client_id` | random `pbgm-...` | required for a persistent session |
| `persistent_session` | false | v5: no clean start, session kept `session_expiry` s; |
| | | 3.1.1: clean session off |
| `session_expiry` | 3600 | v5 session expiry interval, seconds |
| `keepalive` | 60 | seconds |
| `connect_timeout` | 10 | seconds for one TCP/TLS attempt, and for `open_mqtt_bus` to connect |
| `tls` | true when a CA or a client certificate is named | TLS on |
| `ca_file`, `cert_file`, `key_file` | system CAs, none, none | PEM files |
| `check_hostname` | true | check the broker's certificate names the host |
| `username`, `password` / `password_file` | none | the password is never logged nor shown in repr |
| `plaintext_password` | false | allow a password without TLS to a broker on another host |
| | | (refused otherwise: it would cross the network in the clear) |
| `min_delay`, `max_delay` | 1, 60 | reconnect back-off bounds, seconds (exponential, with jitter) |
| `queue_size` | 10000 | publishes kept while disconnected |
| `queue_policy` | `drop_oldest` | or `drop_newest`, or `raise` when the queue is full |
| `inbound_queue_size` | 10000 | received messages waiting for the handler thread |
| `ack_after_handling` | true | acknowledge a QoS 1/2 message once its handlers ran (a |
| | | killed process gets again what it had not handled); false: on receipt |
| `hold_unmatched_s` | 10 | after each connection, how long a message that matches no |
| | | subscription yet is held for one made meanwhile (a persistent |
| | | session delivers at once, often before the process subscribes) |
| `max_inflight` | 0 | QoS 1/2 publishes awaiting acknowledgement; 0: no limit (paho's |
| | | fast path; a window makes paho scan it on every acknowledgement). Set |
| | | it to the broker's Receive Maximum for a broker that enforces one |
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pbgm.errors import ConfigurationError, Problem, ValidationError
from pbgm.network import is_loopback
from pbgm.policy import config_data

PROTOCOLS = {"5": "5", "5.0": "5", "3.1.1": "3.1.1", "311": "3.1.1", "4": "3.1.1"}
QUEUE_POLICIES = ("drop_oldest", "drop_newest", "raise")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Everything `MqttBus` needs to connect; see the module docstring for the keys."""

    host: str
    port: int = 1883
    transport: str = "tcp"
    protocol: str = "5"
    client_id: str = ""
    persistent_session: bool = False
    session_expiry: int = 3600
    keepalive: int = 60
    connect_timeout: float = 10.0
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    plaintext_password: bool = False
    min_delay: float = 1.0
    max_delay: float = 60.0
    queue_size: int = 10000
    queue_policy: str = "drop_oldest"
    inbound_queue_size: int = 10000
    max_inflight: int = 0
    hold_unmatched_s: float = 10.0
    ack_after_handling: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> MqttSettings:
        """Read and check a config mapping; every problem is listed at once."""
        if not isinstance(config, Mapping):
            raise ConfigurationError("the MQTT configuration must be a mapping")
        reader = _Reader(config)
        settings = reader.settings()
        if reader.problems:
            raise ValidationError(reader.problems, _summary(reader.problems))
        return settings

    def checked(self) -> MqttSettings:
        """These settings read back through `from_mapping` (the same `_Reader`, so the same
        rules), for settings made in code: a value a config would be refused for raises
        the same `ValidationError` naming the key (`$.port`). An empty `client_id` stays
        empty (and a persistent session needs one). Returns `self` when the reading
        changes nothing, as for every `from_mapping` result; else the reading (a
        `protocol` of `5.0` is `5`, a None is the default), which is what to use."""
        plain = config_data(self)
        if plain.get("client_id") == "":
            del plain["client_id"]
        reading = MqttSettings.from_mapping(plain)
        if self.client_id == "":
            reading = replace(reading, client_id="")
        return self if reading == self else reading

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: TLS 1.2 or later, the CA (or the system's), the optional
        client certificate, hostname checking as configured."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _summary(problems: list[Problem]) -> str:
    first = problems[0]
    return f"invalid MQTT configuration: {first.message} (at `{first.path}`)"


_KNOWN = frozenset(MqttSettings.__dataclass_fields__) | {"url", "password_file"}


class _Reader:
    """Collects the problems of a config mapping while it builds the settings."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(Problem(f"$.{key}", "invalid_setting", message))

    def settings(self) -> MqttSettings:
        for key in sorted(set(self.config) - _KNOWN, key=str):
            self.fail(str(key), f"unknown setting `{key}`")
        host, port, url_tls = self._address()
        tls = self._bool("tls", url_tls or bool(self._get("ca_file") or self._get("cert_file")))
        values: dict[str, Any] = {
            "host": host,
            "port": self._int("port", port if port else (8883 if tls else 1883), 1, 65535),
            "transport": self._choice("transport", "tcp", ("tcp",)),
            "protocol": self._protocol(),
            "persistent_session": self._bool("persistent_session", False),
            "session_expiry": self._int("session_expiry", 3600, 0, 0xFFFFFFFF),
            "keepalive": self._int("keepalive", 60, 0, 65535),
            "connect_timeout": self._number("connect_timeout", 10.0, 0.1),
            "tls": tls,
            "ca_file": self._file("ca_file"),
            "cert_file": self._file("cert_file"),
            "key_file": self._file("key_file"),
            "check_hostname": self._bool("check_hostname", True),
            "username": self._text("username"),
            "password": self._password(),
            "plaintext_password": self._bool("plaintext_password", False),
            "min_delay": self._number("min_delay", 1.0, 0.01),
            "max_delay": self._number("max_delay", 60.0, 0.01),
            "queue_size": self._int("queue_size", 10000, 1, 10_000_000),
            "queue_policy": self._choice("queue_policy", "drop_oldest", QUEUE_POLICIES),
            "inbound_queue_size": self._int("inbound_queue_size", 10000, 1, 10_000_000),
            "max_inflight": self._int("max_inflight", 0, 0, 65535),
            "hold_unmatched_s": self._hold(),
            "ack_after_handling": self._bool("ack_after_handling", True),
        }
        values["client_id"] = self._client_id(values["persistent_session"])
        self._cross_checks(values)
        return MqttSettings(**values)

    def _cross_checks(self, values: dict[str, Any]) -> None:
        if values["min_delay"] > values["max_delay"]:
            self.fail("min_delay", "`min_delay` must not exceed `max_delay`")
        if values["key_file"] and not values["cert_file"]:
            self.fail("key_file", "`key_file` needs `cert_file`")
        if values["password"] is not None and values["username"] is None:
            self.fail("password", "a password needs a `username`")
        elif (
            values["password"] is not None
            and not values["tls"]
            and not values["plaintext_password"]
            and not is_loopback(values["host"])
        ):
            self.fail(
                "password",
                f"the password would cross the network to `{values['host']}` in the clear:"
                " turn `tls` on (or use `mqtts://`), or set `plaintext_password: true` for a"
                " network you trust",
            )
        if (values["ca_file"] or values["cert_file"]) and not values["tls"]:
            self.fail("tls", "certificates are named but `tls` is false")

    def _get(self, key: str) -> Any:
        return self.config.get(key)

    def _address(self) -> tuple[str, int | None, bool]:
        url = self._get("url")
        if url is None:
            host = self._get("host")
            if not isinstance(host, str) or not host:
                self.fail("host", "`host` (or `url`) must name the broker")
                return "", None, False
            return host, None, False
        if "host" in self.config:
            self.fail("url", "give either `url` or `host`, not both")
        return self._parse_url(url)

    def _parse_url(self, url: Any) -> tuple[str, int | None, bool]:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            self.fail("url", f"`{url}` is not an `mqtt://host:port` or `mqtts://` address")
            return "", None, False
        if parts.username or parts.password:
            self.fail("url", "put credentials in `username` and `password_file`, not in the url")
        try:
            port = parts.port
        except ValueError:
            self.fail("url", f"`{url}` has an invalid port")
            port = None
        return parts.hostname, port, parts.scheme == "mqtts"

    def _typed(self, key: str, default: Any, check: Callable[[Any], bool], what: str) -> Any:
        value = self._get(key)
        if value is None:
            return default
        if not check(value):
            self.fail(key, f"`{key}` must be {what}")
            return default
        return value

    def _bool(self, key: str, default: bool) -> bool:
        return bool(self._typed(key, default, lambda v: isinstance(v, bool), "true or false"))

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        def check(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high

        return int(self._typed(key, default, check, f"an integer from {low} to {high}"))

    def _number(self, key: str, default: float, low: float) -> float:
        def check(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and v >= low

        return float(self._typed(key, default, check, f"a number of at least {low}"))

    def _hold(self) -> float:
        value = self._number("hold_unmatched_s", 10.0, 0.0)
        if value > 3600:
            self.fail("hold_unmatched_s", "`hold_unmatched_s` must be at most 3600")
        return value

    def _choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        shown = ", ".join(f"`{c}`" for c in choices)
        return str(self._typed(key, default, lambda v: v in choices, f"one of {shown}"))

    def _text(self, key: str) -> str | None:
        value = self._typed(key, None, lambda v: isinstance(v, str) and v != "", "a string")
        return None if value is None else str(value)

    def _file(self, key: str) -> str | None:
        path = self._text(key)
        if path is not None and not Path(path).is_file():
            self.fail(key, f"`{key}` names `{path}`, which is not a readable file")
        return path

    def _protocol(self) -> str:
        value = self._get("protocol")
        if value is None:
            return "5"
        protocol = PROTOCOLS.get(str(value))
        if protocol is None:
            self.fail("protocol", f"protocol `{value}` must be `5` or `3.1.1`")
            return "5"
        return protocol

    def _client_id(self, persistent: bool) -> str:
        client_id = self._text("client_id")
        if client_id is None:
            if persistent:
                self.fail("client_id", "a persistent session needs a fixed `client_id`")
            return f"pbgm-{secrets.token_hex(6)}"
        if len(client_id.encode("utf-8")) > 65535:
            self.fail("client_id", "`client_id` is at most 65535 bytes")
        return client_id

    def _password(self) -> str | None:
        inline = self._get("password")
        path = self._get("password_file")
        if inline is not None and path is not None:
            self.fail("password", "give either `password` or `password_file`, not both")
            return None
        if inline is not None:
            if not isinstance(inline, str):
                self.fail("password", "`password` must be a string")
                return None
            return inline
        if path is None:
            return None
        return self._read_password(path)

    def _read_password(self, path: Any) -> str | None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, TypeError, ValueError):
            self.fail("password_file", f"cannot read the password file `{path}`")
            return None
        return text.rstrip("\r\n")
