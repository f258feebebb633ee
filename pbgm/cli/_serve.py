"""`pbgm serve`: the REST API under gunicorn (`pbgm.api.server.PbgmServer`).

Settings come from `PBGM_*` variables (see `pbgm.api.settings`), the global
`--db` option and the options below, validated before any worker starts; a bad
one stops the command with exit status 9 and every problem listed. The schema
must already be migrated (`pbgm db upgrade`). With `PBGM_TLS_CERT` and
`PBGM_TLS_KEY` (or the options) gunicorn serves HTTPS. Flask and gunicorn are
imported only by this command, so the rest of the CLI starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pbgm.cli._app import Env, main, masked, pass_env
from pbgm.errors import ConfigurationError
from pbgm.store.factory import MEMORY_URL

if TYPE_CHECKING:
    from pbgm.api.settings import Settings


def serve_settings(env: Env, **options: Any) -> Settings:
    """The environment's settings with the command line's on top, validated."""
    from pbgm.api.settings import load_settings

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
    from pbgm.api.server import PbgmServer

    scheme = "https" if settings.tls_cert else "http"
    click.echo(
        f"pbgm serving {masked(settings.database_url)} on {scheme}://{settings.bind} "
        f"with {settings.workers} worker(s)",
        err=True,
    )
    PbgmServer(settings).run()
