"""Broker passwords for pbgm's principals: derived, not stored.

Mosquitto's dynamic-security plugin authenticates a client by a password it keeps
hashed. pbgm's own secrets are hashed too and cannot be handed on, so each principal's
broker password is derived from one broker secret held by the operator of the
broker sync (`password_secret_file`):

    password = base64url(HMAC-SHA256(secret, "pbgm-broker-password/v1:" + principal))

43 characters, 256 bits: a password nobody chooses and nobody has to store. The
principal receives it once from an operator (`pbgm-broker password <principal>`) and
keeps it as its `password_file`; the sync sets it on the broker. Rotating the secret
rotates every password at the next sync (the broker compares a fingerprint, not the
password). Deleting or disabling the principal in pbgm removes or disables its client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from pbgm.errors import ConfigurationError

CONTEXT = b"pbgm-broker-password/v1:"
MIN_SECRET_BYTES = 32


def broker_password(secret: bytes, principal: str) -> str:
    """The broker password of `principal` under `secret`."""
    digest = hmac.new(secret, CONTEXT + principal.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def fingerprint(password: str) -> str:
    """What the broker may keep to tell that a password changed (not the password)."""
    return hashlib.sha256(b"pbgm-broker-fingerprint:" + password.encode()).hexdigest()[:24]


def read_secret(path: Path) -> bytes:
    """The broker secret from its file (at least 32 bytes, e.g. `openssl rand -hex 32`)."""
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the broker secret `{path}`: {error.strerror or error}"
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"the broker secret `{path}` must hold at least {MIN_SECRET_BYTES} bytes"
        )
    return secret
