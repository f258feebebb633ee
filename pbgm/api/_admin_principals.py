"""Users, groups, service accounts, grants and the audit log over REST (`/api/v1/admin`).

A service account's secret is made by the server, returned once in the answer to
its creation (`client_secret`) and stored only as a hash; listings never show it.
Grants let a principal `read`, `write` or `admin` a policy or a policy group
(each level includes the lower ones); an `admin` grant on the policy group `*`
makes a global administrator. Names in paths are plain (no `/`); grant ids are
numbers. Every change is audited by the store with the caller as actor.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from pbgm.api._admin_policies import add_policy_routes
from pbgm.api._fields import fields, strings
from pbgm.api._http import actor, integer, json_object, json_response, query
from pbgm.auth import SCOPES, generate_secret, hash_secret
from pbgm.errors import Problem, ValidationError
from pbgm.model import Permission
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import MAX_ROW_ID, AuditEntry, Grant, Group, ServiceAccount, Store, User


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def user_data(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "display_name": user.display_name,
        "enabled": user.enabled,
        "created_at": _iso(user.created_at),
    }


def account_data(account: ServiceAccount) -> dict[str, Any]:
    return {
        "client_id": account.client_id,
        "scopes": list(account.scopes),
        "enabled": account.enabled,
        "description": account.description,
        "created_at": _iso(account.created_at),
    }


def grant_data(grant: Grant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "principal_kind": grant.principal_kind,
        "principal": grant.principal,
        "target_kind": grant.target_kind,
        "target": grant.target,
        "permission": str(grant.permission),
        "enabled": grant.enabled,
        "created_by": grant.created_by,
        "created_at": _iso(grant.created_at),
    }


def audit_data(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "details": entry.details,
    }


def _no_content() -> Response:
    return Response(status=204)


def _scopes(value: list[Any]) -> tuple[str, ...]:
    scopes = strings(value, "$.scopes")
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        known = ", ".join(f"`{s}`" for s in sorted(SCOPES))
        message = f"unknown scope `{unknown[0]}`: use {known}"
        raise ValidationError([Problem("$.scopes", "unknown_scope", message)])
    return scopes


def _grant(body: dict[str, Any]) -> Grant:
    values = fields(
        body,
        required={
            "principal_kind": str,
            "principal": str,
            "target_kind": str,
            "target": str,
            "permission": str,
        },
        optional={"enabled": bool},
    )
    if values["permission"] not in {str(p) for p in Permission}:
        raise ValidationError([Problem("$.permission", "invalid_value", "read, write or admin")])
    return Grant(
        values["principal_kind"],
        values["principal"],
        values["target_kind"],
        values["target"],
        Permission(values["permission"]),
        enabled=values.get("enabled", True),
    )


def add_user_routes(blueprint: Blueprint, store: Store) -> None:
    @blueprint.get("/users", endpoint="list_users")
    def list_users() -> Response:
        query(())
        return json_response({"users": [user_data(u) for u in store.list_users()]})

    @blueprint.post("/users", endpoint="create_user")
    def create_user() -> Response:
        body = fields(json_object(), required={"name": str}, optional={"display_name": str})
        user = User(body["name"], body.get("display_name", ""))
        return json_response(user_data(store.add_user(user, actor=actor())), 201)

    @blueprint.patch("/users/<name>", endpoint="update_user")
    def update_user(name: str) -> Response:
        body = fields(json_object(), required={"enabled": bool})
        return json_response(
            user_data(store.set_user_enabled(name, body["enabled"], actor=actor()))
        )


def add_group_routes(blueprint: Blueprint, store: Store) -> None:
    @blueprint.get("/groups", endpoint="list_groups")
    def list_groups() -> Response:
        query(())
        groups = [{"name": g.name, "description": g.description} for g in store.list_groups()]
        return json_response({"groups": groups})

    @blueprint.post("/groups", endpoint="create_group")
    def create_group() -> Response:
        body = fields(json_object(), required={"name": str}, optional={"description": str})
        group = store.add_group(Group(body["name"], body.get("description", "")), actor=actor())
        return json_response({"name": group.name, "description": group.description}, 201)

    @blueprint.get("/groups/<name>", endpoint="get_group")
    def get_group(name: str) -> Response:
        query(())
        group = store.get_group(name)
        members = store.members_of(name)
        return json_response(
            {"name": group.name, "description": group.description, "members": members}
        )

    @blueprint.post("/groups/<name>/members", endpoint="add_member")
    def add_member(name: str) -> Response:
        body = fields(json_object(), required={"user": str})
        store.add_member(name, body["user"], actor=actor())
        return json_response({"group": name, "user": body["user"]}, 201)

    @blueprint.delete("/groups/<name>/members/<user>", endpoint="remove_member")
    def remove_member(name: str, user: str) -> Response:
        store.remove_member(name, user, actor=actor())
        return _no_content()


def add_account_routes(blueprint: Blueprint, store: Store) -> None:
    @blueprint.get("/service-accounts", endpoint="list_service_accounts")
    def list_service_accounts() -> Response:
        query(())
        accounts = [account_data(a) for a in store.list_service_accounts()]
        return json_response({"service_accounts": accounts})

    @blueprint.post("/service-accounts", endpoint="create_service_account")
    def create_service_account() -> Response:
        body = fields(
            json_object(),
            required={"client_id": str, "scopes": list},
            optional={"description": str},
        )
        secret = generate_secret()
        account = ServiceAccount(
            body["client_id"],
            hash_secret(secret),
            _scopes(body["scopes"]),
            description=body.get("description", ""),
        )
        made = store.add_service_account(account, actor=actor())
        data = {**account_data(made), "client_secret": secret}
        return json_response(data, 201, headers={"Cache-Control": "no-store"})

    @blueprint.patch("/service-accounts/<client_id>", endpoint="update_service_account")
    def update_service_account(client_id: str) -> Response:
        body = fields(json_object(), required={"enabled": bool})
        made = store.set_service_account_enabled(client_id, body["enabled"], actor=actor())
        return json_response(account_data(made))

    @blueprint.delete("/service-accounts/<client_id>", endpoint="delete_service_account")
    def delete_service_account(client_id: str) -> Response:
        store.delete_service_account(client_id, actor=actor())
        return _no_content()


def add_grant_routes(blueprint: Blueprint, store: Store) -> None:
    @blueprint.get("/grants", endpoint="list_grants")
    def list_grants() -> Response:
        values = query(["principal", "target"])
        grants = store.list_grants(principal=values.get("principal"), target=values.get("target"))
        return json_response({"grants": [grant_data(g) for g in grants]})

    @blueprint.post("/grants", endpoint="create_grant")
    def create_grant() -> Response:
        made = store.add_grant(_grant(json_object()), actor=actor())
        return json_response(grant_data(made), 201)

    @blueprint.patch("/grants/<int:grant_id>", endpoint="update_grant")
    def update_grant(grant_id: int) -> Response:
        body = fields(json_object(), required={"enabled": bool})
        made = store.set_grant_enabled(grant_id, body["enabled"], actor=actor())
        return json_response(grant_data(made))

    @blueprint.delete("/grants/<int:grant_id>", endpoint="delete_grant")
    def delete_grant(grant_id: int) -> Response:
        store.delete_grant(grant_id, actor=actor())
        return _no_content()

    @blueprint.get("/audit", endpoint="list_audit")
    def list_audit() -> Response:
        values = query(["limit", "before_id", "object_id"])
        limit = integer(values, "limit", low=1, high=1000) or 100
        entries = store.list_audit(
            limit=limit,
            object_id=values.get("object_id"),
            before_id=integer(values, "before_id", low=1, high=MAX_ROW_ID),
        )
        next_before = entries[-1].id if len(entries) == limit else None
        return json_response(
            {"entries": [audit_data(e) for e in entries], "next_before_id": next_before}
        )


def admin_blueprint(pap: PolicyAdministrationPoint) -> Blueprint:
    """Every administrative endpoint, on one blueprint named `admin`."""
    blueprint = Blueprint("admin", __name__, url_prefix="/api/v1/admin")
    add_policy_routes(blueprint, pap)
    for add in (add_user_routes, add_group_routes, add_account_routes, add_grant_routes):
        add(blueprint, pap.store)
    return blueprint
