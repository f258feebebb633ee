"""Explicit mapping between table rows and the store's frozen records.

The rows never leave `pbgm.store.sql`: every call maps them to the records of
`pbgm.store.base` before returning, so callers cannot lazy-load or mutate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pbgm.model import Permission, PolicyGroup, PolicyStatus
from pbgm.store._policy_rules import PolicyKeys
from pbgm.store.base import (
    AuditEntry,
    Grant,
    Group,
    PolicyRecord,
    PolicyVersion,
    ServiceAccount,
    User,
)
from pbgm.store.sql.tables import (
    AuditRow,
    GrantRow,
    GroupRow,
    PolicyGroupRow,
    PolicyRow,
    PolicyVersionRow,
    ServiceAccountRow,
    UserRow,
)

_PRINCIPAL_COLUMNS = {"user": "user_name", "group": "group_name", "service": "client_id"}


def to_record(row: PolicyRow, published: Mapping[str, Any] | None) -> PolicyRecord:
    return PolicyRecord(
        id=row.id,
        type=row.type,
        policy_group=row.policy_group,
        asset_id=row.asset_id,
        version=row.version,
        status=PolicyStatus(row.status),
        document=row.document,
        published_version=row.published_version,
        published_document=published,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def policy_row(record: PolicyRecord, document_format: str) -> PolicyRow:
    return PolicyRow(
        id=record.id,
        type=record.type,
        policy_group=record.policy_group,
        asset_id=record.asset_id,
        status=str(record.status),
        version=record.version,
        document_format=document_format,
        document=record.document,
        published_version=record.published_version,
        created_at=record.created_at,
        updated_at=record.updated_at,
        updated_by=record.updated_by,
    )


def set_policy_keys(row: PolicyRow, keys: PolicyKeys, document: dict[str, Any]) -> None:
    """Copy the document and its indexed fields onto `row`."""
    row.type = keys.type
    row.policy_group = keys.policy_group
    row.asset_id = keys.asset_id
    row.document_format = keys.format
    row.document = document


def to_version(row: PolicyVersionRow) -> PolicyVersion:
    return PolicyVersion(
        policy_id=row.policy_id,
        version=row.version,
        document=row.document,
        author=row.author,
        created_at=row.created_at,
        reason=row.reason,
        action=row.action,
    )


def version_row(version: PolicyVersion) -> PolicyVersionRow:
    return PolicyVersionRow(
        policy_id=version.policy_id,
        version=version.version,
        document=version.document,
        author=version.author,
        created_at=version.created_at,
        reason=version.reason,
        action=version.action,
    )


def to_policy_group(row: PolicyGroupRow) -> PolicyGroup:
    return PolicyGroup(
        id=row.id, policy_combining=row.policy_combining, description=row.description
    )


def to_user(row: UserRow) -> User:
    return User(
        name=row.name,
        display_name=row.display_name,
        enabled=row.enabled,
        password_hash=row.password_hash,
        created_at=row.created_at,
    )


def user_row(user: User) -> UserRow:
    return UserRow(
        name=user.name,
        display_name=user.display_name,
        enabled=bool(user.enabled),
        password_hash=user.password_hash,
        created_at=user.created_at,
    )


def to_group(row: GroupRow) -> Group:
    return Group(name=row.name, description=row.description)


def to_service_account(row: ServiceAccountRow) -> ServiceAccount:
    return ServiceAccount(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        scopes=tuple(row.scopes),
        enabled=row.enabled,
        description=row.description,
        created_at=row.created_at,
        token_generation=row.token_generation,
    )


def service_account_row(account: ServiceAccount) -> ServiceAccountRow:
    return ServiceAccountRow(
        client_id=account.client_id,
        secret_hash=account.secret_hash,
        scopes=list(account.scopes),
        enabled=bool(account.enabled),
        description=account.description,
        created_at=account.created_at,
        token_generation=account.token_generation,
    )


def to_grant(row: GrantRow) -> Grant:
    return Grant(
        principal_kind=row.principal_kind,
        principal=row.principal,
        target_kind=row.target_kind,
        target=row.target,
        permission=Permission(row.permission),
        id=row.id,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def grant_row(grant: Grant) -> GrantRow:
    """A new row; the principal and a policy-group target also fill their foreign keys."""
    row = GrantRow(
        principal_kind=grant.principal_kind,
        principal=grant.principal,
        target_kind=grant.target_kind,
        target=grant.target,
        policy_group_id=grant.target if grant.target_kind == "policy_group" else None,
        permission=str(grant.permission),
        enabled=bool(grant.enabled),
        created_by=grant.created_by,
        created_at=grant.created_at,
    )
    setattr(row, _PRINCIPAL_COLUMNS[grant.principal_kind], grant.principal)
    return row


def to_audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        details=row.details,
    )


def audit_row(
    at: datetime, actor: str, action: str, object_type: str, object_id: str, details: Any
) -> AuditRow:
    return AuditRow(
        at=at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details,
    )
