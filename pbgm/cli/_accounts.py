"""`pbgm service-account ...`: machine principals that get tokens with client credentials.

The secret is generated here, shown once, and stored only as a scrypt hash.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from pbgm.auth import SCOPES, generate_secret, hash_secret
from pbgm.cli._app import Env, main, pass_env
from pbgm.store.base import ServiceAccount


@main.group("service-account")
def service_account() -> None:
    """Service accounts (OAuth2 client id + hashed secret)."""


@service_account.command("add")
@click.argument("client_id")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(sorted(SCOPES)),
    help="Repeat for each scope (default: policies:read).",
)
@click.option("--description", default="", help="What the account is for.")
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the secret to this file (mode 0600) instead of printing it.",
)
@pass_env
def add(
    env: Env, client_id: str, scopes: tuple[str, ...], description: str, secret_file: Path | None
) -> None:
    """Create CLIENT_ID with a fresh secret, shown once."""
    secret = generate_secret()
    account = ServiceAccount(
        client_id, hash_secret(secret), scopes or ("policies:read",), description=description
    )
    env.store.add_service_account(account, actor=env.actor)
    data = {"client_id": client_id, "scopes": list(account.scopes)}
    if secret_file is not None:
        _write_private(secret_file, secret)
        env.emit(
            {**data, "secret_file": str(secret_file)},
            f"added `{client_id}`; secret in {secret_file}",
        )
    else:
        env.emit(
            {**data, "client_secret": secret},
            f"added `{client_id}`\nclient secret (shown once): {secret}",
        )


@service_account.command("list")
@pass_env
def list_accounts(env: Env) -> None:
    """The service accounts, never their secrets."""
    accounts = env.store.list_service_accounts()
    rows = [
        {"client_id": a.client_id, "scopes": list(a.scopes), "enabled": a.enabled} for a in accounts
    ]
    text = "\n".join(
        f"{a.client_id:<32} {'enabled ' if a.enabled else 'disabled'} {' '.join(a.scopes)}"
        for a in accounts
    )
    env.emit({"service_accounts": rows}, text or "no service accounts")


@service_account.command("disable")
@click.argument("client_id")
@pass_env
def disable(env: Env, client_id: str) -> None:
    """Refuse CLIENT_ID's logins and its tokens still in flight."""
    env.store.set_service_account_enabled(client_id, False, actor=env.actor)
    env.emit({"client_id": client_id, "enabled": False}, f"disabled `{client_id}`")


def _write_private(path: Path, secret: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode on open: narrow it
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
