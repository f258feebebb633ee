"""Authentication: where a caller is authenticated.

- `secrets`: scrypt hashes of service-account secrets and user passwords.
- `keys`: the signing key ring (a directory of keys, rotation, the published JWKS);
  `jwk`: one key's JWK, thumbprint and the keys of a JWKS.
- `tokens`: short-lived JWT access tokens, their scopes, issued and verified with
  pinned algorithms.

What a caller may do once authenticated is decided by the Access Point (`pbgm.access`)
with pbgm's own PDP, not here.
"""

from __future__ import annotations

from pbgm.auth.keys import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_RETIRE_AFTER,
    KeyInfo,
    KeyRing,
    VerificationKey,
    keys_from_jwks,
    thumbprint,
)
from pbgm.auth.secrets import generate_secret, hash_secret, is_secret_hash, verify_secret
from pbgm.auth.tokens import (
    SCOPE_ADMIN,
    SCOPE_DECISIONS_WRITE,
    SCOPE_DEVICES_ADMIN,
    SCOPE_DEVICES_READ,
    SCOPE_DEVICES_WRITE,
    SCOPE_FLEXOFFERS_WRITE,
    SCOPE_METRICS_READ,
    SCOPE_POLICIES_READ,
    SCOPES,
    AccountCheck,
    Claims,
    TokenIssuer,
    TokenVerifier,
    bind_to_account,
    parse_scope,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_RETIRE_AFTER",
    "SCOPES",
    "SCOPE_ADMIN",
    "SCOPE_DECISIONS_WRITE",
    "SCOPE_DEVICES_ADMIN",
    "SCOPE_DEVICES_READ",
    "SCOPE_DEVICES_WRITE",
    "SCOPE_FLEXOFFERS_WRITE",
    "SCOPE_METRICS_READ",
    "SCOPE_POLICIES_READ",
    "AccountCheck",
    "Claims",
    "KeyInfo",
    "KeyRing",
    "TokenIssuer",
    "TokenVerifier",
    "VerificationKey",
    "bind_to_account",
    "generate_secret",
    "hash_secret",
    "is_secret_hash",
    "keys_from_jwks",
    "parse_scope",
    "thumbprint",
    "verify_secret",
]
