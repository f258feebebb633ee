"""`pbgm policy ...`: author, version, publish and move policies."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pbgm.bundle import check_documents, export_bundle, import_bundle, read_bundle, write_bundle
from pbgm.cli._app import Env, main, pass_env, table
from pbgm.errors import InvalidInputError, Problem, ValidationError
from pbgm.model import PolicyStatus
from pbgm.pap import checked_document
from pbgm.policy import canonical_json, load_file

# --- policy -------------------------------------------------------------------------------


@main.group()
def policy() -> None:
    """Author, version, publish and move policies."""


@policy.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--no-publish", is_flag=True, help="Store new versions as drafts.")
@click.option(
    "--reason", default="bundle import", show_default=True, help="Why, for the version history."
)
@click.option("--quiet", is_flag=True, help="No progress display; only the summary.")
@pass_env
def policy_import(
    env: Env, path: Path, dry_run: bool, no_publish: bool, reason: str, quiet: bool
) -> None:
    """Import a bundle (file or directory), all or nothing."""
    started = time.monotonic()
    with _progress(env, quiet) as phases:
        bundle = read_bundle(path, phases)
        plan = import_bundle(
            env.store,
            bundle,
            actor=env.actor,
            dry_run=dry_run,
            publish=not no_publish,
            reason=reason,
            phases=phases,
        )
    seconds = time.monotonic() - started
    changes = [{"kind": c.kind, "key": c.key, "action": c.action} for c in plan.changes]
    data = {
        "dry_run": plan.dry_run,
        "publish": plan.publish,
        "revision": plan.revision,
        "counts": plan.counts(),
        "seconds": round(seconds, 3),
        "phases": {name: round(s, 3) for name, s in phases.seconds.items()},
        "changes": changes,
    }
    head = "dry run, nothing changed:" if dry_run else f"imported (revision {plan.revision}):"
    listed = plan.changed if len(plan.changed) <= LISTED else ()
    lines = [head, *(f"  {c.action:<9} {c.kind:<12} {c.key}" for c in listed)]
    if len(plan.changed) > LISTED:
        lines.append(f"  {len(plan.changed):,} changes, not listed (`--json` lists them)")
    lines.append("  " + ", ".join(f"{name} {s:.1f} s" for name, s in phases.seconds.items()))
    rate = len(plan.changes) / max(seconds, 1e-9)
    lines.append(f"  {len(plan.changes):,} in {seconds:.1f} s ({rate:,.0f}/s)")
    lines.append("  " + ", ".join(f"{n:,} {action}" for action, n in plan.counts().items()))
    env.emit(data, lines)


PROGRESS_THRESHOLD = 50
"""Items a phase must have for its progress bar to be shown."""
LISTED = 200
"""Changes listed one per line; beyond, the summary alone (`--json` has them all)."""


class _Phases:
    """The `phases` callback of an import: the seconds each phase took, in order, and a
    progress bar per phase on stderr when `show` (reading, validating, planning,
    writing; each with its own count and rate, for a phase of at least
    `PROGRESS_THRESHOLD` items)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.seconds: dict[str, float] = {}
        self._phase, self._since = "", 0.0
        self._bar: Any = None

    def __call__(self, phase: str, done: int, of: int) -> None:
        if phase != self._phase:
            self.finish()
            self._phase, self._since = phase, time.monotonic()
            if self.show and of >= PROGRESS_THRESHOLD:
                self._bar = click.progressbar(
                    length=of, label=f"importing: {phase:<10}", file=sys.stderr, show_pos=True
                )
                self._bar.render_progress()
        if self._bar is not None:
            self._bar.update(done - self._bar.pos)

    def finish(self) -> None:
        if self._phase:
            self.seconds[self._phase] = time.monotonic() - self._since
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None


@contextmanager
def _progress(env: Env, quiet: bool) -> Iterator[_Phases]:
    """The phases of an import, with progress bars unless `--json` or `--quiet`."""
    phases = _Phases(show=not (env.as_json or quiet))
    try:
        yield phases
    finally:
        phases.finish()


@policy.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--group", "policy_group", help="Only this policy group.")
@click.option("--no-principals", is_flag=True, help="Leave out users, groups and grants.")
@pass_env
def policy_export(env: Env, path: Path, policy_group: str | None, no_principals: bool) -> None:
    """Export to a bundle file (.json/.yaml) or directory, canonically."""
    bundle = export_bundle(
        env.store, policy_group=policy_group, include_principals=not no_principals
    )
    write_bundle(bundle, path)
    env.emit(
        {"path": str(path), "policies": len(bundle.policies)},
        f"exported {len(bundle.policies)} policies to {path}",
    )


@policy.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@pass_env
def policy_validate(env: Env, files: tuple[Path, ...]) -> None:
    """Validate policy files or bundle directories; list every problem."""
    problems: list[Problem] = []
    for file in files:
        problems += _problems_in(file)
    if problems:
        raise ValidationError(problems)
    env.emit({"valid": True, "files": [str(f) for f in files]}, f"{len(files)} file(s) valid")


def _problems_in(path: Path) -> list[Problem]:
    try:
        if path.is_dir():
            check_documents(read_bundle(path))
        else:
            checked_document(load_file(path))
    except ValidationError as error:
        prefix = f"{path}/" if path.is_dir() else f"{path}:"
        return [Problem(prefix + p.path, p.code, p.message) for p in error.problems]
    except InvalidInputError as error:
        return [Problem(str(path), error.code, error.message)]
    return []


@policy.command("list")
@click.option("--group", "policy_group", help="Only this policy group.")
@click.option("--type", "policy_type", help="Only this policy type, e.g. operational_limits.")
@click.option(
    "--status", type=click.Choice([s.value for s in PolicyStatus]), help="Only in this state."
)
@pass_env
def policy_list(
    env: Env, policy_group: str | None, policy_type: str | None, status: str | None
) -> None:
    """List policies (latest versions)."""
    records = env.store.list_policies(
        policy_group=policy_group,
        policy_type=policy_type,
        status=PolicyStatus(status) if status else None,
    )
    rows = [
        {
            "id": r.id,
            "type": r.type,
            "policy_group": r.policy_group,
            "asset_id": r.asset_id,
            "version": r.version,
            "status": str(r.status),
            "published_version": r.published_version,
        }
        for r in records
    ]
    env.emit(rows, table(rows, ["id", "type", "policy_group", "version", "status"]))


@policy.command("show")
@click.argument("policy_id")
@click.option("--version", type=int, help="A version from the history (default: latest).")
@pass_env
def policy_show(env: Env, policy_id: str, version: int | None) -> None:
    """Print a policy document (canonical JSON)."""
    if version is None:
        document = env.store.get_policy(policy_id).document
    else:
        document = env.store.get_policy_version(policy_id, version).document
    if env.as_json:
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        click.echo(canonical_json(document), nl=False)


@policy.command("history")
@click.argument("policy_id")
@pass_env
def policy_history(env: Env, policy_id: str) -> None:
    """The versions of a policy: who, when, why."""
    rows = [
        {
            "version": v.version,
            "action": v.action,
            "author": v.author,
            "created_at": v.created_at.isoformat(timespec="seconds"),
            "reason": v.reason,
        }
        for v in env.store.policy_versions(policy_id)
    ]
    env.emit(rows, table(rows, ["version", "action", "author", "created_at", "reason"]))


@policy.command("diff")
@click.argument("policy_id")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@pass_env
def policy_diff(env: Env, policy_id: str, v1: int, v2: int) -> None:
    """Unified diff between two versions."""
    text = env.pap.diff(policy_id, v1, v2)
    env.emit({"diff": text}, text.rstrip("\n") or "(no difference)")


def _record_out(env: Env, record: Any, verb: str) -> None:
    data = {
        "id": record.id,
        "version": record.version,
        "status": str(record.status),
        "published_version": record.published_version,
    }
    env.emit(data, f"{verb} `{record.id}`: version {record.version}, {record.status}")


@policy.command("rollback")
@click.argument("policy_id")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why, for the version history.")
@pass_env
def policy_rollback(env: Env, policy_id: str, version: int, reason: str) -> None:
    """New version equal to VERSION (history kept; published stays published)."""
    record = env.pap.rollback(policy_id, version, actor=env.actor, reason=reason)
    _record_out(env, record, "rolled back")


@policy.command("publish")
@click.argument("policy_id")
@click.option("--version", type=int, help="The version to publish (default: the latest).")
@click.option("--reason", default="", help="Why, for the version history.")
@pass_env
def policy_publish(env: Env, policy_id: str, version: int | None, reason: str) -> None:
    """Serve and evaluate a version of the policy."""
    record = env.pap.publish(policy_id, actor=env.actor, version=version, reason=reason)
    _record_out(env, record, "published")


@policy.command("retire")
@click.argument("policy_id")
@click.option("--reason", default="", help="Why, for the version history.")
@pass_env
def policy_retire(env: Env, policy_id: str, reason: str) -> None:
    """Stop serving and evaluating the policy."""
    _record_out(env, env.pap.retire(policy_id, actor=env.actor, reason=reason), "retired")
