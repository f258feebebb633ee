"""Policies created in bulk (`Store.create_policies`): the rows that `create_policy` and
`set_policy_status` write one call at a time, written as one multi-row INSERT per table.

Each created policy counts as one change (and one more when published), as the calls one
by one would: the revision moves by that many at once; each gets its audit entries
(`policy.create`, `policy.publish`), and each publish its entry in the change feed, with
consecutive decision revisions. The caller holds the writers' lock (`_begin_change`
moved the revision by one already).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, update
from sqlalchemy.orm import Session

from pbgm.store import _common as common
from pbgm.store import _feed as feed
from pbgm.store import _policy_rules as policy_rules
from pbgm.store._policy_rules import PolicyKeys
from pbgm.store.sql.tables import (
    AuditRow,
    DecisionChangeRow,
    PolicyRow,
    PolicyVersionRow,
    PublishedRow,
    RevisionRow,
)

_REVISION = cast(Table, RevisionRow.__table__)
CHUNK = 2_000


def insert_created(
    session: Session,
    checked: list[tuple[dict[str, Any], PolicyKeys]],
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


def _insert(
    session: Session,
    part: list[tuple[dict[str, Any], PolicyKeys]],
    at: datetime,
    actor: str,
    reason: str,
    publish: bool,
    revision: int,
) -> None:
    policies, versions, published, audit, changes = [], [], [], [], []
    created = common.to_json(policy_rules.with_reason({"version": 1}, reason))
    for offset, (doc, keys) in enumerate(part):
        status = "published" if publish else "draft"
        policies.append(
            {"id": keys.id, "type": keys.type, "policy_group": keys.policy_group}
            | {"asset_id": keys.asset_id, "status": status, "version": 1}
            | {"document_format": keys.format, "document": doc}
            | {"published_version": 1 if publish else None}
            | {"created_at": at, "updated_at": at, "updated_by": actor}
        )
        versions.append(
            {"policy_id": keys.id, "version": 1, "document": doc, "author": actor}
            | {"created_at": at, "reason": reason, "action": "create"}
        )
        audit.append(_audit(at, actor, "policy.create", keys.id, created))
        if publish:
            text, target, windowed, timed = feed.decision_text(doc)
            published.append(
                {"id": keys.id, "policy_group": keys.policy_group, "version": 1}
                | {"document": text, "target": target, "windowed": windowed, "timed": timed}
            )
            audit.append(_audit(at, actor, "policy.publish", keys.id, created))
            changes.append(
                {"revision": revision + offset, "policy_id": keys.id, "policy_group": None}
            )
    session.execute(insert(PolicyRow), policies)
    session.execute(insert(PolicyVersionRow), versions)
    if publish:
        session.execute(insert(PublishedRow), published)
        session.execute(insert(DecisionChangeRow), changes)
    session.execute(insert(AuditRow), audit)


def _audit(at: datetime, actor: str, action: str, policy_id: str, details: Any) -> dict[str, Any]:
    return {"at": at, "actor": actor, "action": action, "object_type": "policy"} | {
        "object_id": policy_id,
        "details": details,
    }
