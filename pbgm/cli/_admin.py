"""`pbgm db ...`, `pbgm user ...`, `pbgm group ...` and `pbgm grant ...`."""

from __future__ import annotations

import click

from pbgm.cli._app import Env, main, masked, pass_env, table
from pbgm.errors import ConfigurationError, NotFoundError
from pbgm.model import Permission, PolicyGroup
from pbgm.store.base import Grant, Group, Store, User

GLOBAL_GROUP = "*"

# --- db ---------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The repository schema: upgrade it, see where it stands."""


@db.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create or migrate the database schema to the latest revision."""
    if env.db.startswith("memory://"):
        raise ConfigurationError("a `memory://` repository has no schema to upgrade")
    from pbgm.store.sql.migrate import upgrade

    upgrade(env.db)
    env.emit({"db": masked(env.db), "schema": "head"}, f"{masked(env.db)}: schema up to date")


@db.command("current")
@pass_env
def db_current(env: Env) -> None:
    """The schema revision of the database and the newest one pbgm ships (reads only:
    a missing SQLite file is not created). Exit 0 at the newest, 9 otherwise."""
    if env.db.startswith("memory://"):
        raise ConfigurationError("a `memory://` repository has no schema")
    from pbgm.store.sql.migrate import current, head

    at, newest = current(env.db), head()
    data = {"db": masked(env.db), "current": at, "head": newest, "at_head": at == newest}
    state = "at head" if at == newest else "behind: run `pbgm db upgrade`"
    env.emit(data, f"{masked(env.db)}: revision {at or '(none)'}, head {newest} ({state})")
    if at != newest:
        click.get_current_context().exit(9)


@db.command("history")
@pass_env
def db_history(env: Env) -> None:
    """Every schema revision pbgm ships, oldest first."""
    from pbgm.store.sql.migrate import history

    rows = [revision.as_dict() for revision in history()]
    env.emit(rows, table(rows, ["id", "down_revision", "message"]))


# --- principals -------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Users: add and list."""


@user.command("add")
@click.argument("name")
@click.option("--display-name", default="", help="A readable name.")
@pass_env
def user_add(env: Env, name: str, display_name: str) -> None:
    """Add the user NAME."""
    env.store.add_user(User(name, display_name), actor=env.actor)
    env.emit({"user": name}, f"added user `{name}`")


@user.command("list")
@pass_env
def user_list(env: Env) -> None:
    """Every user: name, display name, enabled, groups."""
    store = env.store
    rows = [
        {
            "name": u.name,
            "display_name": u.display_name,
            "enabled": u.enabled,
            "groups": " ".join(store.groups_of(u.name)),
        }
        for u in store.list_users()
    ]
    env.emit(rows, table(rows, ["name", "display_name", "enabled", "groups"]))


@main.group()
def group() -> None:
    """Groups of users and service accounts: add, list, add members."""


@group.command("add")
@click.argument("name")
@click.option("--description", default="", help="What the group is for.")
@pass_env
def group_add(env: Env, name: str, description: str) -> None:
    """Add the group NAME."""
    env.store.add_group(Group(name, description), actor=env.actor)
    env.emit({"group": name}, f"added group `{name}`")


@group.command("list")
@pass_env
def group_list(env: Env) -> None:
    """Every group: name, description, members."""
    store = env.store
    rows = [
        {"name": g.name, "description": g.description, "members": store.members_of(g.name)}
        for g in store.list_groups()
    ]
    shown = [{**row, "members": " ".join(row["members"])} for row in rows]
    env.emit(rows, table(shown, ["name", "description", "members"]))


@group.command("add-member")
@click.argument("group_name", metavar="GROUP")
@click.argument("member", metavar="USER")
@pass_env
def group_add_member(env: Env, group_name: str, member: str) -> None:
    """Add USER (a user or service account) to GROUP."""
    env.store.add_member(group_name, member, actor=env.actor)
    env.emit({"group": group_name, "member": member}, f"added `{member}` to `{group_name}`")


# --- grants -----------------------------------------------------------------------------


class _GrantGroup(click.Group):
    """`pbgm grant add|list|revoke`; `pbgm grant PRINCIPAL TARGET PERMISSION` (the
    form before the subcommands) still means `pbgm grant add ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["add", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_GrantGroup)
def grant() -> None:
    """Grants of read, write or admin on policies and policy groups: add, list, revoke.

    `pbgm grant PRINCIPAL TARGET PERMISSION` is short for `pbgm grant add ...`.
    """


@grant.command("add")
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
@click.option(
    "--allow-missing-target",
    is_flag=True,
    help="Grant on a policy that does not exist yet (it is imported later).",
)
@pass_env
def grant_add(
    env: Env,
    principal: str,
    target: str,
    permission: str,
    principal_kind: str,
    target_kind: str,
    allow_missing_target: bool,
) -> None:
    """Let PRINCIPAL read, write or admin TARGET (each level includes the lower ones).

    The principal and the target must exist (a policy may be missing with
    `--allow-missing-target`). `pbgm grant add NAME '*' admin --target-kind
    policy_group` makes a global administrator (the REST API's users, groups,
    accounts and audit log need one); the policy group `*` is created on first use.
    """
    with env.store.atomic() as store:
        if target_kind == "policy_group" and target == GLOBAL_GROUP:
            _ensure_global_group(store, env.actor)
        elif target_kind == "policy" and not allow_missing_target:
            _require_policy(store, target)
        made = store.add_grant(
            Grant(principal_kind, principal, target_kind, target, Permission(permission)),
            actor=env.actor,
        )
    text = f"granted {permission} on {target_kind} `{target}` to {principal_kind} `{principal}`"
    env.emit({"grant_id": made.id, **_grant_row(made)}, f"{text} (grant {made.id})")


def _require_policy(store: Store, policy_id: str) -> None:
    try:
        store.get_policy(policy_id)
    except NotFoundError:
        raise NotFoundError(
            f"policy `{policy_id}` not found: check the id (`pbgm policy list`), grant on "
            "a policy group with `--target-kind policy_group`, or pass `--allow-missing-target`"
        ) from None


@grant.command("list")
@click.option("--principal", help="Only the grants of this principal.")
@click.option("--target", help="Only the grants on this policy or policy group.")
@pass_env
def grant_list(env: Env, principal: str | None, target: str | None) -> None:
    """Every grant (or those of a principal or on a target), with its id."""
    rows = [_grant_row(g) for g in env.store.list_grants(principal=principal, target=target)]
    columns = ["id", "principal_kind", "principal", "permission", "target_kind", "target"]
    env.emit(rows, table(rows, [*columns, "enabled"]))


@grant.command("revoke")
@click.argument("grant_id", metavar="GRANT_ID", type=click.IntRange(min=1))
@pass_env
def grant_revoke(env: Env, grant_id: int) -> None:
    """Delete the grant GRANT_ID (see `pbgm grant list`)."""
    env.store.delete_grant(grant_id, actor=env.actor)
    env.emit({"revoked": grant_id}, f"revoked grant {grant_id}")


def _grant_row(made: Grant) -> dict[str, object]:
    return {
        "id": made.id,
        "principal_kind": made.principal_kind,
        "principal": made.principal,
        "permission": str(made.permission),
        "target_kind": made.target_kind,
        "target": made.target,
        "enabled": made.enabled,
    }


def _ensure_global_group(store: Store, actor: str) -> None:
    try:
        store.get_policy_group(GLOBAL_GROUP)
    except NotFoundError:
        group = PolicyGroup(GLOBAL_GROUP, description="global administrators")
        store.put_policy_group(group, actor=actor)
