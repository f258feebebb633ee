"""Users, groups and memberships, service accounts (a new secret shown once; rotation)
and grants. Global administrators only (the access policy says so); every change
is audited by the store with the signed-in user as actor."""

from __future__ import annotations

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
        try:
            gui.store.add_user(user, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.users", error)
        return _done("gui.users", f"added user `{user.name}`")

    @blueprint.post("/users/<name>/enabled", endpoint="set_user_enabled")
    def set_user_enabled(name: str) -> Response:
        enabled = request.form.get("enabled") == "true"
        if name == gui.actor() and not enabled:
            return _failed("gui.users", "you cannot disable yourself")
        try:
            gui.store.set_user_enabled(name, enabled, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.users", error)
        return _done("gui.users", f"{'enabled' if enabled else 'disabled'} `{name}`")

    @blueprint.post("/users/<name>/password", endpoint="set_password")
    def set_password(name: str) -> Response:
        password = request.form.get("password", "")
        problem = _password_problem(password, request.form.get("password_again", ""))
        if problem:
            return _failed("gui.users", problem)
        try:
            gui.store.set_user_password_hash(name, hash_secret(password), actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.users", error)
        return _done("gui.users", f"set a new password for `{name}` (its other sessions end)")


def _group_routes(blueprint: Blueprint, gui: Gui) -> None:
    @blueprint.get("/groups", endpoint="groups")
    def groups() -> str:
        listed = [(g, gui.store.members_of(g.name)) for g in gui.store.list_groups()]
        return render_template("groups.html", groups=listed, users=gui.store.list_users())

    @blueprint.post("/groups", endpoint="create_group")
    def create_group() -> Response:
        try:
            gui.store.add_group(Group(_form("name"), _form("description")), actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.groups", error)
        return _done("gui.groups", f"added group `{_form('name')}`")

    @blueprint.post("/groups/<name>/members", endpoint="add_member")
    def add_member(name: str) -> Response:
        try:
            gui.store.add_member(name, _form("user"), actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.groups", error)
        return _done("gui.groups", f"added `{_form('user')}` to `{name}`")

    @blueprint.post("/groups/<name>/members/<user>/remove", endpoint="remove_member")
    def remove_member(name: str, user: str) -> Response:
        try:
            gui.store.remove_member(name, user, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.groups", error)
        return _done("gui.groups", f"removed `{user}` from `{name}`")


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

    @blueprint.post("/service-accounts/<client_id>/enabled", endpoint="set_account_enabled")
    def set_account_enabled(client_id: str) -> Response:
        enabled = request.form.get("enabled") == "true"
        try:
            gui.store.set_service_account_enabled(client_id, enabled, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.accounts", error)
        return _done("gui.accounts", f"{'enabled' if enabled else 'disabled'} `{client_id}`")

    @blueprint.post("/service-accounts/<client_id>/delete", endpoint="delete_account")
    def delete_account(client_id: str) -> Response:
        try:
            gui.store.delete_service_account(client_id, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.accounts", error)
        return _done("gui.accounts", f"deleted `{client_id}` and its grants")


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
        try:
            gui.store.add_grant(grant, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.grants", error)
        return _done(
            "gui.grants", f"granted {permission} on `{grant.target}` to `{grant.principal}`"
        )

    @blueprint.post("/grants/<int:grant_id>/enabled", endpoint="set_grant_enabled")
    def set_grant_enabled(grant_id: int) -> Response:
        enabled = request.form.get("enabled") == "true"
        try:
            gui.store.set_grant_enabled(grant_id, enabled, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.grants", error)
        return _done("gui.grants", f"{'enabled' if enabled else 'disabled'} grant {grant_id}")

    @blueprint.post("/grants/<int:grant_id>/delete", endpoint="delete_grant")
    def delete_grant(grant_id: int) -> Response:
        try:
            gui.store.delete_grant(grant_id, actor=gui.actor())
        except PbgmError as error:
            return _failed("gui.grants", error)
        return _done("gui.grants", f"deleted grant {grant_id}")
