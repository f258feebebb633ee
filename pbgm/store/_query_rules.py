"""Rules of the paged and filtered reads (`page_policies`, `search_audit`,
`list_flexoffers`), shared by both stores so that they select the same rows.

The memory store applies the `matches_*` predicates; the SQL store builds the
same conditions in SQL. Both check their arguments here first.
"""

from __future__ import annotations

import json
from datetime import datetime

from pbgm.errors import InvalidInputError
from pbgm.model import PolicyStatus
from pbgm.store._common import MAX_ROW_NUMBER, as_utc, check_text
from pbgm.store.base import AuditEntry, AuditQuery, FlexOfferRecord, PolicyQuery, PolicyRecord

MAX_PAGE = 1000
ORDERS = ("id", "updated")
MAX_SEARCH = 200


def check_page(offset: int, limit: int) -> tuple[int, int]:
    """`offset` from 0 and `limit` from 1 to `MAX_PAGE`, both whole numbers."""
    for value, what in ((offset, "offset"), (limit, "limit")):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInputError(f"`{what}` must be a whole number")
    if not 0 <= offset <= MAX_ROW_NUMBER:
        raise InvalidInputError("`offset` must be 0 or more")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"`limit` must be between 1 and {MAX_PAGE}")
    return offset, limit


def check_policy_query(query: PolicyQuery) -> PolicyQuery:
    if query.order not in ORDERS:
        raise InvalidInputError(f"unknown order `{query.order}`: use `id` or `updated`")
    if query.status is not None and not isinstance(query.status, PolicyStatus):
        raise InvalidInputError(f"unknown policy status `{query.status}`")
    for value, name in ((query.search, "search"), (query.text, "text")):
        if value is not None:
            check_text(value, name)
            if len(value) > MAX_SEARCH:
                raise InvalidInputError(f"`{name}` is longer than {MAX_SEARCH} characters")
    return query


def like_pattern(search: str) -> str:
    """A LIKE pattern (escape character `\\`) for a case-insensitive substring."""
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches_policy(record: PolicyRecord, query: PolicyQuery) -> bool:
    """Whether `record` belongs to the result of `query` (the memory store's filter)."""
    visible = query.visible_groups is None or record.policy_group in query.visible_groups
    if not (visible or record.id in query.visible_ids):
        return False
    wanted = {
        "policy_group": query.policy_group,
        "type": query.policy_type,
        "status": query.status,
        "asset_id": query.asset_id,
    }
    if any(value is not None and getattr(record, key) != value for key, value in wanted.items()):
        return False
    if query.search:
        needle = query.search.lower()
        if needle not in record.id.lower() and needle not in (record.asset_id or "").lower():
            return False
    if query.text:
        document = json.dumps(record.document, ensure_ascii=False)  # holds the id and asset id
        return query.text.lower() in document.lower()
    return True


def check_audit_query(query: AuditQuery) -> AuditQuery:
    for moment in (query.since, query.until):
        if moment is not None and not isinstance(moment, datetime):
            raise InvalidInputError("`since` and `until` must be date-times")
    since = None if query.since is None else as_utc(query.since, query.since)
    until = None if query.until is None else as_utc(query.until, query.until)
    if query.before_id is not None and (
        not isinstance(query.before_id, int) or query.before_id < 1
    ):
        raise InvalidInputError("`before_id` must be a positive whole number")
    return AuditQuery(
        query.actor,
        query.object_type,
        query.object_id,
        query.action_prefix,
        since,
        until,
        query.before_id,
    )


def matches_audit(entry: AuditEntry, query: AuditQuery) -> bool:
    equal = (
        (query.actor, entry.actor),
        (query.object_type, entry.object_type),
        (query.object_id, entry.object_id),
    )
    if any(wanted is not None and wanted != value for wanted, value in equal):
        return False
    if query.action_prefix is not None and not entry.action.startswith(query.action_prefix):
        return False
    if query.since is not None and entry.at < query.since:
        return False
    if query.until is not None and entry.at >= query.until:
        return False
    return query.before_id is None or entry.id < query.before_id


def matches_offer(offer: FlexOfferRecord, policy_ids: object, state: str | None) -> bool:
    if policy_ids is not None and offer.policy_id not in policy_ids:  # type: ignore[operator]
        return False
    return state is None or offer.state == state
