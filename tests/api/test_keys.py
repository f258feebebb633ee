"""The key ring on disk: file modes, kids, rotation, retirement, concurrency, the CLI."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from jwt.algorithms import RSAAlgorithm

from pbgm.auth.keys import KeyRing, thumbprint
from pbgm.cli import main
from pbgm.errors import AlreadyExistsError, ConfigurationError, InvalidInputError, NotFoundError
from pbgm.testing import FrozenClock

# RFC 7638 §3.1: this public key's thumbprint
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJEC"
    "PebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq"
    "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0"
    "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0: files must still come out 0600 and the directory 0700."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def ring(tmp_path: Path, clock: FrozenClock) -> KeyRing:
    return KeyRing(tmp_path / "keys", retire_after=timedelta(hours=1), clock=clock)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_key_files_are_private_even_with_a_permissive_umask(
    ring: KeyRing, permissive_umask: None, alg: str
) -> None:
    info = ring.generate(alg)
    assert mode(ring.directory) == 0o700
    assert mode(ring.directory / f"{info.kid}.pem") == 0o600
    assert mode(ring.directory / "keys.json") == 0o600
    assert (ring.directory / f"{info.kid}.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY")


def test_the_kid_is_the_rfc7638_thumbprint() -> None:
    public_key = RSAAlgorithm.from_jwk({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
    assert thumbprint(public_key) == RFC7638_THUMBPRINT


def test_a_generated_key_is_listed_active_and_published(ring: KeyRing, clock: FrozenClock) -> None:
    info = ring.generate()
    assert [(k.kid, k.alg, k.active, k.retired) for k in ring.list()] == [
        (info.kid, "ES256", True, False)
    ]
    assert ring.list()[0].created_at == clock()
    assert ring.active().kid == info.kid and ring.active().alg == "ES256"
    assert thumbprint(ring.active().private_key.public_key()) == info.kid
    (jwk,) = ring.public_jwks()["keys"]
    assert {jwk["kid"], jwk["alg"], jwk["use"], jwk["kty"]} == {info.kid, "ES256", "sig", "EC"}
    assert not {"d", "p", "q"} & set(jwk)


def test_generate_refuses_a_second_active_key(ring: KeyRing) -> None:
    ring.generate()
    with pytest.raises(AlreadyExistsError):
        ring.generate()


def test_an_empty_ring_has_no_active_key_and_publishes_nothing(ring: KeyRing) -> None:
    assert ring.list() == [] and ring.public_jwks() == {"keys": []}
    with pytest.raises(NotFoundError):
        ring.active()


def test_an_unknown_algorithm_is_refused(ring: KeyRing) -> None:
    with pytest.raises(InvalidInputError):
        ring.generate("HS256")


def test_rotation_publishes_both_keys_until_the_old_one_retires(
    ring: KeyRing, clock: FrozenClock
) -> None:
    first = ring.generate()
    clock.advance(minutes=5)
    second = ring.rotate()
    listed = {k.kid: k for k in ring.list()}
    assert listed[first.kid].retired_at == clock() and not listed[first.kid].active
    assert listed[second.kid].active and ring.active().kid == second.kid
    assert {k["kid"] for k in ring.public_jwks()["keys"]} == {first.kid, second.kid}
    clock.advance(hours=1)
    assert set(ring.verification_keys()) == {second.kid}
    assert (ring.directory / f"{first.kid}.pem").exists()  # reads never delete
    assert ring.prune() == (first.kid,)
    assert not (ring.directory / f"{first.kid}.pem").exists()
    assert [k.kid for k in ring.list()] == [second.kid]


def test_rotation_keeps_the_algorithm_unless_told(ring: KeyRing) -> None:
    ring.generate("ES256")
    assert ring.rotate().alg == "ES256"
    assert ring.rotate("RS256").alg == "RS256"
    assert ring.active().alg == "RS256"
    assert ring.rotate().alg == "RS256"


def test_rotate_prunes_keys_past_retirement(ring: KeyRing, clock: FrozenClock) -> None:
    first = ring.generate()
    ring.rotate()
    clock.advance(hours=2)
    ring.rotate()
    assert first.kid not in {k.kid for k in ring.list()}
    assert sorted(p.name for p in ring.directory.glob("*.pem")) == sorted(
        f"{k.kid}.pem" for k in ring.list()
    )


def test_rotate_on_an_empty_ring_generates_the_first_key(ring: KeyRing) -> None:
    info = ring.rotate()
    assert ring.active().kid == info.kid and len(ring.list()) == 1


def test_another_instance_sees_a_rotation(ring: KeyRing, clock: FrozenClock) -> None:
    ring.generate()
    other = KeyRing(ring.directory, retire_after=timedelta(hours=1), clock=clock)
    assert other.active().kid == ring.active().kid
    rotated = ring.rotate()
    assert other.active().kid == rotated.kid
    assert rotated.kid in other.verification_keys()


def test_concurrent_rotations_lose_no_key(ring: KeyRing, clock: FrozenClock) -> None:
    ring.generate()
    rings = [KeyRing(ring.directory, retire_after=timedelta(hours=1), clock=clock) for _ in "abcd"]
    threads = [threading.Thread(target=r.rotate) for r in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = ring.list()
    assert len(listed) == 5 and sum(k.active for k in listed) == 1
    assert len(list(ring.directory.glob("*.pem"))) == 5
    assert not list(ring.directory.glob(".*.tmp"))


def test_metadata_is_valid_json_without_leftover_temporary_files(ring: KeyRing) -> None:
    ring.generate()
    ring.rotate()
    data = json.loads((ring.directory / "keys.json").read_text())
    assert data["format"] == "pbgm/auth/keys/v1" and data["active"] == ring.active().kid
    assert [p.name for p in ring.directory.iterdir() if p.name.endswith(".tmp")] == []
    assert "PRIVATE" not in json.dumps(data)


@pytest.mark.parametrize(
    ("what", "damage"),
    [
        ("a private key readable by the group", lambda d, kid: (d / f"{kid}.pem").chmod(0o640)),
        ("a private key file missing", lambda d, kid: (d / f"{kid}.pem").unlink()),
        ("a private key that is not PEM", lambda d, kid: (d / f"{kid}.pem").write_text("x")),
        ("metadata that is not JSON", lambda d, kid: (d / "keys.json").write_text("{")),
        (
            "metadata naming an unknown active key",
            lambda d, kid: (d / "keys.json").write_text(
                (d / "keys.json").read_text().replace(f'"active": "{kid}"', '"active": "zz"')
            ),
        ),
    ],
)
def test_a_damaged_ring_fails_closed(ring: KeyRing, what: str, damage) -> None:
    kid = ring.generate().kid
    damage(ring.directory, kid)
    fresh = KeyRing(ring.directory)
    with pytest.raises(ConfigurationError):
        fresh.public_jwks()
    with pytest.raises(ConfigurationError):
        fresh.active()


def test_a_key_swapped_for_another_is_refused(ring: KeyRing) -> None:
    first = ring.generate().kid
    second = ring.rotate().kid
    (ring.directory / f"{first}.pem").unlink()
    os.link(ring.directory / f"{second}.pem", ring.directory / f"{first}.pem")
    with pytest.raises(ConfigurationError, match="does not match"):
        KeyRing(ring.directory).list()


def test_a_non_positive_retirement_period_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing(tmp_path, retire_after=timedelta(0))


# --- the CLI -------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", "memory://", *args], env=env)
    return result.exit_code, result.output


def test_cli_generate_rotate_list(tmp_path: Path) -> None:
    directory = str(tmp_path / "k")
    status, output = run("--json", "keys", "generate", "--keys-dir", directory)
    assert status == 0
    first = json.loads(output)
    assert first["alg"] == "ES256" and first["active"] is True
    status, output = run("--json", "keys", "rotate", "--keys-dir", directory, "--alg", "RS256")
    assert status == 0 and json.loads(output)["alg"] == "RS256"
    status, output = run("--json", "keys", "list", "--keys-dir", directory)
    listed = json.loads(output)
    assert listed[0]["kid"] == first["kid"]
    assert [(k["active"], k["retired"]) for k in listed] == [(False, True), (True, False)]
    assert mode(Path(directory)) == 0o700


def test_cli_generate_twice_is_a_conflict(tmp_path: Path) -> None:
    directory = str(tmp_path / "k")
    assert run("keys", "generate", "--keys-dir", directory)[0] == 0
    status, output = run("keys", "generate", "--keys-dir", directory)
    assert status == 6 and "key_exists" in output


def test_cli_takes_the_directory_from_the_environment(tmp_path: Path) -> None:
    directory = tmp_path / "from-env"
    status, output = run("keys", "generate", env={"PBGM_KEYS_DIR": str(directory)})
    assert status == 0 and "ES256" in output
    assert len(list(directory.glob("*.pem"))) == 1
    status, output = run("keys", "list", env={"PBGM_KEYS_DIR": str(directory)})
    assert status == 0 and "True" in output


def test_cli_prune_removes_retired_keys(tmp_path: Path) -> None:
    directory = str(tmp_path / "k")
    run("keys", "generate", "--keys-dir", directory)
    run("keys", "rotate", "--keys-dir", directory, "--retire-after-hours", "0.0000001")
    status, output = run(
        "--json", "keys", "prune", "--keys-dir", directory, "--retire-after-hours", "0.0000001"
    )
    assert status == 0 and len(json.loads(output)["removed"]) == 1
    assert len(list(Path(directory).glob("*.pem"))) == 1
