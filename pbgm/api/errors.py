"""Errors as HTTP answers: the one place a pbgm error becomes a status.

Every error answer is `application/problem+json` (RFC 9457) with a stable `code`
(the error's, never a class name), `title`, `status`, `detail` and, for a
validation error, every problem. Statuses:

======  =========================================================================
400     malformed input: bad JSON, bad base64 id (`malformed_id`), id of another
        type or group (`id_type_mismatch`), unknown parameter values
401     no or bad bearer token (`WWW-Authenticate: Bearer ...`)
403     authenticated but not allowed (`insufficient_scope`, `permission_denied`)
404     not found, or not visible to the caller (the two look the same)
405     method not allowed
409     already exists
412     `If-Match` names a stale version (`version_conflict`)
413     body larger than `PBGM_MAX_CONTENT_LENGTH` (`request_too_large`)
415     body not `application/json` (`unsupported_media_type`)
422     the input was read but breaks the rules (`validation_failed`, all problems)
428     `If-Match` missing on an update (`precondition_required`)
429     rate limited (`rate_limited`, with `Retry-After`)
500     a bug (`internal_error`, with a correlation id) or bad configuration
502     the operator's network API failed or refused pbgm (`network_*`, device
        actions; with the call's `correlator`)
503     the repository cannot be reached (`store_unavailable`); the network API asks
        to slow down (`network_busy`, `Retry-After`) or is not configured
504     the operator's network API did not answer in time (`network_timeout`)
======  =========================================================================

An answer is bounded whatever the input: at most `MAX_PROBLEMS` problems are
listed (`problems_omitted` counts the rest) and texts that quote the input are
cut at `MAX_TEXT` characters (ending in `...`).

No stack trace, SQL or secret reaches an answer: 5xx answers carry a fixed
message, and the catch-all handler logs the exception's class and where it was
raised with the correlation id, never its message (which may quote SQL) nor the
request body.
"""

from __future__ import annotations

import logging
import re
import secrets
import traceback
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from pbgm.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnsupportedOperationError,
    ValidationError,
)
from pbgm.ops.logs import REQUEST_ID

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_PROBLEMS = 100
MAX_TEXT = 500


class RateLimitedError(PbgmError):
    """Too many requests from one client; `retry_after` seconds to wait."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PreconditionRequiredError(PbgmError):
    code = "precondition_required"


class UnsupportedMediaTypeError(InvalidInputError):
    code = "unsupported_media_type"


STATUS_BY_CODE = {
    "document_too_large": 413,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "insufficient_scope": 403,
    # -- the operator's network API (`pbgm.network.NETWORK_CODES`): its failures are
    #    gateway errors, its refusals of what the caller asked are the caller's
    "network_not_configured": 503,
    "network_unavailable": 502,
    "network_timeout": 504,
    "network_busy": 503,
    "network_auth_failed": 502,
    "network_permission_denied": 502,
    "network_rejected": 502,
    "network_not_found": 404,
    "session_conflict": 409,
    "session_extension_not_allowed": 409,
    "assignment_conflict": 409,
    "device_in_use": 409,
    "qos_profile_not_applicable": 422,
    "duration_out_of_range": 422,
    "identifier_not_found": 422,
    "unsupported_identifier": 422,
    "missing_identifier": 422,
    "unnecessary_identifier": 422,
    "service_not_applicable": 422,
}
"""Codes whose status differs from their class's."""

FIXED_DETAIL_BY_CODE = {
    "policies_loading": "the policies are still loading; retry later",
    "network_not_configured": "no network API is configured on this server: set "
    "`PBGM_NETWORK_CONFIG`",
    "network_unavailable": "the operator's network API failed or cannot be reached; retry later",
    "network_timeout": "the operator's network API did not answer in time; retry later",
    "network_busy": "the operator's network API asks to slow down; retry after `Retry-After`",
    "network_auth_failed": "the operator refused pbgm's credentials; an administrator must "
    "check the network configuration",
    "network_permission_denied": "the operator does not allow pbgm this operation; an "
    "administrator must ask the operator for the scope",
    "network_rejected": "the operator refused pbgm's request; quote the correlator when "
    "reporting this",
}
"""5xx answers about the network API: what to do, never the internal message."""
NETWORK_DETAILS = ("upstream_status", "upstream_code", "correlator", "retry_after")

STATUS_BY_CLASS: tuple[tuple[type[PbgmError], int], ...] = (
    (ValidationError, 422),
    (InvalidInputError, 400),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ConflictError, 412),
    (PreconditionRequiredError, 428),
    (RateLimitedError, 429),
    (UnsupportedOperationError, 501),
    (StoreUnavailableError, 503),
    (ConfigurationError, 500),
)

FIXED_DETAIL = {
    500: "the server could not answer; quote the correlation id when reporting this",
    501: "this operation is not supported by the server's repository",
    502: "an upstream service failed; retry later",
    503: "the policy repository is unavailable; retry later",
    504: "an upstream service did not answer in time; retry later",
}
"""5xx answers never repeat an internal message (it may name hosts or files)."""


def status_of(error: PbgmError) -> int:
    """The HTTP status of a pbgm error: by its code first, then by its class."""
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for kind, status in STATUS_BY_CLASS:
        if isinstance(error, kind):
            return status
    return 500


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    """An `application/problem+json` answer."""
    from http import HTTPStatus

    body = {
        "type": f"urn:pbgm:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    return response


def pbgm_error_response(error: PbgmError) -> Response:
    status = status_of(error)
    if status >= 500:
        correlation = _correlation_id()
        level = logging.ERROR if status == 500 else logging.WARNING  # 5xx but 500: a state
        log.log(level, "%s [%s]: %s", error.code, correlation, type(error).__name__)
        code = "internal_error" if status == 500 else error.code
        detail = FIXED_DETAIL_BY_CODE.get(code) or FIXED_DETAIL[status]
        upstream = {k: v for k, v in error.details.items() if k in NETWORK_DETAILS}
        answer = problem(status, code, detail, correlation_id=correlation, **upstream)
        if "retry_after" in upstream:
            answer.headers["Retry-After"] = str(upstream["retry_after"])
        return answer
    extra = {k: v for k, v in error.as_dict().items() if k not in ("code", "message")}
    if isinstance(extra.get("problems"), list):
        extra.update(_bounded_problems(extra["problems"]))
    response = problem(status, error.code, _cut(error.message), **extra)
    _add_headers(response, error)
    return response


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _bounded_problems(problems: list[dict[str, Any]]) -> dict[str, Any]:
    """The first `MAX_PROBLEMS` problems, texts cut, and how many more were found."""
    shown = [{k: _cut(v) if isinstance(v, str) else v for k, v in p.items()} for p in problems]
    bounded: dict[str, Any] = {"problems": shown[:MAX_PROBLEMS]}
    if len(problems) > MAX_PROBLEMS:
        bounded["problems_omitted"] = len(problems) - MAX_PROBLEMS
    return bounded


def _add_headers(response: Response, error: PbgmError) -> None:
    if isinstance(error, AuthenticationError):
        response.headers["WWW-Authenticate"] = bearer_challenge(error)
    elif error.code == "insufficient_scope":
        scope = error.details.get("required_scope", "")
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="pbgm", error="insufficient_scope", scope="{scope}"'
        )
    elif isinstance(error, RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after)


def bearer_challenge(error: AuthenticationError) -> str:
    """RFC 6750 §3: no error attribute when no token was sent at all."""
    if error.code == "token_missing":
        return 'Bearer realm="pbgm"'
    return 'Bearer realm="pbgm", error="invalid_token"'


def http_error_response(error: HTTPException) -> Response:
    """Werkzeug's errors (unknown route, wrong method, body too large) as problems."""
    status = error.code or 500
    if status >= 500:
        return problem(
            status, "internal_error", FIXED_DETAIL[500], correlation_id=_correlation_id()
        )
    code = _HTTP_CODES.get(status) or re.sub(r"\W+", "_", error.name.lower()).strip("_")
    detail = _HTTP_DETAILS.get(status, error.name.lower())
    response = problem(status, code, detail)
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_HTTP_DETAILS = {
    404: "no such resource",
    405: "this method is not allowed here",
    413: "the request body is too large",
    415: "send the body as `application/json`",
    429: "too many requests: retry later",
}


def unexpected_error_response(error: Exception) -> Response:
    """A bug: 500 with a correlation id; logged without message or request body."""
    correlation = _correlation_id()
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
    log.error(
        "internal error [%s] on %s %s: %s at %s",
        correlation,
        request.method,
        request.path,
        type(error).__name__,
        where,
    )
    return problem(500, "internal_error", FIXED_DETAIL[500], correlation_id=correlation)


def _correlation_id() -> str:
    """The request's id (`X-Request-Id`, also on every log line of the request), so
    that a reported correlation id finds its log lines; a random one outside a request."""
    return REQUEST_ID.get() or secrets.token_hex(8)


def register_error_handlers(app: Flask) -> None:
    """Route every error of `app` through this module."""
    app.register_error_handler(PbgmError, pbgm_error_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, unexpected_error_response)
