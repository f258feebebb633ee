"""What decision points read from the SQL store: the published policies, all of them or
what the change feed says changed (`Store.read_published`, `pbgm.store._feed`).

Built for loading 100,000 policies in well under a second: one query over the narrow
`published_policies` table, written when a policy is published
(`pbgm.store._feed.decision_text`): per policy its id, group, version, the document
without its `content`, its `target` and two flags. No ORM objects and no JSON decoding
here; the decision point decodes the target to index the policy, and the rest only
when a decision first needs it. Everything is read in one snapshot (REPEATABLE READ on
PostgreSQL; a SQLite read transaction is one already), so the revision and the
policies agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from pbgm.store import _feed as feed
from pbgm.store.base import PublishedPolicy, PublishedSet
from pbgm.store.sql._base import SqlBase
from pbgm.store.sql.mapping import to_policy_group
from pbgm.store.sql.tables import DecisionChangeRow, PolicyGroupRow, PublishedRow

_CHANGES = cast(Table, DecisionChangeRow.__table__)
_IN_CHUNK = 5_000  # ids bound in one IN list
_STREAM_BATCH = 10_000  # rows fetched at a time by a full read


class SqlPublished(SqlBase):
    """`read_published` of `SqlStore`."""

    def read_published(
        self, policy_group: str | None = None, *, since: int | None = None
    ) -> PublishedSet:
        with self._tx(write=False, snapshot=True) as session:
            current = self._revisions(session).decisions
            row = session.get(PolicyGroupRow, policy_group) if policy_group else None
            group = None if row is None else to_policy_group(row)
            if since is not None:
                entries = session.execute(
                    select(
                        _CHANGES.c.revision, _CHANGES.c.policy_id, _CHANGES.c.policy_group
                    ).where(_CHANGES.c.revision > since)
                ).all()
                if feed.complete(since, current, len(entries)):
                    ids = feed.changed_ids([tuple(e) for e in entries])
                    found = _published(session, policy_group, ids) if ids else []
                    removed = frozenset(ids) - {p.id for p in found}
                    return PublishedSet(current, False, group, tuple(found), removed)
            return PublishedSet(current, True, group, tuple(_published(session, policy_group)))


def _published(
    session: Session, policy_group: str | None, ids: Sequence[str] | None = None
) -> list[PublishedPolicy]:
    """The published policies of the group (every group when None), of `ids` when given,
    in id order (sorted here, whatever the database's collation)."""
    table = cast(Table, PublishedRow.__table__)
    query = select(
        table.c.id,
        table.c.policy_group,
        table.c.version,
        table.c.document,
        table.c.target,
        table.c.windowed,
        table.c.timed,
    )
    if policy_group is not None:
        query = query.where(table.c.policy_group == policy_group)
    connection = session.connection()  # Core rows: no ORM loading for 100,000 of them
    make = PublishedPolicy._make
    rows: list[PublishedPolicy] = []
    if ids is None:  # streamed: the driver holds one batch of rows at a time, not all
        streamed = connection.execution_options(stream_results=True, yield_per=_STREAM_BATCH)
        rows = [make(row) for row in streamed.execute(query)]
    for start in range(0, len(ids or ()), _IN_CHUNK):
        chunk = list(ids[start : start + _IN_CHUNK])  # type: ignore[index]
        rows += [make(row) for row in connection.execute(query.where(table.c.id.in_(chunk)))]
    rows.sort(key=_first)
    return rows


def _first(row: Any) -> Any:
    return row[0]
