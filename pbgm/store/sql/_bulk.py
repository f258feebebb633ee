"""Policies created in bulk (`Store.create_policies`): the rows that `create_policy` and
`set_policy_status` write one call at a time, written as one multi-row INSERT per table.

Each created policy counts as one change (and one more when published), as the calls one
by one would: the revision moves by that many at once; each gets its audit entries
(`policy.create`, `policy.publish`), and each publish its entry in the change feed, with
consecutive decision revisions. The caller holds the writers' lock (`_begin_change`
moved the revision by one already).

The rows are Core inserts, one `executemany` per table and chunk; each document is
written out once (`_common.json_copy`) and that text stored in both the policy and its
first version, rather than encoded again by the JSON columns' bind processing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, Table, Text, bindparam, delete, insert, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _policy_rules as policy_rules
from pbgm.store._policy_rules import PolicyKeys
from pbgm.store.sql.listen import notify_decisions
from pbgm.store.sql.tables import (
    AuditRow,
    DecisionChangeRow,
    PolicyRow,
    PolicyVersionRow,
    PublishedRow,
    RevisionRow,
)

_REVISION = cast(Table, RevisionRow.__table__)
_TABLES = {
    row: cast(Table, row.__table__)
    for row in (PolicyRow, PolicyVersionRow, PublishedRow, DecisionChangeRow, AuditRow)
}
CHUNK = 2_000


def insert_created(
    session: Session,
    checked: list[tuple[dict[str, Any], str, PolicyKeys]],
    at: datetime,
    actor: str,
    reason: str,
    publish: bool,
) -> None:
    changes = len(checked) * (2 if publish else 1)
    values: dict[str, Any] = {"revision": _REVISION.c.revision + (changes - 1)}
    if publish:
        values["decision_revision"] = _REVISION.c.decision_revision + len(checked)
    decision = session.execute(
        update(_REVISION)
        .where(_REVISION.c.id == 1)
        .values(**values)
        .returning(_REVISION.c.decision_revision)
    ).scalar_one()
    first = decision - len(checked) + 1
    for start in range(0, len(checked), CHUNK):
        part = checked[start : start + CHUNK]
        _insert(session, part, at, actor, reason, publish, first + start)
    if publish:
        old = DecisionChangeRow.revision <= decision - feed.FEED_LENGTH
        session.execute(delete(DecisionChangeRow).where(old))
        notify_decisions(session, decision)


def _insert(
    session: Session,
    part: list[tuple[dict[str, Any], str, PolicyKeys]],
    at: datetime,
    actor: str,
    reason: str,
    publish: bool,
    revision: int,
) -> None:
    policies, versions, published, audit, changes = [], [], [], [], []
    created = common.to_json(policy_rules.with_reason({"version": 1}, reason))
    for offset, (doc, text, keys) in enumerate(part):
        status = "published" if publish else "draft"
        policies.append(
            {"id": keys.id, "type": keys.type, "policy_group": keys.policy_group}
            | {"asset_id": keys.asset_id, "status": status, "version": 1}
            | {"document_format": keys.format, "document_text": text}
            | {"published_version": 1 if publish else None}
            | {"created_at": at, "updated_at": at, "updated_by": actor}
        )
        versions.append(
            {"policy_id": keys.id, "version": 1, "document_text": text, "author": actor}
            | {"created_at": at, "reason": reason, "action": "create"}
        )
        audit.append(_audit(at, actor, "policy.create", keys.id, created))
        if publish:
            lean, target, windowed, timed = feed.decision_text(doc)
            published.append(
                {"id": keys.id, "policy_group": keys.policy_group, "version": 1}
                | {"document": lean, "target": target, "windowed": windowed, "timed": timed}
            )
            audit.append(_audit(at, actor, "policy.publish", keys.id, created))
            changes.append(
                {"revision": revision + offset, "policy_id": keys.id, "policy_group": None}
            )
    connection = session.connection()  # Core statements: no ORM bookkeeping per row
    _write(connection, _TABLES[PolicyRow], policies)
    _write(connection, _TABLES[PolicyVersionRow], versions)
    if publish:
        _write(connection, _TABLES[PublishedRow], published)
        _write(connection, _TABLES[DecisionChangeRow], changes)
    _write(connection, _TABLES[AuditRow], audit)


def _write(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """The rows into `table`: COPY on PostgreSQL (no statement per row), one
    executemany elsewhere. A row's `document_text` is its JSON `document` written out
    already; other JSON values are written out here, each object once (the audit
    entries of a chunk share theirs)."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        document = {"document": bindparam("document_text", type_=Text())}
        statement = insert(table).values(document) if "document_text" in rows[0] else insert(table)
        connection.execute(statement, rows)
        return
    keys = list(rows[0])
    columns = [table.c["document" if key == "document_text" else key] for key in keys]
    as_json = [
        isinstance(c.type, JSON | JSONB) and k != "document_text"
        for c, k in zip(columns, keys, strict=True)
    ]
    written: dict[int, tuple[Any, str]] = {}  # id -> (the object, kept alive; its text)

    def text(value: Any) -> str | None:
        if value is None:
            return None
        if id(value) not in written:
            written[id(value)] = (value, json.dumps(value))
        return written[id(value)][1]

    copy_rows(
        connection,
        table.name,
        [column.name for column in columns],
        (
            [text(row[k]) if encode else row[k] for k, encode in zip(keys, as_json, strict=True)]
            for row in rows
        ),
    )


def copy_rows(
    connection: Connection, table: str, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """`rows` (values in the order of `names`) into `table` with PostgreSQL's COPY, in
    the connection's transaction: no statement per row, each row written by psycopg's
    C code. `table` and `names` are our own tables' names, never input."""
    raw = connection.connection.driver_connection
    assert raw is not None
    columns = ", ".join(names)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _audit(at: datetime, actor: str, action: str, policy_id: str, details: Any) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "object_type": "policy"} | {
        "object_id": policy_id,
        "details": details,
    }
