"""The HTTP client of pbgm's REST peers (a data platform such as KIBERNet, a market).

One `RestClient` per peer endpoint, built from a plain mapping that a policy or a
configuration file carries (`RestEndpoint.from_mapping`):

```yaml
base_url: https://kibernet.example/api/v2
timeout_s: 5            # per read/write
connect_timeout_s: 2
retries: 2              # idempotent calls only
max_response_bytes: 1048576
ca_file: /etc/pbgm/kibernet-ca.pem      # optional: a private CA
auth:                                   # optional; one of the modes below
  mode: oauth2_client_credentials       # token fetched once, reused until it expires
  token_url: https://kibernet.example/oauth/token
  client_id: pbgm-voltage
  client_secret: {env: KIBERNET_CLIENT_SECRET}     # or {file: /run/secrets/kibernet}
  scope: read:measurements
# auth: {mode: api_key, header: X-API-Key, key: {env: KIBERNET_API_KEY}}
# auth: {mode: mtls, cert_file: /etc/pbgm/client.pem, key_file: {file: /etc/pbgm/client.key}}
```

A policy or a file only *names* a secret (`{env: NAME}` or `{file: PATH}`); the secret is
read when the client is built, from the service's environment or a file, and appears in
no log, error or repr. URLs are https (plain http only to a loopback address, a lab). An
endpoint made in code is checked by the same rules when a `RestClient` takes it
(`RestEndpoint.checked`).

Calls (`RestClient.call`): `timeout_s`, connection reuse, retries of idempotent calls
with jittered exponential back-off (tenacity) on a timeout, a refused connection, `5xx`
and `429` (honouring `Retry-After` up to `max_retry_after_s`), never on another `4xx`;
a `401` drops a cached OAuth2 token and the call is sent once more. Bodies are read up to
`max_response_bytes` and refused beyond it. Every failure is a `RestError` with a stable
`code` (`REST_CODES`).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_auth import HeaderApiKey, OAuth2, OAuth2ClientCredentials

from adapters.rest.retries import Retries, retry_after_s
from pbgm.errors import ConfigurationError, PbgmError, Problem
from pbgm.network import is_loopback
from pbgm.policy import config_data

__all__ = [
    "AUTH_MODES",
    "REST_CODES",
    "RestClient",
    "RestEndpoint",
    "RestError",
    "SecretRef",
]

log = logging.getLogger(__name__)

AUTH_MODES = ("none", "oauth2_client_credentials", "api_key", "mtls")

REST_CODES: Mapping[str, str] = MappingProxyType(
    {
        "peer_unavailable": "the peer could not be reached or failed (5xx)",
        "peer_timeout": "the peer did not answer in time",
        "peer_busy": "the peer asks to slow down (429): retry after `retry_after` seconds",
        "peer_auth_failed": "the peer refused pbgm's credentials (401/403)",
        "peer_rejected": "the peer refused the request (4xx other than 401/403/429)",
        "peer_not_found": "the peer does not know the resource (404)",
        "peer_bad_response": "the peer's answer is malformed, of the wrong type or too large",
    }
)
"""Every `RestError.code`, with what it means."""

RETRYABLE = frozenset({"peer_unavailable", "peer_timeout", "peer_busy"})


class RestError(PbgmError):
    """A REST peer failed or refused. `status` is the HTTP status of the peer's answer
    (when there was one), `retry_after` the seconds it asked to wait (`peer_busy`)."""

    code = "peer_error"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        peer: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        details: dict[str, Any] = {"peer": peer}
        if status is not None:
            details["status"] = status
        if retry_after is not None:
            details["retry_after"] = retry_after
        super().__init__(message, code=code, **details)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is: an environment variable (`{env: NAME}`) or a file
    (`{file: PATH}`). The reference is safe to show; the secret is read by `read()`."""

    env: str | None = None
    file: Path | None = None

    @classmethod
    def from_value(cls, value: object, where: str) -> SecretRef:
        if isinstance(value, Mapping) and set(value) == {"env"} and _name(value["env"]):
            return cls(env=str(value["env"]))
        if isinstance(value, Mapping) and set(value) == {"file"} and _text(value["file"]):
            return cls(file=Path(str(value["file"])))
        raise ConfigurationError(
            f"`{where}` must name where the secret is, as {{env: NAME}} or {{file: PATH}}; "
            "a secret itself is never written in a policy or a configuration file",
            problems=[Problem(where, "invalid_secret_reference", "a secret reference").as_dict()],
        )

    def read(self) -> str:
        if self.file is not None:
            try:
                value = self.file.read_text(encoding="utf-8").strip()
            except OSError:
                raise ConfigurationError(f"cannot read the secret file `{self.file}`") from None
            if not value:
                raise ConfigurationError(f"the secret file `{self.file}` is empty")
            return value
        value = os.environ.get(self.env or "", "")
        if not value:
            raise ConfigurationError(f"the environment variable `{self.env}` is not set")
        return value

    def __str__(self) -> str:
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"


def _name(value: object) -> bool:
    return isinstance(value, str) and value.replace("_", "A").isalnum() and len(value) < 256


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) < 4096


@dataclass(frozen=True)
class Auth:
    """How pbgm authenticates to a peer (`AUTH_MODES`)."""

    mode: str = "none"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    scope: str | None = None
    header: str = "X-API-Key"
    key: SecretRef | None = None
    cert_file: Path | None = None
    key_file: SecretRef | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "$.auth") -> Auth:
        mode = values.get("mode", "none")
        required = {
            "none": (),
            "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
            "api_key": ("key",),
            "mtls": ("cert_file", "key_file"),
        }
        if mode not in required:
            raise _invalid(f"{where}.mode", f"one of {', '.join(AUTH_MODES)}")
        allowed = {"mode", "header", "scope", *required[mode]}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise _invalid(f"{where}.{unknown[0]}", f"not a setting of auth mode `{mode}`")
        missing = [name for name in required[mode] if name not in values]
        if missing:
            raise _invalid(f"{where}.{missing[0]}", f"required by auth mode `{mode}`")
        secrets = {
            name: SecretRef.from_value(values[name], f"{where}.{name}")
            for name in ("client_secret", "key", "key_file")
            if name in values
        }
        for name in ("token_url", "client_id", "scope", "header", "cert_file"):
            if name in values and not _text(values[name]):
                raise _invalid(f"{where}.{name}", "a non-empty text")
        if "token_url" in values:
            _check_url(values["token_url"], f"{where}.token_url")
        return cls(
            mode=mode,
            token_url=values.get("token_url"),
            client_id=values.get("client_id"),
            scope=values.get("scope"),
            header=values.get("header", "X-API-Key"),
            cert_file=Path(values["cert_file"]) if "cert_file" in values else None,
            **secrets,
        )


@dataclass(frozen=True)
class RestEndpoint:
    """Where a peer is and how to call it; see the module's docstring."""

    base_url: str
    auth: Auth = field(default_factory=Auth)
    timeout_s: float = 5.0
    connect_timeout_s: float = 2.0
    retries: int = 2
    max_retry_after_s: float = 5.0
    max_response_bytes: int = 1 << 20
    ca_file: Path | None = None
    name: str = "peer"

    def checked(self, where: str = "$") -> RestEndpoint:
        """This endpoint, unchanged, if its configuration would be accepted; else the
        `ConfigurationError` reading it raises, naming the setting (`$.base_url`,
        `$.auth.token_url`). One made in code meets the rules of one read from a file:
        `RestClient` checks the endpoint it is given."""
        data = config_data(self)
        del data["name"]  # the endpoint's name is its caller's, not a setting
        RestEndpoint.from_mapping(data, name=self.name, where=where)
        return self

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, name: str = "peer", where: str = "$"
    ) -> RestEndpoint:
        known = {
            "base_url",
            "auth",
            "timeout_s",
            "connect_timeout_s",
            "retries",
            "max_retry_after_s",
            "max_response_bytes",
            "ca_file",
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise _invalid(f"{where}.{unknown[0]}", f"not an endpoint setting ({sorted(known)})")
        if "base_url" not in values:
            raise _invalid(f"{where}.base_url", "required: the peer's URL")
        _check_url(values["base_url"], f"{where}.base_url")
        numbers: dict[str, Any] = {}
        for setting, low, high, kind in (
            ("timeout_s", 0.01, 300.0, float),
            ("connect_timeout_s", 0.01, 60.0, float),
            ("retries", 0, 10, int),
            ("max_retry_after_s", 0.0, 300.0, float),
            ("max_response_bytes", 1, 64 << 20, int),
        ):
            if setting not in values:
                continue
            value = values[setting]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid(f"{where}.{setting}", f"a number from {low} to {high}")
            if kind is int and not isinstance(value, int):
                raise _invalid(f"{where}.{setting}", f"a whole number from {low} to {high}")
            if not low <= value <= high:
                raise _invalid(f"{where}.{setting}", f"from {low} to {high}, not {value}")
            numbers[setting] = value
        auth = values.get("auth", {"mode": "none"})
        if not isinstance(auth, Mapping):
            raise _invalid(f"{where}.auth", "a mapping with a `mode`")
        ca_file = values.get("ca_file")
        if ca_file is not None and not _text(ca_file):
            raise _invalid(f"{where}.ca_file", "a file path")
        return cls(
            base_url=str(values["base_url"]).rstrip("/"),
            auth=Auth.from_mapping(auth, f"{where}.auth"),
            ca_file=Path(ca_file) if ca_file is not None else None,
            name=name,
            **numbers,
        )


def _invalid(path: str, expected: str) -> ConfigurationError:
    return ConfigurationError(
        f"`{path}`: {expected}",
        problems=[Problem(path, "invalid_setting", expected).as_dict()],
    )


def _check_url(value: object, where: str) -> None:
    """An https URL with a host; plain http only to a loopback address (a lab), as for the
    operator's network API and the data-access policies: a peer's credentials and data
    never cross a network in the clear."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(where, "an https:// URL with a host")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise _invalid(where, "an https:// URL (plain http:// only to a loopback address)")
    if parts.username or parts.password:
        raise _invalid(where, "a URL without user or password (name a secret in `auth`)")


class RestClient:
    """The shared, thread-safe HTTP client of one peer endpoint."""

    def __init__(
        self, endpoint: RestEndpoint, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.endpoint = endpoint = endpoint.checked()
        auth = endpoint.auth
        verify: ssl.SSLContext | bool = True
        if endpoint.ca_file is not None or auth.mode == "mtls":
            verify = ssl.create_default_context(
                cafile=str(endpoint.ca_file) if endpoint.ca_file is not None else None
            )
            if auth.mode == "mtls":
                assert auth.cert_file is not None and auth.key_file is not None
                _load_client_certificate(verify, auth.cert_file, auth.key_file)
        timeout = httpx.Timeout(endpoint.timeout_s, connect=endpoint.connect_timeout_s)
        self._token_client: httpx.Client | None = None
        self._auth: httpx.Auth | None = None
        if auth.mode == "oauth2_client_credentials":
            assert auth.token_url and auth.client_id and auth.client_secret
            self._token_client = httpx.Client(timeout=timeout, verify=verify, transport=transport)
            self._auth = OAuth2ClientCredentials(
                auth.token_url,
                client_id=auth.client_id,
                client_secret=auth.client_secret.read(),
                client=self._token_client,
                timeout=max(1, int(endpoint.timeout_s)),
                **({"scope": auth.scope} if auth.scope else {}),
            )
        elif auth.mode == "api_key":
            assert auth.key is not None
            self._auth = HeaderApiKey(auth.key.read(), header_name=auth.header)
        self._retries = Retries(endpoint.retries, self._retryable, _asked)
        self.client = httpx.Client(
            base_url=endpoint.base_url,
            auth=self._auth,
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self.client.close()
        if self._token_client is not None:
            self._token_client.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        ok: Iterable[int] = (200,),
        idempotent: bool | None = None,
    ) -> tuple[int, bytes, httpx.Headers]:
        """The status, body (at most `max_response_bytes`) and headers of a successful
        call (its status in `ok`), else `RestError`. Reads (GET, HEAD) and PUT/DELETE
        are idempotent unless told; a POST is retried only with `idempotent=True`."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        expected = frozenset(ok)
        return self._retries.run(
            lambda: self._once(method, path, params, json_body, expected), idempotent=idempotent
        )

    def get_json(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON body of a GET (`peer_bad_response` when it is not JSON)."""
        _, body, _ = self.call("GET", path, params=params)
        return self.decode(body, path)

    def decode(self, body: bytes, path: str) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            raise self._error("peer_bad_response", f"{path}: the answer is not JSON") from None

    def _retryable(self, error: BaseException) -> bool:
        if not isinstance(error, RestError) or error.code not in RETRYABLE:
            return False
        return error.retry_after is None or error.retry_after <= self.endpoint.max_retry_after_s

    def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        ok: frozenset[int],
    ) -> tuple[int, bytes, httpx.Headers]:
        status, body, headers = self._send(method, path, params, json_body)
        if status == 401 and self.endpoint.auth.mode == "oauth2_client_credentials":
            OAuth2.token_cache.clear()  # the peer refused the cached token: fetch anew
            status, body, headers = self._send(method, path, params, json_body)
        if status in ok:
            return status, body, headers
        code, text = _failure(status)
        retry_after = retry_after_s(headers) if status in (429, 503) else None
        log.info("%s %s %s answered %s", self.endpoint.name, method, path, status)
        raise self._error(code, f"{method} {path}: {text}", status=status, retry_after=retry_after)

    def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, json_body: Any
    ) -> tuple[int, bytes, httpx.Headers]:
        limit = self.endpoint.max_response_bytes
        try:
            with self.client.stream(method, path, params=params, json=json_body) as response:
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit():
                    if int(declared) > limit:
                        raise self._too_large(method, path)
                    if response.headers.get("Content-Encoding") is None:
                        # as declared, so at most the limit (h11 refuses a longer body)
                        return response.status_code, response.read(), response.headers
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large(method, path)
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks), response.headers
        except httpx.TimeoutException:
            raise self._error("peer_timeout", f"{method} {path}: no answer in time") from None
        except httpx.HTTPError as error:  # includes httpx_auth's token errors
            text = type(error).__name__
            code = "peer_auth_failed" if "httpx_auth" in type(error).__module__ else None
            raise self._error(code or "peer_unavailable", f"{method} {path}: {text}") from None

    def _too_large(self, method: str, path: str) -> RestError:
        limit = self.endpoint.max_response_bytes
        return self._error(
            "peer_bad_response", f"{method} {path}: the answer is larger than {limit} bytes"
        )

    def _error(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> RestError:
        return RestError(
            f"{self.endpoint.name}: {message} ({REST_CODES[code]})",
            code=code,
            peer=self.endpoint.name,
            status=status,
            retry_after=retry_after,
        )


def _asked(error: BaseException) -> float | None:
    """The wait a peer asked for (`Retry-After`), carried by its error."""
    return error.retry_after if isinstance(error, RestError) else None


def _failure(status: int) -> tuple[str, str]:
    if status >= 500:
        return "peer_unavailable", f"the peer failed ({status})"
    if status == 429:
        return "peer_busy", "the peer asks to slow down (429)"
    if status in (401, 403):
        return "peer_auth_failed", f"the peer refused pbgm's credentials ({status})"
    if status == 404:
        return "peer_not_found", "the peer does not know the resource (404)"
    return "peer_rejected", f"the peer refused the request ({status})"


def _load_client_certificate(context: ssl.SSLContext, cert_file: Path, key: SecretRef) -> None:
    """The client certificate of mutual TLS; the key file is named by a secret reference
    (`{file: PATH}`; `{env: NAME}` names a variable that holds the key file's path)."""
    key_path = key.file if key.file is not None else Path(key.read())
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_path))
    except (OSError, ssl.SSLError):
        raise ConfigurationError(
            f"cannot load the client certificate `{cert_file}` with its key: check both files"
        ) from None
