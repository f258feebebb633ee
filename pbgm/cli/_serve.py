"""`pbgm serve`: the REST API under gunicorn.

Settings come from `PBGM_*` variables (see `pbgm.api.settings`), the global
`--db` option and the options below, validated before any worker starts. Each
worker builds its own app with `create_app` after the fork, so no database
connection crosses a fork; the schema must already be migrated (`pbgm db
upgrade`). With `PBGM_TLS_CERT` and `PBGM_TLS_KEY` (or the options) gunicorn
serves HTTPS.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from pbgm.api import Settings, create_app, load_settings
from pbgm.cli._app import Env, main, masked, pass_env
from pbgm.errors import ConfigurationError
from pbgm.store.factory import MEMORY_URL

GRACEFUL_TIMEOUT_S = 10


class PbgmServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn running `create_app(settings)` in every worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(prog="pbgm serve")

    def gunicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bind": [self.settings.bind],
            "workers": self.settings.workers,
            "worker_class": "sync",
            "proc_name": "pbgm",
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
        }
        if self.settings.tls_cert and self.settings.tls_key:
            options["certfile"] = self.settings.tls_cert
            options["keyfile"] = self.settings.tls_key
        return options

    def load_config(self) -> None:
        for name, value in self.gunicorn_options().items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return create_app(self.settings)


def serve_settings(env: Env, **options: Any) -> Settings:
    """The environment's settings with the command line's on top, validated."""
    changes = {name: value for name, value in options.items() if value is not None}
    settings = load_settings().replace(database_url=env.db, **changes)
    if settings.database_url.strip() == MEMORY_URL and settings.workers > 1:
        raise ConfigurationError(
            "a `memory://` repository lives in one process: use one worker or a database"
        )
    return settings


@main.command("serve")
@click.option("--bind", help="host:port to listen on. [$PBGM_BIND, default 127.0.0.1:8080]")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes. [$PBGM_WORKERS]")
@click.option("--tls-cert", help="TLS certificate (PEM). [$PBGM_TLS_CERT]")
@click.option("--tls-key", help="TLS private key (PEM). [$PBGM_TLS_KEY]")
@click.option("--keys-dir", help="Token signing keys. [$PBGM_KEYS_DIR]")
@pass_env
def serve(
    env: Env,
    bind: str | None,
    workers: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    keys_dir: str | None,
) -> None:
    """Serve the REST API with gunicorn until interrupted."""
    settings = serve_settings(
        env, bind=bind, workers=workers, tls_cert=tls_cert, tls_key=tls_key, keys_dir=keys_dir
    )
    scheme = "https" if settings.tls_cert else "http"
    click.echo(
        f"pbgm serving {masked(settings.database_url)} on {scheme}://{settings.bind} "
        f"with {settings.workers} worker(s)",
        err=True,
    )
    PbgmServer(settings).run()
