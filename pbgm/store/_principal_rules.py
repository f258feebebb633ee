"""Rules for users, groups, service accounts and grants, shared by both stores.

Who may act is decided from these records, so both stores check them the same
way before storing: only secret hashes, never a plain password; only known
principal kinds, target kinds and permissions in a grant.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any

from pbgm.auth import is_secret_hash
from pbgm.errors import InvalidInputError
from pbgm.model import Permission
from pbgm.store._common import as_utc, check_id, check_text
from pbgm.store.base import Grant, Group, ServiceAccount, User

PRINCIPAL_KINDS = ("user", "group", "service")
TARGET_KINDS = ("policy", "policy_group")


def check_password_hash(value: str | None) -> None:
    """Only hashes are stored, never a password or secret handed over by mistake."""
    if value is not None and not is_secret_hash(value):
        raise InvalidInputError("expected a hash made by `hash_secret`, not a plain secret")


def check_secret_hash(value: Any) -> str:
    """A service account's new secret hash: required, and a hash."""
    if not isinstance(value, str):
        raise InvalidInputError("expected a hash made by `hash_secret`")
    check_password_hash(value)
    return value


def check_user(user: User, at: datetime) -> User:
    check_id(user.name, "user name")
    check_text(user.display_name, "display name")
    check_password_hash(user.password_hash)
    return replace(user, created_at=as_utc(user.created_at, at))


def check_service_account(account: ServiceAccount, at: datetime) -> ServiceAccount:
    check_id(account.client_id, "client id")
    check_text(account.description, "description")
    check_password_hash(account.secret_hash)
    scopes = tuple(check_id(scope, "scope") for scope in account.scopes)
    return replace(
        account,
        scopes=scopes,
        created_at=as_utc(account.created_at, at),
        token_generation=new_token_generation(),
    )


def new_token_generation() -> str:
    """A fresh `ServiceAccount.token_generation`: 128 random bits, never reused."""
    return secrets.token_urlsafe(16)


def with_enabled(account: ServiceAccount, enabled: bool) -> ServiceAccount:
    """The account enabled or disabled; a change of state starts a new token generation."""
    if bool(enabled) == account.enabled:
        return account
    return replace(account, enabled=bool(enabled), token_generation=new_token_generation())


def check_group(group: Group) -> Group:
    check_id(group.name, "group name")
    check_text(group.description, "description")
    return group


def check_grant(grant: Grant, actor: str, at: datetime) -> Grant:
    """Kinds and permission checked; `created_by` and `created_at` filled in."""
    if grant.principal_kind not in PRINCIPAL_KINDS:
        raise InvalidInputError(f"unknown principal kind `{grant.principal_kind}`")
    if grant.target_kind not in TARGET_KINDS:
        raise InvalidInputError(f"unknown target kind `{grant.target_kind}`")
    try:
        permission = Permission(grant.permission)
    except ValueError:
        raise InvalidInputError(f"unknown permission `{grant.permission}`") from None
    check_id(grant.principal, "grant principal")
    check_id(grant.target, "grant target")
    return replace(
        grant,
        permission=permission,
        created_by=grant.created_by or actor,
        created_at=as_utc(grant.created_at, at),
    )


def enabled_action(kind: str, enabled: bool) -> str:
    return f"{kind}.{'enable' if enabled else 'disable'}"


def grant_details(grant: Grant) -> dict[str, Any]:
    """What the audit log says about a grant."""
    return {
        "principal_kind": grant.principal_kind,
        "principal": grant.principal,
        "target_kind": grant.target_kind,
        "target": grant.target,
        "permission": str(grant.permission),
    }
