"""Key material for pbgm's access tokens: key types, JWKs and RFC 7638 thumbprints.

Everything here works on one key at a time and touches no disk: making a fresh
private key for an algorithm, the public JWK members of a public key, its
thumbprint (the key id pbgm uses everywhere), and the verification keys of a
published JWKS. `pbgm.auth.keys` keeps the key ring (a directory of such keys) and
re-exports these names; `pbgm.auth.tokens` signs and verifies with them.

Each key is bound to one algorithm (ES256 on P-256, RS256 on RSA-3072): the
algorithm is the key's own, never a token header's choice.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.api_jwk import PyJWKSet
from jwt.exceptions import PyJWTError

from pbgm.errors import InvalidInputError

ALGORITHMS = ("ES256", "RS256")
RSA_KEY_SIZE = 3072

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the one algorithm it may verify."""

    kid: str
    alg: str
    public_key: PublicKey


class SigningKey(NamedTuple):
    """The active key: unpacks as `(kid, private_key)`."""

    kid: str
    private_key: PrivateKey

    @property
    def alg(self) -> str:
        return "ES256" if isinstance(self.private_key, ec.EllipticCurvePrivateKey) else "RS256"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(public_key: PublicKey) -> dict[str, str]:
    """The public JWK members of `public_key` (no kid, alg or use)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        return {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {name: jwk[name] for name in ("e", "kty", "n")}


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members, sorted, no spaces."""
    canonical = json.dumps(public_jwk(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def new_private_key(alg: str) -> PrivateKey:
    """A fresh key for `alg`: P-256 for ES256, RSA-3072 for RS256."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    raise InvalidInputError(
        f"unsupported key algorithm `{alg}`: use one of {', '.join(ALGORITHMS)}"
    )


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """Verification keys from a published JWKS (e.g. fetched by a remote service).

    Only keys with a `kid`, `use` absent or `sig`, and an `alg` pbgm signs with are
    kept: the algorithm is the key's own, never a token's choice.
    """
    try:
        key_set = PyJWKSet.from_dict(dict(jwks))
    except PyJWTError as error:
        raise InvalidInputError("the JWKS holds no usable key") from error
    found = {}
    for jwk in key_set:
        if jwk.key_id and jwk.public_key_use in (None, "sig") and jwk.algorithm_name in ALGORITHMS:
            found[jwk.key_id] = VerificationKey(jwk.key_id, jwk.algorithm_name, jwk.key)
    return found
