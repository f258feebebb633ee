"""`pbgm device ...`: the device registry, device groups and device actions.

The registry and groups are read and changed in the repository (`--db`); actions go
through the same `pbgm.devices.DeviceManager` as the REST API: decided by the
`device_qos` policies for the `--actor`, carried out by the operator's network API
named by `--network-config` (default `$PBGM_NETWORK_CONFIG`), recorded and audited.
An action on a device exits 0 when done, 8 when denied, 13 when the network failed or
refused; on a group (`--group`), 0 when every member succeeded, else 13 with each
device's result listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pbgm.cli._app import Env, main, pass_env, table
from pbgm.devices import (
    DeviceManager,
    DeviceSettings,
    GroupResult,
    NetworkHolder,
    connectivity_of,
    device_json,
    group_connectivity,
    group_json,
    read_action,
    read_device,
)
from pbgm.model import utc_now
from pbgm.network import NetworkConfig
from pbgm.policy import load_file
from pbgm.store.base import DeviceGroup

NETWORK_OPTIONS = (
    click.option(
        "--network-config",
        envvar="PBGM_NETWORK_CONFIG",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The operator's network API (YAML/JSON). [$PBGM_NETWORK_CONFIG]",
    ),
    click.option(
        "--policy-group",
        default="device-management",
        show_default=True,
        help="Policy group of the device_qos policies.",
    ),
)


def _network_options(command: Any) -> Any:
    for option in reversed(NETWORK_OPTIONS):
        command = option(command)
    return command


@contextmanager
def _manager(env: Env, network_config: Path | None, policy_group: str) -> Iterator[DeviceManager]:
    config = NetworkConfig.load(network_config) if network_config else None
    settings = DeviceSettings.from_network(config, policy_group=policy_group)
    manager = DeviceManager(env.store, NetworkHolder.of(config), settings=settings)
    try:
        yield manager
    finally:
        manager.close()


@main.group()
def device() -> None:
    """5G field devices: registry, groups, QoS and connectivity under policy."""


# --- the registry ----------------------------------------------------------------------


def _identifiers(
    phone: str | None,
    nai: str | None,
    ipv4: str | None,
    ipv4_private: str | None,
    ipv6: str | None,
) -> dict[str, Any]:
    identifiers: dict[str, Any] = {}
    if phone:
        identifiers["phoneNumber"] = phone
    if nai:
        identifiers["networkAccessIdentifier"] = nai
    if ipv4:
        address, _, port = ipv4.partition(":")
        ipv4_address: dict[str, Any] = {"publicAddress": address}
        if port:
            ipv4_address["publicPort"] = int(port) if port.isdigit() else port
        if ipv4_private:
            ipv4_address["privateAddress"] = ipv4_private
        identifiers["ipv4Address"] = ipv4_address
    if ipv6:
        identifiers["ipv6Address"] = ipv6
    return identifiers


@device.command("add")
@click.argument("device_id", required=False)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A device document (JSON/YAML): id, identifiers, owner, asset_id.",
)
@click.option("--phone", help="E.164 phone number, e.g. +4915100000003")
@click.option("--nai", help="Network access identifier, local@domain")
@click.option("--ipv4", help="Public IPv4 address, optionally :port")
@click.option("--ipv4-private", help="Private IPv4 address")
@click.option("--ipv6", help="IPv6 address")
@click.option("--owner", default="", help="Who answers for the device.")
@click.option("--asset", "asset_id", default=None, help="The asset the device serves.")
@click.option("--description", default="", help="Free text shown with the device.")
@pass_env
def add(
    env: Env,
    device_id: str | None,
    path: Path | None,
    phone: str | None,
    nai: str | None,
    ipv4: str | None,
    ipv4_private: str | None,
    ipv6: str | None,
    owner: str,
    asset_id: str | None,
    description: str,
) -> None:
    """Register a device (every problem of its identifiers is listed)."""
    if path is not None:
        document = load_file(path)
    else:
        document = {
            "id": device_id,
            "identifiers": _identifiers(phone, nai, ipv4, ipv4_private, ipv6),
            "owner": owner,
            "description": description,
        }
        if asset_id is not None:
            document["asset_id"] = asset_id
    made = env.store.add_device(read_device(document), actor=env.actor)
    env.emit(device_json(made), f"added device `{made.id}`")


@device.command("list")
@click.option("--group", default=None, help="Only the members of this device group.")
@click.option("--asset", "asset_id", default=None, help="Only the devices of this asset.")
@pass_env
def list_devices(env: Env, group: str | None, asset_id: str | None) -> None:
    """The devices (of a group, of an asset)."""
    found = env.store.list_devices(group=group, asset_id=asset_id)
    rows = [
        {
            "id": d.id,
            "identifiers": ",".join(sorted(d.identifiers)),
            "asset": d.asset_id or "-",
            "owner": d.owner or "-",
        }
        for d in found
    ]
    env.emit(
        {"devices": [device_json(d) for d in found]},
        table(rows, ["id", "identifiers", "asset", "owner"]),
    )


@device.command("show")
@click.argument("device_id")
@pass_env
def show(env: Env, device_id: str) -> None:
    """A device, its groups and its connectivity as last seen."""
    found = env.store.get_device(device_id)
    data = device_json(found, env.store.device_groups_of(device_id))
    data["connectivity"] = connectivity_of(env.store, device_id, _now())
    env.emit(data, _connectivity_lines(data["connectivity"], header=data))


@device.command("remove")
@click.argument("device_id")
@pass_env
def remove(env: Env, device_id: str) -> None:
    """Forget a device (release its sessions and assignment first)."""
    env.store.delete_device(device_id, actor=env.actor)
    env.emit({"removed": device_id}, f"removed device `{device_id}`")


# --- groups ---------------------------------------------------------------------------


@device.group("group")
def device_group() -> None:
    """Device groups (pbgm's own: CAMARA has none)."""


@device_group.command("create")
@click.argument("group_id")
@click.argument("members", nargs=-1)
@click.option("--description", default="", help="Free text shown with the group.")
@pass_env
def group_create(env: Env, group_id: str, members: tuple[str, ...], description: str) -> None:
    """Create GROUP_ID with the devices MEMBERS (none or more)."""
    made = env.store.add_device_group(DeviceGroup(group_id, description, members), actor=env.actor)
    env.emit(group_json(made), f"created group `{group_id}` with {len(made.members)} device(s)")


@device_group.command("add")
@click.argument("group_id")
@click.argument("devices", nargs=-1, required=True)
@pass_env
def group_add(env: Env, group_id: str, devices: tuple[str, ...]) -> None:
    """Add devices (all or none)."""
    changed = env.store.add_device_members(group_id, list(devices), actor=env.actor)
    env.emit(group_json(changed), f"`{group_id}` has {len(changed.members)} device(s)")


@device_group.command("remove")
@click.argument("group_id")
@click.argument("devices", nargs=-1, required=True)
@pass_env
def group_remove(env: Env, group_id: str, devices: tuple[str, ...]) -> None:
    """Remove devices from the group (the devices stay in the registry)."""
    changed = env.store.remove_device_members(group_id, list(devices), actor=env.actor)
    env.emit(group_json(changed), f"`{group_id}` has {len(changed.members)} device(s)")


@device_group.command("list")
@pass_env
def group_list(env: Env) -> None:
    """The device groups and how many members each has."""
    groups = env.store.list_device_groups()
    rows = [
        {"id": g.id, "members": len(g.members), "description": g.description or "-"} for g in groups
    ]
    env.emit(
        {"groups": [group_json(g) for g in groups]}, table(rows, ["id", "members", "description"])
    )


@device_group.command("show")
@click.argument("group_id")
@pass_env
def group_show(env: Env, group_id: str) -> None:
    """A device group and its members."""
    found = env.store.get_device_group(group_id)
    env.emit(group_json(found), [f"{found.id}: {found.description}", *found.members])


@device_group.command("delete")
@click.argument("group_id")
@pass_env
def group_delete(env: Env, group_id: str) -> None:
    """Delete a device group (its devices stay)."""
    env.store.delete_device_group(group_id, actor=env.actor)
    env.emit({"deleted": group_id}, f"deleted group `{group_id}` (its devices stay)")


# --- actions ------------------------------------------------------------------------------


def _run(
    env: Env,
    ctx: click.Context,
    action: str,
    target: str | None,
    group: str | None,
    network_config: Path | None,
    policy_group: str,
    params: dict[str, Any],
) -> None:
    if (target is None) == (group is None):
        raise click.UsageError("name a DEVICE or a --group, not both")
    checked = read_action(action, params)
    with _manager(env, network_config, policy_group) as manager:
        if group is not None:
            result = manager.act_on_group(action, env.actor, group, **checked)
            env.emit(result.as_json(), _group_lines(result))
            if result.outcome != "all":
                ctx.exit(13)
            return
        assert target is not None
        done = manager.act(action, env.actor, target, **checked)
        lines = [f"{action}: {done.device_id}: done"]
        lines += [f"  {k}: {v}" for k, v in done.data.items()]
        env.emit(done.as_json(), lines)


def _group_lines(result: GroupResult) -> list[str]:
    data = result.as_json()
    lines = [
        f"{result.action} on `{result.group}`: {data['outcome']} "
        f"({len(data['succeeded'])} of {data['members']} succeeded)"
    ]
    lines += [
        f"  {f['device']}: {f['status']}: {f['code']}: {f['message']}" for f in data["failed"]
    ]
    lines += [f"  {f['device']}: skipped: {f['code']}: {f['message']}" for f in data["skipped"]]
    return lines


def _action_command(
    name: str, action: str, help_text: str, options: list[Any], params: Any
) -> None:
    @click.pass_context
    @pass_env
    def command(
        env: Env,
        ctx: click.Context,
        /,
        target: str | None,
        group: str | None,
        network_config: Path | None,
        policy_group: str,
        **given: Any,
    ) -> None:
        _run(env, ctx, action, target, group, network_config, policy_group, params(**given))

    command.__doc__ = help_text
    for option in reversed(options):
        command = option(command)
    command = click.option("--group", default=None, help="Act on every member of this group.")(
        command
    )
    command = click.argument("target", metavar="[DEVICE]", required=False)(command)
    command = _network_options(command)
    device.command(name)(command)


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


_action_command(
    "qos",
    "start",
    "Start a QoS session (Quality-On-Demand) for DEVICE or a --group.",
    [
        click.option("--profile", "qos_profile", default=None, help="Default: the group's."),
        click.option("--duration", "duration_s", type=int, required=True, help="Seconds."),
    ],
    _drop_none,
)
_action_command(
    "extend",
    "extend",
    "Extend the QoS session (capped at the policy's maximum).",
    [click.option("--seconds", "additional_s", type=int, required=True, help="Seconds to add.")],
    _drop_none,
)
_action_command("release", "release", "Release the QoS session.", [], _drop_none)
_action_command(
    "provision",
    "provision",
    "Assign a QoS profile to the device (QoS Provisioning).",
    [click.option("--profile", "qos_profile", default=None, help="Default: the group's.")],
    _drop_none,
)
_action_command("deprovision", "deprovision", "Revoke the QoS profile assignment.", [], _drop_none)
_action_command(
    "monitor", "refresh", "Retrieve reachability, roaming and network type.", [], _drop_none
)
_action_command(
    "subscribe",
    "subscribe",
    "Ask the operator for connectivity notifications.",
    [
        click.option(
            "--kind",
            "kinds",
            multiple=True,
            type=click.Choice(["reachability", "roaming", "network_type"]),
            help="What to be told of (repeatable; default: all three).",
        )
    ],
    lambda kinds: _drop_none(kinds=list(kinds) or None),
)


@device.command("status")
@click.argument("target", metavar="[DEVICE]", required=False)
@click.option("--group", default=None, help="The connectivity of every member of this group.")
@pass_env
def status(env: Env, target: str | None, group: str | None) -> None:
    """Connectivity as last seen (reachable, network type, roaming, QoS session expiry)."""
    if (target is None) == (group is None):
        raise click.UsageError("name a DEVICE or a --group, not both")
    if group is not None:
        view = group_connectivity(env.store, group, _now())
        lines = [
            f"{group}: {view['reachable']} reachable, {view['unreachable']} unreachable, "
            f"{view['unknown']} unknown"
        ]
        for item in view["devices"]:
            lines += _connectivity_lines(item)
        env.emit(view, lines)
        return
    assert target is not None
    view = connectivity_of(env.store, target, _now())
    env.emit(view, _connectivity_lines(view))


def _connectivity_lines(view: dict[str, Any], header: dict[str, Any] | None = None) -> list[str]:
    lines = []
    if header is not None:
        lines.append(
            f"{header['id']}: {', '.join(f'{k}={v}' for k, v in header['identifiers'].items())}"
        )
        lines.append(f"  groups: {', '.join(header.get('groups') or []) or '-'}")
    session = view.get("qos_session")
    qos = (
        f"{session['qos_profile']} until {session['expires_at']} ({session['remaining_s']} s left)"
        if session
        else "none"
    )
    lines.append(
        f"  {view['device']}: reachable={view['reachable']} network={view['network_type']} "
        f"roaming={view['roaming']} qos={qos}"
    )
    return lines


def _now() -> datetime:
    return utc_now()
