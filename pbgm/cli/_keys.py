"""`pbgm keys generate|rotate|list|prune`: the token signing keys on disk.

The directory is `--keys-dir` (the name `pbgm serve` uses too; `--dir` is its older,
deprecated name), else `$PBGM_KEYS_DIR`, else `keys_dir` of the settings file, else
`./keys`; it is created 0700 and every private key file 0600. Nothing here prints
key material.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from pbgm.auth import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_RETIRE_AFTER, KeyInfo, KeyRing
from pbgm.cli._app import Env, main, pass_env, table


def _remember_old_dir(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta["pbgm_keys_dir"] = value


def _keys_dir(command: Any) -> Any:
    new = click.option(
        "--keys-dir",
        "directory",
        type=click.Path(file_okay=False),
        help="Key directory. [$PBGM_KEYS_DIR, else the settings file, else keys]",
    )
    old = click.option(
        "--dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=_remember_old_dir,
        deprecated="use --keys-dir",
        help="The former name of --keys-dir.",
    )
    return new(old(command))


_DIR = _keys_dir


def _directory(env: Env, flag: str | None) -> Path:
    """`--keys-dir`, else the deprecated `--dir`, else the `keys_dir` setting."""
    given = flag or click.get_current_context().meta.get("pbgm_keys_dir")
    return Path(env.setting("keys_dir", given))


_RETIRE_AFTER = click.option(
    "--retire-after-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_RETIRE_AFTER.total_seconds() / 3600,
    show_default=True,
    help="How long a rotated-out key stays published (longer than any token lifetime).",
)
_ALG = click.option(
    "--alg",
    type=click.Choice(ALGORITHMS),
    default=DEFAULT_ALGORITHM,
    show_default=True,
    help="Signature algorithm of the key.",
)


def _ring(directory: Path, hours: float) -> KeyRing:
    return KeyRing(directory, retire_after=timedelta(hours=hours))


def _emit_key(env: Env, info: KeyInfo, verb: str) -> None:
    env.emit(info.as_dict(), f"{verb} {info.alg} key `{info.kid}` (active)")


@main.group()
def keys() -> None:
    """Signing keys for access tokens (JWT, ES256 or RS256)."""


@keys.command("generate")
@_DIR
@_ALG
@pass_env
def keys_generate(env: Env, directory: str | None, alg: str) -> None:
    """Create the first signing key (refused if an active key exists: rotate instead)."""
    _emit_key(env, KeyRing(_directory(env, directory)).generate(alg), "generated")


@keys.command("rotate")
@_DIR
@click.option(
    "--alg", type=click.Choice(ALGORITHMS), help="Signature algorithm (default: the current key's)."
)
@_RETIRE_AFTER
@pass_env
def keys_rotate(
    env: Env, directory: str | None, alg: str | None, retire_after_hours: float
) -> None:
    """Make a new active key; the old one verifies until its retirement period ends."""
    ring = _ring(_directory(env, directory), retire_after_hours)
    _emit_key(env, ring.rotate(alg), "rotated to")


@keys.command("list")
@_DIR
@_RETIRE_AFTER
@pass_env
def keys_list(env: Env, directory: str | None, retire_after_hours: float) -> None:
    """Every key on disk: kid, algorithm, created, active, retired."""
    ring = _ring(_directory(env, directory), retire_after_hours)
    rows = [info.as_dict() for info in ring.list()]
    env.emit(rows, table(rows, ["kid", "alg", "created_at", "active", "retired_at"]))


@keys.command("prune")
@_DIR
@_RETIRE_AFTER
@pass_env
def keys_prune(env: Env, directory: str | None, retire_after_hours: float) -> None:
    """Delete keys whose retirement period is over."""
    removed = _ring(_directory(env, directory), retire_after_hours).prune()
    env.emit({"removed": list(removed)}, [f"removed `{kid}`" for kid in removed] or ["(none)"])
