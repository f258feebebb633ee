"""CAMARA error answers as `pbgm.network.NetworkError`s that say what to do.

CAMARA answers errors as `ErrorInfo` (`{"status", "code", "message"}`, Commonalities).
The operator's own `message` is not repeated (it is outside text and may be long);
its `code` is kept as `upstream_code`, with the HTTP status and the call's
`x-correlator`, so an operator's support desk can find the call.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from adapters.rest.retries import retry_after_s
from pbgm.network import NetworkError

_BY_CODE: dict[tuple[int, str], tuple[str, str]] = {
    (409, "CONFLICT"): (
        "session_conflict",
        "the device already has a QoS session for this flow: extend or delete it first",
    ),
    (409, "QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED"): (
        "session_extension_not_allowed",
        "the session is not AVAILABLE (requested or ended): only an active session can be "
        "extended; start a new one",
    ),
    (422, "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE"): (
        "qos_profile_not_applicable",
        "the operator does not offer this QoS profile now (inactive or deprecated): list "
        "the profiles and choose an active one",
    ),
    (400, "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE"): (
        "duration_out_of_range",
        "the operator refuses this duration for the QoS profile: stay within the profile's "
        "minimum and maximum duration",
    ),
    (404, "IDENTIFIER_NOT_FOUND"): (
        "identifier_not_found",
        "the operator does not know the device's identifier: check the phone number or "
        "addresses in the device registry",
    ),
    (422, "MISSING_IDENTIFIER"): (
        "missing_identifier",
        "the operator cannot identify the device: give it a phone number or an address",
    ),
    (422, "UNSUPPORTED_IDENTIFIER"): (
        "unsupported_identifier",
        "the operator supports none of the device's identifiers: add a phone number",
    ),
    (422, "UNNECESSARY_IDENTIFIER"): (
        "unnecessary_identifier",
        "the operator identifies the device from the access token: pbgm's client must use "
        "a 2-legged token",
    ),
    (422, "SERVICE_NOT_APPLICABLE"): (
        "service_not_applicable",
        "the operator does not offer this service for the device",
    ),
}

_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("network_rejected", "the operator refused the request as malformed; report this"),
    401: (
        "network_auth_failed",
        "the operator refused pbgm's access token: check the client id and secret of the "
        "network configuration",
    ),
    403: (
        "network_permission_denied",
        "the operator does not allow pbgm's client this operation: ask the operator to "
        "grant the scope",
    ),
    404: ("network_not_found", "the operator no longer knows this session or subscription"),
    409: ("session_conflict", "the operator reports a conflict with an existing resource"),
    422: ("network_rejected", "the operator cannot process the request for this device"),
}


def _error_info(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response, default: int = 1) -> int:
    """`Retry-After` in whole seconds, rounded up (RFC 9110: delay-seconds or an HTTP
    date, read as the REST peers' is); `default` when it is absent or unreadable."""
    seconds = retry_after_s(response.headers)
    return default if seconds is None else math.ceil(seconds)


def error_of(
    response: httpx.Response, correlator: str, *, assignment: bool = False
) -> NetworkError:
    """The `NetworkError` of an error answer."""
    status = response.status_code
    upstream = _error_info(response).get("code")
    code_text = upstream if isinstance(upstream, str) else None

    def made(message: str, code: str, wait: int | None = None) -> NetworkError:
        return NetworkError(
            message,
            code=code,
            upstream_status=status,
            upstream_code=code_text,
            correlator=correlator,
            retry_after=wait,
        )

    if status == 429:
        wait = retry_after(response)
        return made(
            f"the operator asks to slow down (429): retry in {wait} s", "network_busy", wait
        )
    if status >= 500:
        return made(f"the operator's API failed ({status}): retry later", "network_unavailable")
    code, message = _BY_CODE.get((status, code_text or "")) or _BY_STATUS.get(
        status, ("network_rejected", f"the operator refused the request ({status})")
    )
    if assignment and code == "session_conflict":
        code = "assignment_conflict"
        message = "the device already has a QoS profile assigned: revoke it first"
    return made(message, code)


def transport_error(error: Exception, correlator: str) -> NetworkError:
    """A failure with no answer: timeout, refused connection, TLS, token endpoint."""
    if isinstance(error, httpx.TimeoutException):
        return NetworkError(
            "the operator's API did not answer in time: retry later, or raise `timeout_s`",
            code="network_timeout",
            correlator=correlator,
        )
    if error.__class__.__module__.startswith("httpx_auth"):
        return NetworkError(
            "the operator's token endpoint refused pbgm's client credentials: check the "
            "client id and secret of the network configuration",
            code="network_auth_failed",
            correlator=correlator,
        )
    return NetworkError(
        f"the operator's API cannot be reached ({type(error).__name__}): check `base_url` "
        "and the network",
        code="network_unavailable",
        correlator=correlator,
    )
