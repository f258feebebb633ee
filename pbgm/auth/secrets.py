"""Hashing of service-account secrets and user passwords (stdlib only).

A hash reads `scrypt$n$r$p$salt$hash` with URL-safe base64 salt and hash, so the
cost parameters travel with the hash and can be raised later without breaking old
entries. Verification never raises: a malformed or foreign hash simply does not
match, which keeps authentication fail-closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32

# Bounds on parameters read back from a stored hash, so that a tampered entry
# cannot make a login attempt burn unbounded CPU or memory.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 256 * 1024 * 1024


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=length
    )


def hash_secret(secret: str) -> str:
    """Hash `secret` with scrypt and a fresh random 16-byte salt."""
    salt = os.urandom(SALT_BYTES)
    derived = _derive(secret, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64encode(salt)}${_b64encode(derived)}"


def _parse(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = hashed.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt, expected = _b64decode(parts[4]), _b64decode(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    if not salt or not 16 <= len(expected) <= 64:
        return None
    return n, r, p, salt, expected


def is_secret_hash(text: object) -> bool:
    """True if `text` has the shape of a hash made by `hash_secret`.

    Stores use it to refuse a plain secret handed over where a hash belongs.
    """
    return isinstance(text, str) and _parse(text) is not None


def verify_secret(secret: str, hashed: str) -> bool:
    """True if `secret` matches `hashed`; False for a wrong secret or a malformed hash."""
    if not isinstance(secret, str) or not isinstance(hashed, str):
        return False
    parsed = _parse(hashed)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    try:
        derived = _derive(secret, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(derived, expected)


def generate_secret() -> str:
    """A new random secret (256 bits, URL-safe) for a service account."""
    return secrets.token_urlsafe(32)
