"""Users, groups and memberships, service accounts (a new secret shown once; rotation)
and grants. Global administrators only (the access policy says so); every change
is audited by the store with the signed-in user as actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pbgm.auth import SCOPES, generate_secret, hash_secret
from pbgm.errors import PbgmError
from pbgm.model import Permission
from pbgm.store.base import Grant, Group, ServiceAccount, User
from pbgm_admin._gui import Gui

MIN_PASSWORD = 12


def _password_problem(password: str, repeated: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if password != repeated:
        return "the two passwords differ"
    return None


def _done(endpoint: str, message: str) -> Response:
    flash(message, "success")
    return redirect(url_for(endpoint))


def _failed(endpoint: str, error: PbgmError | str) -> Response:
    flash(error if isinstance(error, str) else error.message, "error")
    return redirect(url_for(endpoint))


def _form(name: str) -> str:
    return request.form.get(name, "").strip()


def _apply(endpoint: str, change: Callable[[], object], message: str) -> Response:
    """Make one change of the store, then back to `endpoint` saying what happened."""
    try:
        change()
    except PbgmError as error:
        return _failed(endpoint, error)
    return _done(endpoint, message)


def _set_enabled(endpoint: str, change: Callable[[bool], object], label: str) -> Response:
    """Enable or disable what `change` sets, as the form's `enabled` says (`true` or not)."""
    enabled = request.form.get("enabled") == "true"
    message = f"{'enabled' if enabled else 'disabled'} {label}"
    return _apply(endpoint, lambda: change(enabled), message)


def add_routes(blueprint: Blueprint, gui: Gui) -> None:
    _user_routes(blueprint, gui)
    _group_routes(blueprint, gui)
    _account_routes(blueprint, gui)
    _grant_routes(blueprint, gui)


def _user_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/users", endpoint="users")
    def users() -> str:
        listed = [(u, gui.store.groups_of(u.name)) for u in gui.store.list_users()]
        return render_template("users.html", users=listed, minimum=MIN_PASSWORD)

    @blueprint.post("/users", endpoint="create_user")
    def create_user() -> Response:
        password = request.form.get("password", "")
        problem = (
            _password_problem(password, request.form.get("password_again", ""))
            if password
            else None
        )
        if problem:
            return _failed("gui.users", problem)
        user = User(
            _form("name"),
            _form("display_name"),
            password_hash=hash_secret(password) if password else None,
        )
        added = f"added user `{user.name}`"
        return _apply("gui.users", lambda: gui.store.add_user(user, actor=gui.actor()), added)

    @blueprint.post("/users/<name>/enabled", endpoint="set_user_enabled")
    def set_user_enabled(name: str) -> Response:
        if name == gui.actor() and request.form.get("enabled") != "true":
            return _failed("gui.users", "you cannot disable yourself")
        return _set_enabled(
            "gui.users",
            lambda enabled: gui.store.set_user_enabled(name, enabled, actor=gui.actor()),
            f"`{name}`",
        )

    @blueprint.post("/users/<name>/password", endpoint="set_password")
    def set_password(name: str) -> Response:
        password = request.form.get("password", "")
        problem = _password_problem(password, request.form.get("password_again", ""))
        if problem:
            return _failed("gui.users", problem)
        return _apply(
            "gui.users",
            lambda: gui.store.set_user_password_hash(
                name, hash_secret(password), actor=gui.actor()
            ),
            f"set a new password for `{name}` (its other sessions end)",
        )


def _group_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/groups", endpoint="groups")
    def groups() -> str:
        listed = [(g, gui.store.members_of(g.name)) for g in gui.store.list_groups()]
        return render_template("groups.html", groups=listed, users=gui.store.list_users())

    @blueprint.post("/groups", endpoint="create_group")
    def create_group() -> Response:
        group = Group(_form("name"), _form("description"))
        return _apply(
            "gui.groups",
            lambda: gui.store.add_group(group, actor=gui.actor()),
            f"added group `{group.name}`",
        )

    @blueprint.post("/groups/<name>/members", endpoint="add_member")
    def add_member(name: str) -> Response:
        user = _form("user")
        return _apply(
            "gui.groups",
            lambda: gui.store.add_member(name, user, actor=gui.actor()),
            f"added `{user}` to `{name}`",
        )

    @blueprint.post("/groups/<name>/members/<user>/remove", endpoint="remove_member")
    def remove_member(name: str, user: str) -> Response:
        return _apply(
            "gui.groups",
            lambda: gui.store.remove_member(name, user, actor=gui.actor()),
            f"removed `{user}` from `{name}`",
        )


def _secret_page(client_id: str, secret: str, what: str) -> tuple[str, int, dict[str, str]]:
    page = render_template("secret.html", client_id=client_id, secret=secret, what=what)
    return page, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _account_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/service-accounts", endpoint="accounts")
    def accounts() -> str:
        return render_template(
            "accounts.html", accounts=gui.store.list_service_accounts(), scopes=sorted(SCOPES)
        )

    @blueprint.post("/service-accounts", endpoint="create_account")
    def create_account() -> Response | tuple[str, int, dict[str, str]]:
        scopes = tuple(s for s in request.form.getlist("scopes") if s in SCOPES)
        if not scopes:
            return _failed("gui.accounts", "choose at least one scope")
        secret = generate_secret()
        account = ServiceAccount(
            _form("client_id"), hash_secret(secret), scopes, description=_form("description")
        )
        try:
            gui.store.add_service_account(account, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.accounts", error)
        return _secret_page(account.client_id, secret, "created")

    @blueprint.post("/service-accounts/<client_id>/rotate", endpoint="rotate_account")
    def rotate_account(client_id: str) -> Response | tuple[str, int, dict[str, str]]:
        secret = generate_secret()
        try:
            gui.store.set_service_account_secret(client_id, hash_secret(secret), actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.accounts", error)
        return _secret_page(client_id, secret, "rotated")

    _switch_routes(
        blueprint,
        "gui.accounts",
        "/service-accounts/<client_id>",
        ("set_account_enabled", "delete_account"),
        lambda client_id, on: gui.store.set_service_account_enabled(
            client_id, on, actor=gui.actor()
        ),
        lambda client_id: gui.store.delete_service_account(client_id, actor=gui.actor()),
        "`{}`",
        "deleted {} and its grants",
    )


def _grant_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/grants", endpoint="grants")
    def grants() -> str:
        principal = request.args.get("principal") or None
        target = request.args.get("target") or None
        listed = gui.store.list_grants(principal=principal, target=target)
        return render_template(
            "grants.html",
            grants=listed,
            permissions=[str(p) for p in Permission],
            groups=gui.all_groups(),
            principal=principal or "",
            target=target or "",
        )

    @blueprint.post("/grants", endpoint="create_grant")
    def create_grant() -> Response:
        permission = _form("permission")
        if permission not in {str(p) for p in Permission}:
            return _failed("gui.grants", "choose read, write or admin")
        grant = Grant(
            _form("principal_kind"),
            _form("principal"),
            _form("target_kind"),
            _form("target"),
            Permission(permission),
        )
        return _apply(
            "gui.grants",
            lambda: gui.store.add_grant(grant, actor=gui.actor()),
            f"granted {permission} on `{grant.target}` to `{grant.principal}`",
        )

    _switch_routes(
        blueprint,
        "gui.grants",
        "/grants/<int:grant_id>",
        ("set_grant_enabled", "delete_grant"),
        lambda grant_id, on: gui.store.set_grant_enabled(grant_id, on, actor=gui.actor()),
        lambda grant_id: gui.store.delete_grant(grant_id, actor=gui.actor()),
        "grant {}",
        "deleted {}",
    )


def _switch_routes(
    blueprint: Blueprint,
    page: str,
    rule: str,
    endpoints: tuple[str, str],
    set_enabled: Callable[[Any, bool], object],
    delete: Callable[[Any], object],
    label: str,
    deleted: str,
) -> None:
    """`<rule>/enabled` and `<rule>/delete` for what the rule's one argument names
    (a service account, a grant); both go back to `page`."""

    def switch(**named: Any) -> Response:
        (key,) = named.values()
        return _set_enabled(page, lambda on: set_enabled(key, on), label.format(key))

    def remove(**named: Any) -> Response:
        (key,) = named.values()
        return _apply(page, lambda: delete(key), deleted.format(label.format(key)))

    blueprint.add_url_rule(f"{rule}/enabled", endpoints[0], switch, methods=["POST"])
    blueprint.add_url_rule(f"{rule}/delete", endpoints[1], remove, methods=["POST"])
