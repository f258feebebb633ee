"""Why a connection to the broker failed, as a `BusConnectionError` with a stable code.

- `mqtt_auth_failed`: the broker refused the user name or password, or the client is not
  authorised (CONNACK 4/5 in 3.1.1; 0x86, 0x87, 0x8C in 5). Fatal: no retry.
- `mqtt_tls_failed`: the TLS handshake failed (unknown CA, expired certificate,
  hostname mismatch, the broker rejecting our client certificate). Fatal: no retry.
- `mqtt_refused`: the broker refused the connection for a reason retrying cannot fix
  (protocol version, client id, banned, ...). Fatal: no retry.
- `mqtt_unreachable`: no TCP connection, a timeout, or a broker that is busy or
  restarting. Retried with back-off and jitter; raised by `connect` at its timeout.
"""

from __future__ import annotations

import ssl

from pbgm.bus import BusConnectionError

# MQTT 5 CONNACK reason codes (paho maps 3.1.1 return codes onto these).
AUTH_REASONS = frozenset({0x86, 0x87, 0x8C})
TRANSIENT_REASONS = frozenset({0x88, 0x89, 0x97, 0x9F})


class BrokerAuthError(BusConnectionError):
    code = "mqtt_auth_failed"


class BrokerTlsError(BusConnectionError):
    code = "mqtt_tls_failed"


class BrokerRefusedError(BusConnectionError):
    code = "mqtt_refused"


class BrokerUnreachableError(BusConnectionError):
    code = "mqtt_unreachable"


def refusal(address: str, reason_value: int, reason_name: str) -> BusConnectionError:
    """The error for a CONNACK that refused us (transient ones are `mqtt_unreachable`)."""
    if reason_value in AUTH_REASONS:
        return BrokerAuthError(
            f"broker `{address}` refused the credentials: {reason_name.lower()}",
            reason=reason_name,
        )
    if reason_value in TRANSIENT_REASONS:
        return BrokerUnreachableError(
            f"broker `{address}` is not available: {reason_name.lower()}", reason=reason_name
        )
    return BrokerRefusedError(
        f"broker `{address}` refused the connection: {reason_name.lower()}", reason=reason_name
    )


def connect_failure(address: str, error: BaseException | None) -> BusConnectionError:
    """The error for a failed TCP or TLS connection attempt."""
    if is_tls_failure(error):
        return BrokerTlsError(f"TLS with broker `{address}` failed: {_tls_reason(error)}")
    detail = _plain(error) if error is not None else "connection failed"
    return BrokerUnreachableError(f"broker `{address}` is not reachable: {detail}")


def is_tls_failure(error: BaseException | None) -> bool:
    """A certificate or handshake problem that retrying will not fix.

    A TLS connection cut in the middle (EOF, zero return) looks like a broker going
    away, so it is not one of them.
    """
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return False
    return isinstance(error, ssl.SSLError | ssl.CertificateError)


def _tls_reason(error: BaseException | None) -> str:
    verify_message = getattr(error, "verify_message", None)
    if verify_message:
        return str(verify_message).lower().rstrip(".")
    reason = getattr(error, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    return _plain(error)


def _plain(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = getattr(error, "strerror", None) or str(error) or "connection failed"
    return str(text).lower().rstrip(".")
