"""Hashing and verifying service-account secrets and passwords."""

from __future__ import annotations

import base64

import pytest

from pbgm.auth.secrets import generate_secret, hash_secret, is_secret_hash, verify_secret


@pytest.fixture(scope="module")
def hashed() -> str:
    return hash_secret("correct horse battery staple")


def test_a_hash_verifies_its_secret(hashed: str) -> None:
    assert verify_secret("correct horse battery staple", hashed)


@pytest.mark.parametrize(
    ("what", "secret"),
    [
        ("another secret", "Tr0ub4dor&3"),
        ("one character off", "correct horse battery stapl"),
        ("different case", "Correct horse battery staple"),
        ("the empty secret", ""),
    ],
)
def test_a_wrong_secret_does_not_verify(hashed: str, what: str, secret: str) -> None:
    assert not verify_secret(secret, hashed)


def test_the_hash_has_the_documented_shape(hashed: str) -> None:
    scheme, n, r, p, salt, digest = hashed.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.urlsafe_b64decode(salt)) == 16
    assert len(base64.urlsafe_b64decode(digest)) == 32
    assert "correct" not in hashed and is_secret_hash(hashed)


def test_each_hash_gets_its_own_salt() -> None:
    first, second = hash_secret("same"), hash_secret("same")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_secret("same", first) and verify_secret("same", second)


def _tampered(hashed: str, index: int, value: str) -> str:
    parts = hashed.split("$")
    parts[index] = value
    return "$".join(parts)


MALFORMED = [
    ("an empty string", lambda h: ""),
    ("a plain secret", lambda h: "correct horse battery staple"),
    ("another scheme", lambda h: h.replace("scrypt$", "bcrypt$", 1)),
    ("a missing field", lambda h: h.rsplit("$", 1)[0]),
    ("an extra field", lambda h: h + "$x"),
    ("a cost that is not a number", lambda h: _tampered(h, 1, "lots")),
    ("a cost that is not a power of two", lambda h: _tampered(h, 1, "1000")),
    ("an absurd cost", lambda h: _tampered(h, 1, str(2**30))),
    ("a zero block size", lambda h: _tampered(h, 2, "0")),
    ("a salt that is not base64", lambda h: _tampered(h, 4, "!!!")),
    ("an empty salt", lambda h: _tampered(h, 4, "")),
    ("a truncated digest", lambda h: _tampered(h, 5, h.split("$")[5][:8])),
    ("not a string at all", lambda h: None),
]


@pytest.mark.parametrize(("what", "corrupt"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_hash_never_verifies_and_never_raises(
    hashed: str, what: str, corrupt: object
) -> None:
    broken = corrupt(hashed)  # type: ignore[operator]
    assert verify_secret("correct horse battery staple", broken) is False
    assert is_secret_hash(broken) is False


def test_a_secret_that_is_not_a_string_does_not_verify(hashed: str) -> None:
    assert verify_secret(None, hashed) is False  # type: ignore[arg-type]


def test_generated_secrets_are_long_and_distinct() -> None:
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 43 and "$" not in s for s in secrets)
