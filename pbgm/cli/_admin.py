"""`pbgm db ...`, `pbgm user ...`, `pbgm group ...` and `pbgm grant`."""

from __future__ import annotations

import click

from pbgm.cli._app import Env, main, masked, pass_env
from pbgm.errors import ConfigurationError, NotFoundError
from pbgm.model import Permission, PolicyGroup
from pbgm.store.base import Grant, Group, Store, User

GLOBAL_GROUP = "*"

# --- db ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The repository schema."""


@db.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create or migrate the database schema to the latest revision."""
    if env.db.startswith("memory://"):
        raise ConfigurationError("a `memory://` repository has no schema to upgrade")
    from pbgm.store.sql.migrate import upgrade

    upgrade(env.db)
    env.emit({"db": masked(env.db), "schema": "head"}, f"{masked(env.db)}: schema up to date")


# --- principals and grants -------------------------------------------------------------


@main.group()
def user() -> None:
    """Users."""


@user.command("add")
@click.argument("name")
@click.option("--display-name", default="")
@pass_env
def user_add(env: Env, name: str, display_name: str) -> None:
    env.store.add_user(User(name, display_name), actor=env.actor)
    env.emit({"user": name}, f"added user `{name}`")


@main.group()
def group() -> None:
    """Groups of users and service accounts."""


@group.command("add")
@click.argument("name")
@click.option("--description", default="")
@pass_env
def group_add(env: Env, name: str, description: str) -> None:
    env.store.add_group(Group(name, description), actor=env.actor)
    env.emit({"group": name}, f"added group `{name}`")


@group.command("add-member")
@click.argument("group_name", metavar="GROUP")
@click.argument("member", metavar="USER")
@pass_env
def group_add_member(env: Env, group_name: str, member: str) -> None:
    env.store.add_member(group_name, member, actor=env.actor)
    env.emit({"group": group_name, "member": member}, f"added `{member}` to `{group_name}`")


@main.command("grant")
@click.argument("principal")
@click.argument("target")
@click.argument("permission", type=click.Choice([p.value for p in Permission]))
@click.option(
    "--principal-kind",
    type=click.Choice(["user", "group", "service"]),
    default="user",
    show_default=True,
    help="What PRINCIPAL names.",
)
@click.option(
    "--target-kind",
    type=click.Choice(["policy", "policy_group"]),
    default="policy",
    show_default=True,
    help="What TARGET names.",
)
@pass_env
def grant(
    env: Env, principal: str, target: str, permission: str, principal_kind: str, target_kind: str
) -> None:
    """Let PRINCIPAL read, write or admin TARGET (each level includes the lower ones).

    `pbgm grant NAME '*' admin --target-kind policy_group` makes a global administrator
    (the REST API's users, groups, accounts and audit log need one); the policy group
    `*` is created on first use.
    """
    with env.store.atomic() as store:
        if target_kind == "policy_group" and target == GLOBAL_GROUP:
            _ensure_global_group(store, env.actor)
        made = store.add_grant(
            Grant(principal_kind, principal, target_kind, target, Permission(permission)),
            actor=env.actor,
        )
    text = f"granted {permission} on {target_kind} `{target}` to {principal_kind} `{principal}`"
    env.emit({"grant_id": made.id}, text)


def _ensure_global_group(store: Store, actor: str) -> None:
    try:
        store.get_policy_group(GLOBAL_GROUP)
    except NotFoundError:
        group = PolicyGroup(GLOBAL_GROUP, description="global administrators")
        store.put_policy_group(group, actor=actor)
