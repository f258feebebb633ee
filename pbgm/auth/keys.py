"""Signing keys for pbgm's access tokens: a key ring kept in one directory.

The directory holds one PEM file per private key (`<kid>.pem`, mode 0600, PKCS#8,
unencrypted: protect the directory, which is created 0700) and `keys.json`, the
metadata (alg, creation and retirement times, which key is active), replaced
atomically (temporary file + rename) on every change.

Rotation makes a new active key and retires the old one. A retired key signs
nothing more but stays published in the JWKS and valid for verification for
`retire_after` (longer than the longest token lifetime, so every token it signed
expires first); after that it is no longer published and the next write prunes
it from disk. The key id is the RFC 7638 JWK thumbprint (SHA-256, base64url),
stable and derived from the public key alone. The key material itself (key types,
JWKs, thumbprints) lives in `pbgm.auth.jwk`; its names are re-exported here.

Several processes may share the directory (gunicorn workers): writes take an
exclusive `fcntl` lock, and readers reload when `keys.json` changes on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pbgm.auth.jwk import (
    ALGORITHMS,
    RSA_KEY_SIZE,
    PrivateKey,
    PublicKey,
    SigningKey,
    VerificationKey,
    keys_from_jwks,
    new_private_key,
    public_jwk,
    thumbprint,
)
from pbgm.errors import AlreadyExistsError, ConfigurationError, NotFoundError
from pbgm.model import Clock, utc_now

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_RETIRE_AFTER",
    "FORMAT",
    "METADATA",
    "RSA_KEY_SIZE",
    "KeyInfo",
    "KeyRing",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "VerificationKey",
    "keys_from_jwks",
    "new_private_key",
    "public_jwk",
    "thumbprint",
]

DEFAULT_ALGORITHM = "ES256"
DEFAULT_RETIRE_AFTER = timedelta(days=1)
METADATA = "keys.json"
FORMAT = "pbgm/auth/keys/v1"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What `pbgm keys list` shows about one key; never the key material."""

    kid: str
    alg: str
    created_at: datetime
    active: bool
    retired_at: datetime | None = None

    @property
    def retired(self) -> bool:
        return self.retired_at is not None

    def as_dict(self) -> dict[str, Any]:
        retired_at = self.retired_at.isoformat() if self.retired_at else None
        return {
            "kid": self.kid,
            "alg": self.alg,
            "created_at": self.created_at.isoformat(),
            "active": self.active,
            "retired": self.retired,
            "retired_at": retired_at,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        retired_at = self.retired_at.isoformat() if self.retired_at else None
        return {
            "kid": self.kid,
            "alg": self.alg,
            "created_at": self.created_at.isoformat(),
            "retired_at": retired_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Entry:
        retired_at = data.get("retired_at")
        return cls(
            kid=str(data["kid"]),
            alg=str(data["alg"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            retired_at=datetime.fromisoformat(retired_at) if retired_at else None,
        )


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One reading of the directory: metadata plus the keys it names."""

    stamp: tuple[int, int, int] | None
    entries: tuple[_Entry, ...]
    active: str | None
    private_keys: Mapping[str, PrivateKey]
    public_keys: Mapping[str, PublicKey]


_EMPTY = _Loaded(None, (), None, {}, {})


class KeyRing:
    """The signing keys in `directory` (see the module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        retire_after: timedelta = DEFAULT_RETIRE_AFTER,
        clock: Clock | None = None,
    ) -> None:
        if retire_after <= timedelta(0):
            raise ConfigurationError("the key retirement period must be positive")
        self.directory = Path(directory)
        self.retire_after = retire_after
        self._clock = clock or utc_now
        self._lock = threading.Lock()
        self._loaded = _EMPTY

    # -- reading

    def list(self) -> list[KeyInfo]:
        """Every key still on disk, oldest first, including retired ones."""
        loaded = self._current()
        return [
            KeyInfo(e.kid, e.alg, e.created_at, e.kid == loaded.active, e.retired_at)
            for e in loaded.entries
        ]

    def active(self) -> SigningKey:
        """The key that signs new tokens; `NotFoundError` when there is none."""
        loaded = self._current()
        if loaded.active is None:
            raise NotFoundError(
                f"no active signing key in `{self.directory}`: run `pbgm keys generate`"
            )
        return SigningKey(loaded.active, loaded.private_keys[loaded.active])

    def verification_keys(self) -> dict[str, VerificationKey]:
        """kid -> public key and its algorithm, for every key not yet past retirement."""
        loaded = self._current()
        return {
            e.kid: VerificationKey(e.kid, e.alg, loaded.public_keys[e.kid])
            for e in self._published(loaded.entries)
        }

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS (RFC 7517) of every published key, with kid, alg and use=sig."""
        keys = [
            {**public_jwk(key.public_key), "kid": kid, "alg": key.alg, "use": "sig"}
            for kid, key in self.verification_keys().items()
        ]
        return {"keys": keys}

    # -- writing

    def generate(self, alg: str = DEFAULT_ALGORITHM) -> KeyInfo:
        """Create the first active key; refused if the ring already has one (rotate instead)."""
        with self._writing() as loaded:
            if loaded.active is not None:
                raise AlreadyExistsError(
                    f"`{self.directory}` already has an active key `{loaded.active}`: "
                    "use `pbgm keys rotate`",
                    code="key_exists",
                )
            return self._add(loaded, alg)

    def rotate(self, alg: str | None = None) -> KeyInfo:
        """Make a new active key (same alg by default) and retire the current one.

        On an empty ring this generates the first key. Keys retired longer than
        `retire_after` ago are pruned from disk.
        """
        with self._writing() as loaded:
            now = self._clock()
            entries = tuple(
                replace(e, retired_at=now) if e.kid == loaded.active else e for e in loaded.entries
            )
            previous = next((e.alg for e in entries if e.kid == loaded.active), None)
            kept = self._prune(replace(loaded, entries=entries, active=None))
            return self._add(kept, alg or previous or DEFAULT_ALGORITHM)

    def prune(self) -> tuple[str, ...]:
        """Delete keys retired longer than `retire_after` ago; the kids removed."""
        with self._writing() as loaded:
            kept = self._prune(loaded)
            self._save(kept)
            return tuple(sorted(set(loaded.private_keys) - set(kept.private_keys)))

    # -- internals

    def _published(self, entries: tuple[_Entry, ...]) -> Iterator[_Entry]:
        now = self._clock()
        for entry in entries:
            if entry.retired_at is None or now < entry.retired_at + self.retire_after:
                yield entry

    def _prune(self, loaded: _Loaded) -> _Loaded:
        kept = tuple(self._published(loaded.entries))
        for entry in loaded.entries:
            if entry not in kept:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"{entry.kid}.pem").unlink()
        keys = {e.kid: loaded.private_keys[e.kid] for e in kept}
        public = {e.kid: loaded.public_keys[e.kid] for e in kept}
        return replace(loaded, entries=kept, private_keys=keys, public_keys=public)

    def _add(self, loaded: _Loaded, alg: str) -> KeyInfo:
        private_key = new_private_key(alg)
        kid = thumbprint(private_key.public_key())
        _write_private(self.directory / f"{kid}.pem", private_key)
        entry = _Entry(kid, alg, self._clock())
        entries = (*loaded.entries, entry)
        self._save(_Loaded(None, entries, kid, {}, {}))
        return KeyInfo(kid, alg, entry.created_at, True)

    def _save(self, loaded: _Loaded) -> None:
        data = {
            "format": FORMAT,
            "active": loaded.active,
            "keys": [e.as_json() for e in loaded.entries],
        }
        _write_atomic(self.directory / METADATA, json.dumps(data, indent=2).encode("utf-8"))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Loaded]:
        _ensure_directory(self.directory)
        lock_path = self.directory / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._lock:
                self._loaded = _EMPTY
                try:
                    yield self._reload()
                finally:
                    self._loaded = _EMPTY
        finally:
            os.close(fd)

    def _current(self) -> _Loaded:
        with self._lock:
            return self._reload()

    def _reload(self) -> _Loaded:
        """Read the directory again if `keys.json` changed (callers hold the lock)."""
        path = self.directory / METADATA
        try:
            info = path.stat()
        except FileNotFoundError:
            self._loaded = _EMPTY
            return self._loaded
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._loaded.stamp:
            self._loaded = _read(self.directory, path, stamp)
        return self._loaded


def _read(directory: Path, path: Path, stamp: tuple[int, int, int]) -> _Loaded:
    try:
        data = json.loads(path.read_bytes())
        if data.get("format") != FORMAT:
            raise ValueError("unknown format")
        entries = tuple(_Entry.from_json(item) for item in data["keys"])
        active = data.get("active")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigurationError(f"the key metadata `{path}` cannot be read") from error
    if active is not None and active not in {e.kid for e in entries}:
        raise ConfigurationError(f"the key metadata `{path}` names an unknown active key")
    keys = {e.kid: _read_private(directory / f"{e.kid}.pem", e) for e in entries}
    public = {kid: key.public_key() for kid, key in keys.items()}
    return _Loaded(stamp, entries, active, keys, public)


def _read_private(path: Path, entry: _Entry) -> PrivateKey:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            pem = handle.read()
    except OSError as error:
        raise ConfigurationError(f"the private key `{path}` cannot be read") from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"the private key `{path}` is accessible to other users: `chmod 600` it"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigurationError(f"the private key `{path}` is not a PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigurationError(f"the private key `{path}` is neither EC nor RSA")
    if SigningKey(entry.kid, key).alg != entry.alg or thumbprint(key.public_key()) != entry.kid:
        raise ConfigurationError(f"the private key `{path}` does not match its metadata")
    return key


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not directory.is_dir():
        raise ConfigurationError(f"`{directory}` is not a directory")


def _write_private(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
