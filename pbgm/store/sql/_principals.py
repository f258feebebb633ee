"""Users, groups, memberships, service accounts and grants in the SQL store."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from pbgm.store import _common as common
from pbgm.store import _principal_rules as principal_rules
from pbgm.store.base import Grant, Group, ServiceAccount, User
from pbgm.store.sql._base import SqlBase
from pbgm.store.sql.mapping import (
    grant_row,
    service_account_row,
    to_grant,
    to_group,
    to_service_account,
    to_user,
    user_row,
)
from pbgm.store.sql.tables import (
    GrantRow,
    GroupRow,
    MembershipRow,
    PolicyGroupRow,
    ServiceAccountRow,
    UserRow,
)

_PRINCIPAL_ROWS: dict[str, Any] = {
    "user": UserRow,
    "group": GroupRow,
    "service": ServiceAccountRow,
}


def _get(session: Session, row_class: Any, key: Any, what: str) -> Any:
    row = session.get(row_class, key)
    if row is None:
        raise common.not_found(what, key)
    return row


class SqlPrincipals(SqlBase):
    """Principal and grant operations of `SqlStore`."""

    # -- users

    def add_user(self, user: User, *, actor: str) -> User:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            user = principal_rules.check_user(user, at)
            if session.get(UserRow, user.name) is not None:
                raise common.already_exists("user", user.name)
            session.add(user_row(user))
            self._audit(session, at, actor, "user.add", "user", user.name, {})
            return user

    def get_user(self, name: str) -> User:
        with self._tx(write=False) as session:
            return to_user(_get(session, UserRow, name, "user"))

    def list_users(self) -> list[User]:
        with self._tx(write=False) as session:
            users = [to_user(row) for row in session.scalars(select(UserRow))]
        return sorted(users, key=lambda u: u.name)

    def set_user_enabled(self, name: str, enabled: bool, *, actor: str) -> User:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            row = _get(session, UserRow, name, "user")
            row.enabled = bool(enabled)
            action = principal_rules.enabled_action("user", enabled)
            self._audit(session, at, actor, action, "user", name, {})
            return to_user(row)

    def set_user_password_hash(self, name: str, password_hash: str, *, actor: str) -> User:
        common.check_id(actor, "actor")
        principal_rules.check_password_hash(password_hash)
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            row = _get(session, UserRow, name, "user")
            row.password_hash = password_hash
            self._audit(session, at, actor, "user.password", "user", name, {})
            return to_user(row)

    # -- groups and memberships

    def add_group(self, group: Group, *, actor: str) -> Group:
        principal_rules.check_group(group)
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            if session.get(GroupRow, group.name) is not None:
                raise common.already_exists("group", group.name)
            session.add(GroupRow(name=group.name, description=group.description))
            self._audit(session, at, actor, "group.add", "group", group.name, {})
            return group

    def get_group(self, name: str) -> Group:
        with self._tx(write=False) as session:
            return to_group(_get(session, GroupRow, name, "group"))

    def list_groups(self) -> list[Group]:
        with self._tx(write=False) as session:
            groups = [to_group(row) for row in session.scalars(select(GroupRow))]
        return sorted(groups, key=lambda g: g.name)

    def add_member(self, group: str, user: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            _get(session, GroupRow, group, "group")
            _get(session, UserRow, user, "user")
            if session.get(MembershipRow, (group, user)) is not None:
                raise common.already_exists(f"member of group `{group}`", user)
            session.add(MembershipRow(group_name=group, user_name=user))
            details = {"user": user}
            self._audit(session, at, actor, "group.add_member", "group", group, details)

    def remove_member(self, group: str, user: str, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            _get(session, MembershipRow, (group, user), f"member of group `{group}`")
            session.execute(
                delete(MembershipRow).where(
                    MembershipRow.group_name == group, MembershipRow.user_name == user
                )
            )
            details = {"user": user}
            self._audit(session, at, actor, "group.remove_member", "group", group, details)

    def groups_of(self, principal: str) -> list[str]:
        """The groups `principal` belongs to; none for an unknown principal."""
        query = select(MembershipRow.group_name).where(MembershipRow.user_name == principal)
        with self._tx(write=False) as session:
            return sorted(session.scalars(query))

    def members_of(self, group: str) -> list[str]:
        query = select(MembershipRow.user_name).where(MembershipRow.group_name == group)
        with self._tx(write=False) as session:
            _get(session, GroupRow, group, "group")
            return sorted(session.scalars(query))

    # -- service accounts

    def add_service_account(self, account: ServiceAccount, *, actor: str) -> ServiceAccount:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            account = principal_rules.check_service_account(account, at)
            if session.get(ServiceAccountRow, account.client_id) is not None:
                raise common.already_exists("service account", account.client_id)
            session.add(service_account_row(account))
            details = {"scopes": list(account.scopes)}
            kind, client_id = "service_account", account.client_id
            self._audit(session, at, actor, "service_account.add", kind, client_id, details)
            return account

    def get_service_account(self, client_id: str) -> ServiceAccount:
        with self._tx(write=False) as session:
            row = _get(session, ServiceAccountRow, client_id, "service account")
            return to_service_account(row)

    def list_service_accounts(self) -> list[ServiceAccount]:
        with self._tx(write=False) as session:
            rows = session.scalars(select(ServiceAccountRow))
            accounts = [to_service_account(row) for row in rows]
        return sorted(accounts, key=lambda a: a.client_id)

    def set_service_account_enabled(
        self, client_id: str, enabled: bool, *, actor: str
    ) -> ServiceAccount:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            row = _get(session, ServiceAccountRow, client_id, "service account")
            changed = principal_rules.with_enabled(to_service_account(row), enabled)
            row.enabled, row.token_generation = changed.enabled, changed.token_generation
            action = principal_rules.enabled_action("service_account", enabled)
            self._audit(session, at, actor, action, "service_account", client_id, {})
            return to_service_account(row)

    def set_service_account_secret(
        self, client_id: str, secret_hash: str, *, actor: str
    ) -> ServiceAccount:
        common.check_id(actor, "actor")
        principal_rules.check_secret_hash(secret_hash)
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)  # what the token endpoint checks
            row = _get(session, ServiceAccountRow, client_id, "service account")
            row.secret_hash = secret_hash
            action = "service_account.rotate"
            self._audit(session, at, actor, action, "service_account", client_id, {})
            return to_service_account(row)

    def delete_service_account(self, client_id: str, *, actor: str) -> None:
        """Delete the account and the grants made to it."""
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            _get(session, ServiceAccountRow, client_id, "service account")
            statement = delete(GrantRow).where(GrantRow.client_id == client_id)
            removed = cast(CursorResult[Any], session.execute(statement))
            session.execute(
                delete(ServiceAccountRow).where(ServiceAccountRow.client_id == client_id)
            )
            details = {"grants_removed": removed.rowcount}
            action = "service_account.delete"
            self._audit(session, at, actor, action, "service_account", client_id, details)

    # -- grants

    def _check_grant_refs(self, session: Session, grant: Grant) -> None:
        """Principals and policy groups must exist; a policy need not exist yet."""
        row_class = _PRINCIPAL_ROWS[grant.principal_kind]
        _get(session, row_class, grant.principal, grant.principal_kind)
        if grant.target_kind == "policy_group":
            _get(session, PolicyGroupRow, grant.target, "policy group")
        same = select(GrantRow.id).where(
            GrantRow.principal_kind == grant.principal_kind,
            GrantRow.principal == grant.principal,
            GrantRow.target_kind == grant.target_kind,
            GrantRow.target == grant.target,
            GrantRow.permission == str(grant.permission),
        )
        if session.execute(same).first() is not None:
            raise common.already_exists("grant", f"{grant.permission} on {grant.target}")

    def add_grant(self, grant: Grant, *, actor: str) -> Grant:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            grant = principal_rules.check_grant(grant, actor, at)
            self._check_grant_refs(session, grant)
            row = grant_row(grant)
            session.add(row)
            session.flush()
            details = principal_rules.grant_details(grant)
            self._audit(session, at, actor, "grant.add", "grant", str(row.id), details)
            return to_grant(row)

    def list_grants(
        self, *, principal: str | None = None, target: str | None = None
    ) -> list[Grant]:
        query = select(GrantRow).order_by(GrantRow.id)
        if principal is not None:
            query = query.where(GrantRow.principal == principal)
        if target is not None:
            query = query.where(GrantRow.target == target)
        with self._tx(write=False) as session:
            return [to_grant(row) for row in session.scalars(query)]

    def _grant(self, session: Session, grant_id: int) -> GrantRow:
        row = session.get(GrantRow, grant_id) if common.positive_int(grant_id) else None
        if row is None:
            raise common.not_found("grant", grant_id)
        return row

    def set_grant_enabled(self, grant_id: int, enabled: bool, *, actor: str) -> Grant:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            row = self._grant(session, grant_id)
            row.enabled = bool(enabled)
            action = principal_rules.enabled_action("grant", enabled)
            self._audit(session, at, actor, action, "grant", str(grant_id), {})
            return to_grant(row)

    def delete_grant(self, grant_id: int, *, actor: str) -> None:
        common.check_id(actor, "actor")
        with self._tx(write=True) as session:
            at = self._begin_change(session, access=True)
            grant = to_grant(self._grant(session, grant_id))
            session.execute(delete(GrantRow).where(GrantRow.id == grant_id))
            details = principal_rules.grant_details(grant)
            self._audit(session, at, actor, "grant.delete", "grant", str(grant_id), details)
