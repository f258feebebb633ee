"""Access tokens: short-lived JWTs signed by the key ring, and their verification.

A token is issued to a service account by the token endpoint (OAuth2 client
credentials) and carries `iss`, `aud`, `sub` (the client id), `scope`
(space-separated), `iat`, `nbf`, `exp`, a random `jti` and `gen`, the token
generation of the account instance it was issued to; its header names the signing
key (`kid`).

A token is bound to that instance (`bind_to_account`): it is refused once the
account is gone, disabled, or has another generation (deleted and re-created,
disabled and enabled again), and it carries only the scopes the account still
holds. ES256 signatures are issued and accepted only in their canonical low-S
form (s <= n/2): of the two valid signatures of one token, only one is accepted.

Verification trusts nothing in the token before the signature checks out: the
`kid` picks a key, the key's own algorithm is the only one accepted (so `alg:
none`, HS256 signed with a public key as the secret, or any algorithm switch
fails), and `exp`, `iat`, `iss`, `aud`, `sub` are required. Times are checked
against the injected clock with a small leeway. Every failure is an
`AuthenticationError` with a stable code; no message ever contains the token.

Scopes the REST API knows (a service account holds some of them):

==================  ===========================================================
`policies:read`     fetch and list the policies the account has a grant on
`decisions:write`   ask the PDP for decisions (`POST /api/v1/decisions`)
`flexoffers:write`  validate FlexOffers and schedules (`POST /api/v1/flexoffers`)
`admin`             the administration endpoints (still subject to grants)
`metrics:read`      scrape `/metrics` (Prometheus), nothing else
==================  ===========================================================
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from pbgm.auth.keys import ALGORITHMS, SigningKey, VerificationKey
from pbgm.errors import AuthenticationError, ConfigurationError, InvalidInputError
from pbgm.model import Clock, utc_now

SCOPE_POLICIES_READ = "policies:read"
SCOPE_DECISIONS_WRITE = "decisions:write"
SCOPE_FLEXOFFERS_WRITE = "flexoffers:write"
SCOPE_ADMIN = "admin"
SCOPE_METRICS_READ = "metrics:read"
SCOPE_DEVICES_READ = "devices:read"  # the device registry, groups and connectivity
SCOPE_DEVICES_WRITE = "devices:write"  # device actions (each also decided by policy)
SCOPE_DEVICES_ADMIN = "devices:admin"  # registry and group membership changes
SCOPES = frozenset(
    {
        SCOPE_POLICIES_READ,
        SCOPE_DECISIONS_WRITE,
        SCOPE_FLEXOFFERS_WRITE,
        SCOPE_ADMIN,
        SCOPE_METRICS_READ,
        SCOPE_DEVICES_READ,
        SCOPE_DEVICES_WRITE,
        SCOPE_DEVICES_ADMIN,
    }
)

DEFAULT_LIFETIME = timedelta(minutes=15)
DEFAULT_LEEWAY = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "scope", "iat", "nbf", "exp", "jti", "gen"})
GENERATION_CLAIM = "gen"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order n of the P-256 group: an ES256 signature (r, s) is canonical when s <= n/2."""

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(text: str) -> tuple[str, ...]:
    """The scope names of a space-separated `scope` string (RFC 6749 §3.3)."""
    return checked_scopes(text.split(" ") if text else ())


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """`scopes` in order without duplicates; each must be a printable ASCII name."""
    names = tuple(dict.fromkeys(scopes))
    if not all(isinstance(name, str) and _SCOPE_TOKEN.fullmatch(name) for name in names):
        raise InvalidInputError("a scope is a space-separated list of printable ASCII names")
    return names


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who, which scopes, when, signed by which key."""

    subject: str
    scopes: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    kid: str
    jti: str | None
    raw: Mapping[str, Any]

    @property
    def generation(self) -> str | None:
        """The account generation the token was issued for (`gen`), if it names one."""
        value = self.raw.get(GENERATION_CLAIM)
        return value if isinstance(value, str) else None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


AccountCheck = Callable[[Claims], "Claims | None"]
"""Checks verified claims against the account now: the claims to use, or None to refuse."""


def bind_to_account(
    claims: Claims, *, enabled: bool, generation: str, scopes: Iterable[str]
) -> Claims | None:
    """`claims` if the account instance they were issued for is still there and
    enabled (same `generation`), their scopes cut to those the account holds now;
    None when the token must be refused."""
    if not enabled or not generation or claims.generation != generation:
        return None
    held = set(scopes)
    return replace(claims, scopes=tuple(s for s in claims.scopes if s in held))


class SigningKeys(Protocol):
    """What the issuer needs of a key ring."""

    retire_after: timedelta

    def active(self) -> SigningKey: ...


class TokenIssuer:
    """Signs access tokens with the key ring's active key."""

    def __init__(
        self,
        keyring: SigningKeys,
        *,
        issuer: str,
        audience: str,
        lifetime: timedelta = DEFAULT_LIFETIME,
        clock: Clock = utc_now,
    ) -> None:
        if not timedelta(0) < lifetime < keyring.retire_after:
            raise ConfigurationError(
                "the token lifetime must be positive and shorter than the key retirement period"
            )
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock

    def issue(
        self,
        subject: str,
        scopes: Iterable[str],
        *,
        generation: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed JWT for `subject` with `scopes`, bound to the account `generation`
        (`ServiceAccount.token_generation`); `extra` adds non-reserved claims."""
        if not isinstance(subject, str) or not subject:
            raise InvalidInputError("a token needs a non-empty subject")
        scope = " ".join(checked_scopes(scopes))
        clash = sorted(RESERVED_CLAIMS.intersection(extra or {}))
        if clash:
            raise InvalidInputError(f"extra claims may not set `{', '.join(clash)}`")
        now = int(self.clock().timestamp())
        claims = {
            **(extra or {}),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "scope": scope,
            "iat": now,
            "nbf": now,
            "exp": now + int(self.lifetime.total_seconds()),
            "jti": secrets.token_urlsafe(16),
        }
        if generation is not None:
            claims[GENERATION_CLAIM] = generation
        key = self.keyring.active()
        token = jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
        return low_s(token) if key.alg == "ES256" else token


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _s_of(token: str) -> int | None:
    """The s of an ES256 token's signature (r || s, 32 bytes each); None if malformed."""
    try:
        raw = _b64url_decode(token.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return None
    return int.from_bytes(raw[32:], "big") if len(raw) == 64 else None


def low_s(token: str) -> str:
    """The same ES256 token with its signature in the canonical form s <= n/2.

    (r, s) and (r, n - s) both verify; pbgm issues and accepts only the low one,
    so a token cannot be re-signed into a second valid form by anyone."""
    s = _s_of(token)
    if s is None or s <= P256_ORDER // 2:
        return token
    head, signature = token.rsplit(".", 1)
    raw = _b64url_decode(signature)
    fixed = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    return head + "." + base64.urlsafe_b64encode(fixed).rstrip(b"=").decode("ascii")


def _refuse(code: str, message: str) -> AuthenticationError:
    return AuthenticationError(message, code=code)


_DECODE_FAILURES: tuple[tuple[type[PyJWTError], str, str], ...] = (
    (MissingRequiredClaimError, "token_missing_claim", "the token lacks a required claim"),
    (InvalidAudienceError, "token_wrong_audience", "the token is meant for another audience"),
    (InvalidIssuerError, "token_wrong_issuer", "the token comes from another issuer"),
    (InvalidSignatureError, "token_invalid", "the token signature does not verify"),
    (InvalidAlgorithmError, "token_invalid", "the token algorithm does not match its key"),
    (DecodeError, "token_invalid", "the token is malformed"),
)


class TokenVerifier:
    """Checks tokens against a changing set of public keys (e.g. `KeyRing.verification_keys`).

    `account_check(claims)` runs after the signature and claims check out; it
    returns the claims to use (e.g. `bind_to_account`: scopes cut to the account's
    current ones) or None (or raises `AuthenticationError`) to refuse a token whose
    account was disabled, deleted or re-created since it was issued.
    """

    def __init__(
        self,
        keys: Callable[[], Mapping[str, VerificationKey]],
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str] = ALGORITHMS,
        leeway: timedelta = DEFAULT_LEEWAY,
        clock: Clock = utc_now,
        account_check: AccountCheck | None = None,
    ) -> None:
        self.algorithms = frozenset(algorithms)
        if not self.algorithms or not self.algorithms <= set(ALGORITHMS):
            raise ConfigurationError(f"token algorithms must be among {', '.join(ALGORITHMS)}")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock
        self.account_check = account_check

    def verify(self, token: str) -> Claims:
        """The claims of `token` if it is genuine, current and meant for us."""
        key = self._key_for(token)
        payload = self._decode(token, key)
        issued_at, expires_at = self._check_times(payload)
        claims = Claims(
            subject=_string_claim(payload, "sub"),
            scopes=_scopes(payload),
            issued_at=issued_at,
            expires_at=expires_at,
            kid=key.kid,
            jti=payload.get("jti") if isinstance(payload.get("jti"), str) else None,
            raw=payload,
        )
        return self.check_account(claims)

    def check_account(self, claims: Claims) -> Claims:
        """The claims as the account check leaves them; `token_revoked` if it refuses."""
        if self.account_check is None:
            return claims
        checked = self.account_check(claims)
        if checked is None:
            raise _refuse("token_revoked", "the token's account is disabled, deleted or renewed")
        return checked

    def _key_for(self, token: str) -> VerificationKey:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise _refuse("token_invalid", "the token is missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as error:
            raise _refuse("token_invalid", "the token is malformed") from error
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("token_invalid", "the token names no signing key")
        key = self.keys().get(kid)
        if key is None or key.alg not in self.algorithms:
            raise _refuse("token_unknown_key", "the token names an unknown signing key")
        return key

    def _decode(self, token: str, key: VerificationKey) -> dict[str, Any]:
        if key.alg == "ES256":
            s = _s_of(token)
            if s is not None and s > P256_ORDER // 2:
                raise _refuse("token_invalid", "the token signature is not in canonical form")
        try:
            return jwt.decode(
                token,
                key.public_key,
                algorithms=[key.alg],  # the key's own algorithm, never the header's choice
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,  # times are checked against our clock below
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except PyJWTError as error:
            raise _decode_failure(error) from None

    def _check_times(self, payload: Mapping[str, Any]) -> tuple[datetime, datetime]:
        now = self.clock().timestamp()
        leeway = self.leeway.total_seconds()
        expires_at, issued_at = _time_claim(payload, "exp"), _time_claim(payload, "iat")
        if now >= expires_at + leeway:
            raise _refuse("token_expired", "the token has expired")
        not_before = _time_claim(payload, "nbf") if "nbf" in payload else issued_at
        if max(issued_at, not_before) > now + leeway:
            raise _refuse("token_not_yet_valid", "the token is not valid yet")
        return _utc(issued_at), _utc(expires_at)


def _decode_failure(error: PyJWTError) -> AuthenticationError:
    for kind, code, message in _DECODE_FAILURES:
        if isinstance(error, kind):
            return _refuse(code, message)
    return _refuse("token_invalid", "the token is invalid")


def _time_claim(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("token_invalid", f"the token claim `{name}` is not a number")
    if not -1e11 < value < 1e11:
        raise _refuse("token_invalid", f"the token claim `{name}` is out of range")
    return float(value)


def _string_claim(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise _refuse("token_invalid", f"the token claim `{name}` is not a string")
    return value


def _scopes(payload: Mapping[str, Any]) -> tuple[str, ...]:
    scope = payload.get("scope", "")
    if not isinstance(scope, str):
        raise _refuse("token_invalid", "the token claim `scope` is not a string")
    try:
        return parse_scope(scope)
    except InvalidInputError:
        raise _refuse("token_invalid", "the token claim `scope` is malformed") from None


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
