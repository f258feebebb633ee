"""The loader's HTTP client: a client-credentials token and conditional policy fetches.

Standard library only (`http.client`, `ssl`): a timeout on every call, TLS
verified against the system's CAs or the configured `ca_file`, no redirects
followed (a bearer token never travels to another host), answers read up to a
size limit and parsed by `pbgm.policy.documents`. The token is fetched on first use
and again shortly before it expires, or when the server answers `401`.

Errors: `ServerUnavailableError` when the server cannot be used at all (no
connection, TLS failure, `5xx`, `429`); `AuthenticationError` when the
credentials are refused; otherwise the `PbgmError` matching the server's
problem answer (not found, permission denied, bad request), carrying its code.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from pbgm.access import encode_id
from pbgm.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    PermissionDeniedError,
)
from pbgm.loader._config import LoaderConfig, PolicySpec, validated_config
from pbgm.policy import load_document

MAX_ANSWER_BYTES = 8 * 1_048_576
TOKEN_PATH = "/api/v1/token"  # noqa: S105  (a URL path, not a secret)
POLICY_PATH = "/api/v1/policy"
USER_AGENT = "pbgm-loader/1"


class ServerUnavailableError(PbgmError):
    """The pbgm server cannot be used now (down, unreachable, overloaded, TLS failed)."""

    code = "server_unavailable"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch: the answer's body (judged by the loader), empty on a `304`."""

    not_modified: bool
    etag: str | None
    body: bytes = b""


Send = Callable[[str, str, Mapping[str, str], bytes | None], Answer]


class PolicyClient:
    """Fetches policies from one pbgm server on behalf of one service account.

    The configuration is checked first (`validated_config`), as `PolicyLoader` checks it.
    """

    def __init__(
        self,
        config: LoaderConfig,
        *,
        clock: Callable[[], datetime],
        send: Send | None = None,
        secret: Callable[[], str] | None = None,
    ) -> None:
        self.config = config = validated_config(config)
        self._clock = clock
        self._send = send or HttpTransport(config).send
        self._secret = secret or config.read_secret
        self._token: str | None = None
        self._renew_at: datetime | None = None

    def fetch(self, spec: PolicySpec, etag: str | None) -> Fetched:
        """The policy named by `spec`; `If-None-Match: etag` when a copy is held."""
        path = f"{POLICY_PATH}?{urlencode(_wire_query(spec))}"
        headers = {"If-None-Match": etag} if etag else {}
        answer = self._authorised("GET", path, headers)
        if answer.status == 304:
            return Fetched(True, answer.headers.get("etag") or etag)
        if answer.status != 200:
            raise _error_of(answer)
        return Fetched(False, answer.headers.get("etag"), answer.body)

    def _authorised(self, method: str, path: str, headers: Mapping[str, str]) -> Answer:
        for attempt in (1, 2):
            sent = {**headers, "Authorization": f"Bearer {self._bearer()}"}
            answer = self._send(method, path, sent, None)
            if answer.status != 401 or attempt == 2:
                return answer
            self._token = None  # revoked, expired early or keys rotated: one new token
        raise AssertionError("unreachable")

    def _bearer(self) -> str:
        now = self._clock()
        if self._token is None or self._renew_at is None or now >= self._renew_at:
            self._token, lifetime = self._new_token()
            margin = min(60.0, lifetime / 4)
            self._renew_at = now + timedelta(seconds=lifetime - margin)
        return self._token

    def _new_token(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self.config.scope:
            form["scope"] = self.config.scope
        pair = f"{quote_plus(self.config.client_id)}:{quote_plus(self._secret())}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        answer = self._send("POST", TOKEN_PATH, headers, urlencode(form).encode())
        if answer.status in (400, 401):
            reason = _oauth_error(answer.body)
            raise AuthenticationError(
                f"the server refused a token to client `{self.config.client_id}`: {reason}",
                code="token_refused",
            )
        if answer.status != 200:
            raise _error_of(answer)
        return _token_of(answer_json(answer.body))


def _wire_query(spec: PolicySpec) -> dict[str, str]:
    if spec.policy_id is not None:
        return {"policy_id": encode_id(spec.policy_id), "policy_group": str(spec.policy_group)}
    return {"asset_id": encode_id(str(spec.asset_id)), "policy_type": str(spec.policy_type)}


def _token_of(data: Any) -> tuple[str, float]:
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise InvalidInputError("the token answer holds no `access_token`", code="bad_answer")
    lifetime = data.get("expires_in", 60)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = 60
    return token, float(lifetime)


def _oauth_error(body: bytes) -> str:
    try:
        data = json.loads(body[:65536])
    except (ValueError, UnicodeDecodeError):
        return "invalid_client"
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) and error.isidentifier() else "invalid_client"


def answer_json(body: bytes) -> Any:
    """A JSON answer, strictly parsed; `bad_answer` when it is not JSON."""
    try:
        return load_document(body, source="server answer", max_bytes=MAX_ANSWER_BYTES)
    except InvalidInputError as error:
        raise InvalidInputError(error.message, code="bad_answer") from None


def _error_of(answer: Answer) -> PbgmError:
    """The error a non-success answer stands for; the server's code when it sent one."""
    status = answer.status
    code, detail = _problem(answer.body)
    if status >= 500 or status == 429:
        return ServerUnavailableError(f"the server answered {status}", code="server_unavailable")
    if status == 401:
        return AuthenticationError("the server refused the access token", code="unauthenticated")
    if status == 404:
        return NotFoundError("the server has no such policy, or this client may not read it")
    if status == 403:
        return PermissionDeniedError(
            f"the server refused access: {detail or 'forbidden'}", code=code or "permission_denied"
        )
    if status == 400:
        message = f"the server refused the request: {detail}"
        return InvalidInputError(message, code=code or "bad_request")
    return PbgmError(f"unexpected answer {status} from the server", code="bad_answer")


def _problem(body: bytes) -> tuple[str | None, str]:
    try:
        data = json.loads(body[:65536])
    except (ValueError, UnicodeDecodeError):
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    code = data.get("code") if isinstance(data.get("code"), str) else None
    detail = data.get("detail") or data.get("message") or data.get("title") or ""
    return code, str(detail)[:300]


def _tls_reason(error: ssl.SSLError) -> str:
    reason = getattr(error, "verify_message", None) or error.reason or "handshake failed"
    return str(reason).lower()


class HttpTransport:
    """One request per connection with `http.client`; TLS verified, no redirects."""

    def __init__(self, config: LoaderConfig) -> None:
        parts = urlsplit(config.server_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = config.timeout_s
        self.context: ssl.SSLContext | None = None
        if self.https:
            cafile = str(config.ca_file) if config.ca_file else None
            self.context = ssl.create_default_context(cafile=cafile)

    def send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        connection = self._connection()
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        try:
            connection.request(method, self.prefix + path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES + 1)
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        except ssl.SSLError as error:
            raise ServerUnavailableError(
                f"TLS with `{self.host}` failed: {_tls_reason(error)}",
                code="server_tls_failed",
            ) from None
        except TimeoutError:
            raise ServerUnavailableError(
                f"`{self.host}` did not answer within {self.timeout:g} s",
                code="server_unreachable",
            ) from None
        except (OSError, http.client.HTTPException) as error:
            reason = (getattr(error, "strerror", None) or "the connection failed").lower()
            raise ServerUnavailableError(
                f"cannot reach `{self.host}`: {reason}", code="server_unreachable"
            ) from None
        finally:
            connection.close()
        if len(data) > MAX_ANSWER_BYTES:
            raise InvalidInputError("the server's answer is too large", code="bad_answer")
        return Answer(response.status, answer_headers, data)

    def _connection(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
