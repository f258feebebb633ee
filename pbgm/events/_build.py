"""An `EventService` wired from its configuration: bus, store, token verifier.

`store: <url>` opens the repository (SQLite or PostgreSQL, migrated); `policies:`
instead loads policy files and bundles into an in-process `MemoryStore` (published),
for a service that runs without a pbgm server. Tokens are verified against a pbgm
key directory (`jwt.keys_dir`, reloaded when it changes) or a JWKS file
(`jwt.jwks_file`, re-read when its modification time changes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pbgm.auth import KeyRing, TokenVerifier, VerificationKey, keys_from_jwks
from pbgm.bundle import import_bundle, read_bundle
from pbgm.bus import Bus, open_bus
from pbgm.errors import ConfigurationError, PbgmError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import utc_now
from pbgm.policy import load_file
from pbgm.store.base import Store
from pbgm.store.factory import open_store
from pbgm.store.memory import MemoryStore

from ._config import EventServiceConfig, JwtConfig
from ._service import EventService
from ._services import GridService

BUNDLE_FORMAT = "pbgm/bundle/v1"


def open_event_service(
    config: EventServiceConfig,
    *,
    bus: Bus | None = None,
    store: Store | None = None,
    services: Mapping[str, GridService] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> EventService:
    """The service `config` describes; `bus` and `store` override the configured ones.

    The service is not started: call `start()` (or use it as a context manager). A bad
    `config` is refused before anything is opened (`EventServiceConfig.checked`).
    """
    config = config.checked()
    store = store if store is not None else open_config_store(config)
    verifier = token_verifier(config.jwt, clock) if config.jwt else None
    bus = bus if bus is not None else open_bus(config.bus)
    return EventService(
        config, bus=bus, store=store, verifier=verifier, services=services, clock=clock
    )


def open_config_store(config: EventServiceConfig) -> Store:
    if config.store:
        return open_store(config.store)
    if not config.policies:
        raise ConfigurationError("the event service needs `store` or `policies`")
    store = MemoryStore()
    for path in config.policies:
        load_policies(store, path, actor=config.service_id)
    return store


def load_policies(store: Store, path: Path, *, actor: str) -> None:
    """A bundle (directory or file) or one policy document, published into `store`."""
    if not path.exists():
        raise ConfigurationError(f"policy file `{path}` does not exist")
    document = None if path.is_dir() else load_file(path)
    if document is None or document.get("format") == BUNDLE_FORMAT:
        import_bundle(store, read_bundle(path), actor=actor)
        return
    pap = PolicyAdministrationPoint(store)
    record = pap.create(document, actor=actor)
    pap.publish(record.id, actor=actor)


def token_verifier(config: JwtConfig, clock: Callable[[], datetime]) -> TokenVerifier:
    keys: Callable[[], Mapping[str, VerificationKey]]
    if config.keys_dir is not None:
        keys = KeyRing(config.keys_dir).verification_keys
    else:
        assert config.jwks_file is not None
        keys = JwksFile(config.jwks_file)
    return TokenVerifier(
        keys,
        issuer=config.issuer,
        audience=config.audience,
        leeway=timedelta(seconds=config.leeway_s),
        clock=clock,
    )


class JwksFile:
    """The verification keys of a JWKS file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: Mapping[str, VerificationKey] = {}
        self()  # a missing or broken file is a configuration error at start

    def __call__(self) -> Mapping[str, VerificationKey]:
        try:
            stat = self.path.stat()
        except OSError:
            if self._stamp is None:
                raise ConfigurationError(f"JWKS file `{self.path}` cannot be read") from None
            return self._keys  # keep the last good keys while the file is being replaced
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            with self._lock:
                self._keys, self._stamp = self._read(), stamp
        return self._keys

    def _read(self) -> Mapping[str, VerificationKey]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
            return keys_from_jwks(data)
        except (OSError, ValueError, PbgmError) as error:
            if self._stamp is None:
                raise ConfigurationError(f"JWKS file `{self.path}` is not a JWKS") from error
            return self._keys
