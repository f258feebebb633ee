"""Repositories for the scale and API benchmarks: a SQLite file or a fresh PostgreSQL
database, migrated, filled in bulk with published policies.

`fill` inserts rows built with the store's own mapping rules (`pbgm.store._feed.
decision_text` for what decision points read) in one transaction, as
`benchmarks.pdp_pbgm.fill_store` does for grants: through the `Store` API each
policy would cost milliseconds, and what is measured is loading and following, not
filling. PostgreSQL comes from `PBGM_BENCH_POSTGRES_URL` (default the test server,
`postgresql://postgres@127.0.0.1:5432/test`): a database is made per run and dropped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POSTGRES_URL = os.environ.get(
    "PBGM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CHUNK = 5_000


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of an empty, migrated repository of `backend` (sqlite or postgres)."""
    from pbgm.store.sql.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{directory / f'scale-{uuid.uuid4().hex[:8]}.db'}"
        upgrade(url)
        yield url
        return
    import psycopg
    from sqlalchemy import make_url

    name = f"pbgm_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(POSTGRES_URL).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(url: str, documents: Iterable[dict[str, Any]]) -> int:
    """Insert the documents as published policies (version 1); one decision revision."""
    from sqlalchemy import insert, update
    from sqlalchemy.orm import Session

    from pbgm.store._feed import decision_text
    from pbgm.store.sql import SqlStore
    from pbgm.store.sql.tables import PolicyRow, PolicyVersionRow, PublishedRow, RevisionRow

    store = SqlStore(url)
    now = datetime.now(UTC)
    count = 0
    with Session(store.engine) as session:
        batch: list[dict[str, Any]] = []
        for document in documents:
            batch.append(document)
            if len(batch) == CHUNK:
                count += _insert(session, batch, now, insert, decision_text)
                batch = []
        count += _insert(session, batch, now, insert, decision_text)
        bump = {"revision": RevisionRow.revision + 1}
        bump["decision_revision"] = RevisionRow.decision_revision + 1
        session.execute(update(RevisionRow).values(**bump))
        session.commit()
    store.close()
    del PolicyRow, PolicyVersionRow, PublishedRow
    return count


def _insert(
    session: Any, documents: list[dict[str, Any]], now: datetime, insert: Any, text: Any
) -> int:
    from pbgm.store.sql.tables import PolicyRow, PolicyVersionRow, PublishedRow

    if not documents:
        return 0
    policies, versions, published = [], [], []
    for doc in documents:
        lean, target, windowed, timed = text(doc)
        policies.append(
            {"id": doc["id"], "type": doc["type"], "policy_group": doc["policy_group"]}
            | {"asset_id": doc.get("asset_id"), "status": "published", "version": 1}
            | {"document_format": "pbgm/v1", "document": doc, "published_version": 1}
            | {"created_at": now, "updated_at": now, "updated_by": "bench"}
        )
        versions.append(
            {"policy_id": doc["id"], "version": 1, "document": doc, "author": "bench"}
            | {"created_at": now, "reason": "", "action": "create"}
        )
        published.append(
            {"id": doc["id"], "policy_group": doc["policy_group"], "version": 1}
            | {"document": lean, "target": target, "windowed": windowed, "timed": timed}
        )
    session.execute(insert(PolicyRow), policies)
    session.execute(insert(PolicyVersionRow), versions)
    session.execute(insert(PublishedRow), published)
    return len(documents)
