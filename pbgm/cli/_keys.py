"""`pbgm keys generate|rotate|list|prune`: the token signing keys on disk.

The directory defaults to `$PBGM_KEYS_DIR`, else `./keys`; it is created 0700 and
every private key file 0600. Nothing here prints key material.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from pbgm.auth import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_RETIRE_AFTER, KeyInfo, KeyRing
from pbgm.cli._app import Env, main, pass_env, table

_DIR = click.option(
    "--dir",
    "directory",
    envvar="PBGM_KEYS_DIR",
    default="keys",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Key directory. [$PBGM_KEYS_DIR]",
)
_RETIRE_AFTER = click.option(
    "--retire-after-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_RETIRE_AFTER.total_seconds() / 3600,
    show_default=True,
    help="How long a rotated-out key stays published (longer than any token lifetime).",
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
@click.option("--alg", type=click.Choice(ALGORITHMS), default=DEFAULT_ALGORITHM, show_default=True)
@pass_env
def keys_generate(env: Env, directory: Path, alg: str) -> None:
    """Create the first signing key (refused if an active key exists: rotate instead)."""
    _emit_key(env, KeyRing(directory).generate(alg), "generated")


@keys.command("rotate")
@_DIR
@click.option("--alg", type=click.Choice(ALGORITHMS), help="Default: the current key's.")
@_RETIRE_AFTER
@pass_env
def keys_rotate(env: Env, directory: Path, alg: str | None, retire_after_hours: float) -> None:
    """Make a new active key; the old one verifies until its retirement period ends."""
    _emit_key(env, _ring(directory, retire_after_hours).rotate(alg), "rotated to")


@keys.command("list")
@_DIR
@_RETIRE_AFTER
@pass_env
def keys_list(env: Env, directory: Path, retire_after_hours: float) -> None:
    """Every key on disk: kid, algorithm, created, active, retired."""
    rows = [info.as_dict() for info in _ring(directory, retire_after_hours).list()]
    env.emit(rows, table(rows, ["kid", "alg", "created_at", "active", "retired_at"]))


@keys.command("prune")
@_DIR
@_RETIRE_AFTER
@pass_env
def keys_prune(env: Env, directory: Path, retire_after_hours: float) -> None:
    """Delete keys whose retirement period is over."""
    removed = _ring(directory, retire_after_hours).prune()
    env.emit({"removed": list(removed)}, [f"removed `{kid}`" for kid in removed] or ["(none)"])
