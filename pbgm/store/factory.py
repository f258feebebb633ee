"""Open a store from a URL: `memory://` or a database URL."""

from __future__ import annotations

from pbgm.model import Clock, utc_now
from pbgm.store.base import Store
from pbgm.store.memory import MemoryStore

MEMORY_URL = "memory://"


def open_store(url: str, *, clock: Clock = utc_now) -> Store:
    """`memory://` gives a fresh `MemoryStore`; any other URL an `SqlStore`.

    SQLite (`sqlite:///path/pbgm.db`) or PostgreSQL (`postgresql://...`); the
    schema must already be migrated (`pbgm db upgrade`). SQLAlchemy is imported
    only when a database URL is opened.
    """
    if url.strip() == MEMORY_URL:
        return MemoryStore(clock=clock)
    from pbgm.store.sql import SqlStore

    return SqlStore(url, clock=clock)
