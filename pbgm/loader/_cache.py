"""The last good copy of each policy, on disk: what the loader serves while pbgm is away.

One JSON file per policy, `<cache_dir>/<name>.json`, written atomically (a
temporary file in the same directory, flushed, `fsync`ed, then renamed over the
old one), mode 0600 in a 0700 directory: a crash leaves either the old copy or
the new one, never half a file. A copy is read back only if it is well formed,
was made for the same query as the configured one (an entry that now names
another policy must not be served the old one), its document still passes
validation, and it is the content its ETag names.

The last check binds the cache to its content. The server's ETag of a policy is a
digest of its id and document (`pbgm.access.policy_etag`; of a listing by asset, a
digest of the listed policies' ETags, `listing_etag`), so the loader recomputes it
from the cached document: a copy edited on disk no longer matches and is not served
(the policy is fetched anew, without `If-None-Match`). Whoever rewrites the ETag too
only sends the server an ETag it does not have, and gets the server's copy: a `304`
confirms exactly the content the loader holds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pbgm.access import listing_etag, policy_etag
from pbgm.errors import PbgmError
from pbgm.loader._config import PolicySpec
from pbgm.policy import (
    format_datetime,
    freeze,
    load_file,
    parse_datetime,
    thaw,
    validate_policy_document,
)

log = logging.getLogger("pbgm.loader")

CACHE_FORMAT = "pbgm-loader-cache/v1"


@dataclass(frozen=True, slots=True)
class GoodCopy:
    """A validated policy as served (deep-frozen), and when the server last confirmed it."""

    document: Mapping[str, Any]
    version: int
    etag: str
    fetched_at: datetime
    listing: tuple[str, ...] | None = None  # by asset: the ETags of the listed policies

    def confirmed(self, moment: datetime) -> GoodCopy:
        return GoodCopy(self.document, self.version, self.etag, moment, self.listing)

    def matches_its_etag(self) -> bool:
        """Whether the document is the content `etag` names (module docstring)."""
        return content_matches(self.document, self.etag, self.listing)


def content_matches(document: Mapping[str, Any], etag: str, listing: Any) -> bool:
    """`etag` is the server's ETag of `document` (alone, or as one of `listing`)."""
    own = policy_etag(str(document.get("id")), thaw(document))
    if listing is None:
        return etag == own
    if not isinstance(listing, list | tuple) or not all(isinstance(e, str) for e in listing):
        return False
    return own in listing and etag == listing_etag(listing)


class DiskCache:
    """Reads and writes the good copies of one loader."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def write(self, spec: PolicySpec, copy: GoodCopy) -> bool:
        """Store `copy`; False (logged) when the disk refuses, which never stops delivery."""
        data = {
            "format": CACHE_FORMAT,
            "name": spec.name,
            "query": spec.query,
            "version": copy.version,
            "etag": copy.etag,
            "listing": list(copy.listing) if copy.listing is not None else None,
            "fetched_at": format_datetime(copy.fetched_at),
            "document": thaw(copy.document),
        }
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _atomic_write(self.path(spec.name), text.encode())
        except OSError as error:
            log.error("cannot write the cache of `%s`: %s", spec.name, error.strerror or error)
            return False
        return True

    def read(self, spec: PolicySpec) -> GoodCopy | None:
        """The stored copy for `spec`, or None (logged) when absent or unusable."""
        path = self.path(spec.name)
        if not path.exists():
            return None
        try:
            return _copy_of(load_file(path), spec)
        except (PbgmError, KeyError, TypeError, ValueError) as error:
            reason = error.message if isinstance(error, PbgmError) else "malformed"
            log.warning("ignoring the cache of `%s`: %s", spec.name, reason)
            return None


def _copy_of(data: Any, spec: PolicySpec) -> GoodCopy | None:
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise ValueError("not a loader cache file")
    if data["name"] != spec.name or data["query"] != spec.query:
        log.warning("ignoring the cache of `%s`: it was made for another policy", spec.name)
        return None
    validate_policy_document(data["document"])
    version, etag, listing = data["version"], data["etag"], data.get("listing")
    if isinstance(version, bool) or not isinstance(version, int) or not isinstance(etag, str):
        raise ValueError("bad version or etag")
    if not content_matches(data["document"], etag, listing):
        log.warning(
            "the cache of `%s` is not the content its ETag names (edited?); "
            "not served, the policy is fetched anew",
            spec.name,
        )
        return None
    fetched_at = parse_datetime(data["fetched_at"], "fetched_at")
    held = tuple(listing) if listing is not None else None
    return GoodCopy(freeze(data["document"]), version, etag, fetched_at, held)


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
