"""`pbgm audit list|prune` and `pbgm decisions prune`: reading and bounding the logs.

The repository keeps one log in two parts (`pbgm.store.is_decision_entry`):
the **decision log** (what the API, the relay and the event service decided) and the
**audit log** (everything else: administrative changes, tokens, refusals). Each is
pruned on its own: `--older-than 30d` (`s`, `m`, `h`, `d` or `w`; a bare number is
days), or by default its retention setting (`PBGM_DECISION_RETENTION_DAYS`, 90;
`PBGM_AUDIT_RETENTION_DAYS`, 365; 0 keeps everything). A prune deletes in batches
(writers wait at most one batch) and leaves an `audit.prune` entry saying how many
entries went. Run both daily, e.g. from the systemd timer in `deploy/`.
"""

from __future__ import annotations

import re
from datetime import timedelta

import click

from pbgm.cli._app import Env, main, pass_env, table
from pbgm.model import utc_now
from pbgm.store import AUDIT_LOG, DECISION_LOG

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "": 86_400}
_SETTING = {AUDIT_LOG: "audit_retention_days", DECISION_LOG: "decision_retention_days"}


def parse_age(text: str) -> timedelta:
    """`90d`, `12h`, `2w`, `3600s`, `30m`; a bare number is days."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise click.BadParameter(f"`{text}` is not an age such as `90d`, `12h` or `2w`")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


_OLDER_THAN = click.option(
    "--older-than",
    metavar="AGE",
    help="Delete entries older than AGE (`90d`, `12h`, `2w`; a bare number is days). "
    "Default: the retention setting of the log.",
)


def _prune(env: Env, log: str, older_than: str | None) -> None:
    if older_than is not None:
        age = parse_age(older_than)
    else:
        days = int(env.setting(_SETTING[log]))
        if days == 0:
            variable = f"PBGM_{_SETTING[log].upper()}"
            env.emit({"log": log, "removed": 0, "retention": None}, f"{variable} is 0: kept all")
            return
        age = timedelta(days=days)
    before = utc_now() - age
    removed = env.store.prune_audit(log=log, before=before, actor=env.actor)
    data = {"log": log, "before": before.isoformat(timespec="seconds"), "removed": removed}
    env.emit(data, f"removed {removed} {log} entries older than {data['before']}")


@main.group()
def audit() -> None:
    """The audit log of administrative changes: list and prune."""


@audit.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="How many entries, newest first.",
)
@click.option("--object-id", help="Only entries about this object (a policy id, a user...).")
@pass_env
def audit_list(env: Env, limit: int, object_id: str | None) -> None:
    """The newest entries of the audit and decision logs."""
    rows = [
        {
            "id": e.id,
            "at": e.at.isoformat(timespec="seconds"),
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
        }
        for e in env.store.list_audit(limit=limit, object_id=object_id)
    ]
    env.emit(rows, table(rows, ["id", "at", "actor", "action", "object_type", "object_id"]))


@audit.command("prune")
@_OLDER_THAN
@pass_env
def audit_prune(env: Env, older_than: str | None) -> None:
    """Delete old audit entries (not decisions). [$PBGM_AUDIT_RETENTION_DAYS]"""
    _prune(env, AUDIT_LOG, older_than)


@main.group()
def decisions() -> None:
    """The decision log (what the API, the relay and the event service decided)."""


@decisions.command("prune")
@_OLDER_THAN
@pass_env
def decisions_prune(env: Env, older_than: str | None) -> None:
    """Delete old decision-log entries. [$PBGM_DECISION_RETENTION_DAYS]"""
    _prune(env, DECISION_LOG, older_than)
