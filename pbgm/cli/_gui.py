"""`pbgm admin create-user`: a user who signs in to the admin GUI (`/admin/`).

The password is prompted for (twice, hidden) or read from standard input with
`--password-stdin`; only its scrypt hash is stored. `--admin` also grants
`admin` on the policy group `*`, which makes a global administrator (the
group is created on first use, as `pbgm grant` does).
"""

from __future__ import annotations

import sys

import click

from pbgm.auth import hash_secret
from pbgm.cli._admin import GLOBAL_GROUP, _ensure_global_group
from pbgm.cli._app import Env, main, pass_env
from pbgm.errors import InvalidInputError
from pbgm.model import Permission
from pbgm.store.base import Grant, User

MIN_PASSWORD = 12


@main.group("admin")
def admin() -> None:
    """The admin GUI's users."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


@admin.command("create-user")
@click.argument("name")
@click.option("--display-name", default="", help="The name shown in the GUI (default: none).")
@click.option("--admin", "make_admin", is_flag=True, help="Also make NAME a global administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_env
def create_user(
    env: Env, name: str, display_name: str, make_admin: bool, password_stdin: bool
) -> None:
    """Create NAME with a password for the admin GUI (prompted, or from stdin)."""
    password_hash = hash_secret(_password(password_stdin))
    with env.store.atomic() as store:
        store.add_user(User(name, display_name, password_hash=password_hash), actor=env.actor)
        if make_admin:
            _ensure_global_group(store, env.actor)
            grant = Grant("user", name, "policy_group", GLOBAL_GROUP, Permission.ADMIN)
            store.add_grant(grant, actor=env.actor)
    role = "a global administrator" if make_admin else "a user without grants"
    env.emit({"user": name, "admin": make_admin}, f"added `{name}`, {role}: sign in at /admin/")
