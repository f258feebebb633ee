"""Tokens without HTTP: issue, verify, and every forged or stale token refused.

The forgeries are built by hand (base64url + HMAC or a foreign key), because a
JWT library refuses to make most of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.auth.keys import KeyRing, keys_from_jwks
from pbgm.auth.tokens import SCOPES, TokenIssuer, TokenVerifier, low_s, parse_scope
from pbgm.errors import AuthenticationError, ConfigurationError, InvalidInputError
from pbgm.testing import FrozenClock

ISSUER = "https://pbgm.example/"
AUDIENCE = "pbgm-api"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(data: dict[str, Any]) -> str:
    return b64(json.dumps(data, separators=(",", ":")).encode())


class Setup:
    """A key ring with one ES256 key, an issuer and a verifier on one frozen clock."""

    def __init__(self, directory: Path) -> None:
        self.clock = FrozenClock()
        self.ring = KeyRing(directory / "keys", clock=self.clock)
        self.ring.generate("ES256")
        self.issuer = TokenIssuer(self.ring, issuer=ISSUER, audience=AUDIENCE, clock=self.clock)
        self.revoked: set[str] = set()
        self.verifier = TokenVerifier(
            self.ring.verification_keys,
            issuer=ISSUER,
            audience=AUDIENCE,
            clock=self.clock,
            account_check=lambda claims: None if claims.subject in self.revoked else claims,
        )

    @property
    def kid(self) -> str:
        return self.ring.active().kid

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(self.clock().timestamp())
        base = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "svc-meter",
            "scope": "policies:read",
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "jti": "j1",
        }
        base.update(changes)
        return {name: value for name, value in base.items() if value is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """Signed with the real active key (so only the claims are wrong)."""
        key = self.ring.active()
        return low_s(
            jwt.encode(
                claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, **header}
            )
        )

    def public_pem(self) -> bytes:
        key = self.ring.verification_keys()[self.kid].public_key
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def alg_none(s: Setup) -> str:
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': s.kid})}.{segment(s.claims())}."


def hs256_with_public_key(s: Setup) -> str:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': s.kid})}.{segment(s.claims())}"
    mac = hmac.new(s.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def foreign_key_same_kid(s: Setup) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(s.claims(), other, algorithm="ES256", headers={"kid": s.kid})


def rs256_under_es256_kid(s: Setup) -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(s.claims(), other, algorithm="RS256", headers={"kid": s.kid})


def tampered_payload(s: Setup) -> str:
    header, _, signature = s.sign(s.claims()).split(".")
    return f"{header}.{segment(s.claims(sub='svc-admin', scope='admin'))}.{signature}"


def tampered_signature(s: Setup) -> str:
    token = s.sign(s.claims())
    head, _, signature = token.rpartition(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{head}.{signature[:5]}{flipped}{signature[6:]}"


def no_kid(s: Setup) -> str:
    key = s.ring.active()
    return jwt.encode(s.claims(), key.private_key, algorithm="ES256")


def unknown_kid(s: Setup) -> str:
    key = s.ring.active()
    return jwt.encode(s.claims(), key.private_key, algorithm="ES256", headers={"kid": "nope"})


ATTACKS: list[tuple[str, Callable[[Setup], str], str]] = [
    ("alg none", alg_none, "token_invalid"),
    ("HS256 signed with the public key", hs256_with_public_key, "token_invalid"),
    ("signed by another key under our kid", foreign_key_same_kid, "token_invalid"),
    ("RS256 under an ES256 kid", rs256_under_es256_kid, "token_invalid"),
    ("payload swapped after signing", tampered_payload, "token_invalid"),
    ("signature altered", tampered_signature, "token_invalid"),
    ("no kid in the header", no_kid, "token_invalid"),
    ("kid not in the key ring", unknown_kid, "token_unknown_key"),
    ("expired", lambda s: s.sign(s.claims(exp=int(s.clock().timestamp()) - 60)), "token_expired"),
    (
        "not yet valid (nbf)",
        lambda s: s.sign(s.claims(nbf=int(s.clock().timestamp()) + 120)),
        "token_not_yet_valid",
    ),
    (
        "issued in the future (iat)",
        lambda s: s.sign(s.claims(iat=int(s.clock().timestamp()) + 120, nbf=None)),
        "token_not_yet_valid",
    ),
    ("wrong audience", lambda s: s.sign(s.claims(aud="other-api")), "token_wrong_audience"),
    ("wrong issuer", lambda s: s.sign(s.claims(iss="https://evil/")), "token_wrong_issuer"),
    ("no exp", lambda s: s.sign(s.claims(exp=None)), "token_missing_claim"),
    ("no iat", lambda s: s.sign(s.claims(iat=None)), "token_missing_claim"),
    ("no sub", lambda s: s.sign(s.claims(sub=None)), "token_missing_claim"),
    ("no iss", lambda s: s.sign(s.claims(iss=None)), "token_missing_claim"),
    ("no aud", lambda s: s.sign(s.claims(aud=None)), "token_missing_claim"),
    ("exp not a number", lambda s: s.sign(s.claims(exp="tomorrow")), "token_invalid"),
    ("exp a boolean", lambda s: s.sign(s.claims(exp=True)), "token_invalid"),
    ("scope not a string", lambda s: s.sign(s.claims(scope=["admin"])), "token_invalid"),
    ("empty subject", lambda s: s.sign(s.claims(sub="")), "token_invalid"),
    ("garbage", lambda s: "not.a.token", "token_invalid"),
    ("empty", lambda s: "", "token_invalid"),
    ("oversized", lambda s: "a" * 10_000, "token_invalid"),
]


@pytest.mark.parametrize(("what", "forge", "code"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_forged_or_stale_tokens_are_refused(
    setup: Setup, what: str, forge: Callable[[Setup], str], code: str
) -> None:
    token = forge(setup)
    with pytest.raises(AuthenticationError) as caught:
        setup.verifier.verify(token)
    assert caught.value.code == code, what
    if token:
        assert token not in str(caught.value) and token not in json.dumps(caught.value.as_dict())


def test_an_issued_token_verifies_with_its_claims(setup: Setup) -> None:
    token = setup.issuer.issue("svc-meter", ["policies:read", "decisions:write"])
    claims = setup.verifier.verify(token)
    assert claims.subject == "svc-meter"
    assert claims.scopes == ("policies:read", "decisions:write")
    assert claims.has_scope("decisions:write") and not claims.has_scope("admin")
    assert claims.kid == setup.kid
    assert claims.issued_at == setup.clock().replace(microsecond=0)
    assert claims.expires_at - claims.issued_at == timedelta(minutes=15)
    assert claims.jti and claims.raw["iss"] == ISSUER
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_two_tokens_have_different_ids(setup: Setup) -> None:
    first, second = (setup.verifier.verify(setup.issuer.issue("svc", [])) for _ in range(2))
    assert first.jti != second.jti


@pytest.mark.parametrize(
    ("what", "moved", "accepted"),
    [
        ("just issued", timedelta(0), True),
        ("one second before exp", timedelta(minutes=15, seconds=-1), True),
        ("past exp but within the 30 s leeway", timedelta(minutes=15, seconds=20), True),
        ("past exp and the leeway", timedelta(minutes=15, seconds=31), False),
    ],
)
def test_expiry_honours_the_leeway(
    setup: Setup, what: str, moved: timedelta, accepted: bool
) -> None:
    token = setup.issuer.issue("svc", ["policies:read"])
    setup.clock.advance(seconds=moved.total_seconds())
    if accepted:
        assert setup.verifier.verify(token).subject == "svc", what
    else:
        with pytest.raises(AuthenticationError, match="expired"):
            setup.verifier.verify(token)


def test_a_small_clock_skew_is_tolerated(setup: Setup) -> None:
    token = setup.sign(setup.claims(iat=int(setup.clock().timestamp()) + 10))
    assert setup.verifier.verify(token).subject == "svc-meter"


def test_a_revoked_account_token_is_refused(setup: Setup) -> None:
    token = setup.issuer.issue("svc-meter", ["policies:read"])
    setup.revoked.add("svc-meter")
    with pytest.raises(AuthenticationError) as caught:
        setup.verifier.verify(token)
    assert caught.value.code == "token_revoked"


def test_rotation_keeps_old_tokens_valid_until_the_key_retires(setup: Setup) -> None:
    old = setup.issuer.issue("svc", ["policies:read"])
    old_kid = setup.kid
    setup.ring.rotate()
    new = setup.issuer.issue("svc", ["policies:read"])
    assert setup.verifier.verify(old).kid == old_kid
    assert setup.verifier.verify(new).kid == setup.kid != old_kid
    setup.clock.advance(days=1, seconds=1)
    with pytest.raises(AuthenticationError) as caught:
        setup.verifier.verify(old)
    assert caught.value.code == "token_unknown_key"


def test_a_verifier_built_from_the_published_jwks_accepts_our_tokens(setup: Setup) -> None:
    jwks = setup.ring.public_jwks()
    remote = TokenVerifier(
        lambda: keys_from_jwks(jwks), issuer=ISSUER, audience=AUDIENCE, clock=setup.clock
    )
    assert remote.verify(setup.issuer.issue("svc", [])).subject == "svc"
    with pytest.raises(AuthenticationError):
        remote.verify(hs256_with_public_key(setup))


def test_a_symmetric_key_in_a_jwks_is_ignored() -> None:
    secret = {"kty": "oct", "k": b64(b"s" * 32), "kid": "k1", "alg": "HS256"}
    with pytest.raises(InvalidInputError):
        keys_from_jwks({"keys": []})
    assert keys_from_jwks({"keys": [secret]}) == {}


def test_a_verifier_accepting_only_rs256_refuses_es256_keys(setup: Setup) -> None:
    rs_only = TokenVerifier(
        setup.ring.verification_keys,
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=("RS256",),
        clock=setup.clock,
    )
    with pytest.raises(AuthenticationError) as caught:
        rs_only.verify(setup.issuer.issue("svc", []))
    assert caught.value.code == "token_unknown_key"


@pytest.mark.parametrize(
    ("what", "build"),
    [
        ("HS256 among the accepted algorithms", {"algorithms": ("HS256", "ES256")}),
        ("no accepted algorithm", {"algorithms": ()}),
    ],
)
def test_a_verifier_refuses_symmetric_or_empty_algorithm_lists(
    setup: Setup, what: str, build: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        TokenVerifier(setup.ring.verification_keys, issuer=ISSUER, audience=AUDIENCE, **build)


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("extra claim overriding sub", lambda i: i.issue("svc", [], extra={"sub": "admin"})),
        ("extra claim overriding exp", lambda i: i.issue("svc", [], extra={"exp": 2**40})),
        ("scope with a space", lambda i: i.issue("svc", ["policies:read admin"])),
        ("scope with a quote", lambda i: i.issue("svc", ['a"b'])),
        ("empty subject", lambda i: i.issue("", [])),
    ],
)
def test_the_issuer_refuses_bad_input(setup: Setup, what: str, call: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError):
        call(setup.issuer)


def test_extra_claims_travel_in_the_token(setup: Setup) -> None:
    token = setup.issuer.issue("svc", [], extra={"tenant": "wunsiedel"})
    assert setup.verifier.verify(token).raw["tenant"] == "wunsiedel"


def test_a_lifetime_longer_than_key_retirement_is_refused(setup: Setup) -> None:
    with pytest.raises(ConfigurationError):
        TokenIssuer(setup.ring, issuer=ISSUER, audience=AUDIENCE, lifetime=timedelta(days=2))


def test_the_scope_names_are_documented_and_well_formed() -> None:
    assert {"policies:read", "decisions:write", "flexoffers:write", "admin"} <= SCOPES
    assert parse_scope(" ".join(sorted(SCOPES))) == tuple(sorted(SCOPES))
    assert parse_scope("") == ()


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_x0.="))
def test_any_one_character_change_fails_or_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory, position: int, replacement: str
) -> None:
    s = _shared_setup(tmp_path_factory)
    token = s.issuer.issue("svc", ["policies:read"])
    original = s.verifier.verify(token)
    index = position % len(token)
    forged = token[:index] + replacement + token[index + 1 :]
    try:
        claims = s.verifier.verify(forged)
    except AuthenticationError:
        return
    # base64url may ignore the low bits of a last character: same bytes, same claims
    assert claims.raw == original.raw and claims.kid == original.kid


_SHARED: list[Setup] = []


def _shared_setup(factory: pytest.TempPathFactory) -> Setup:
    if not _SHARED:
        _SHARED.append(Setup(factory.mktemp("shared")))
    return _SHARED[0]
