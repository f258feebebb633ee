"""`pbgm serve`: the REST API under gunicorn (`pbgm.api.server.PbgmServer`).

Every setting comes from the first of: a flag (the options below, `--set
NAME=VALUE` for any setting, the global `--db`), a `PBGM_*` variable, the settings
file (`--config` or `$PBGM_CONFIG`), the default; all are validated before any
worker starts, and a bad one stops the command with exit status 9 and every
problem listed. The command also stops (exit 9, with the command to run) when
the database is missing or its schema is not at the newest revision: it never
creates a database file. It prepares the metrics directory the workers share
before anything imports prometheus-client. Flask and gunicorn are imported only
by this command, so the rest of the CLI starts without them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from pbgm.cli._app import Env, main, masked, pass_env
from pbgm.errors import ConfigurationError
from pbgm.ops.settings import LOG_FORMATS, LOG_LEVELS, resolve_settings
from pbgm.store.factory import MEMORY_URL

if TYPE_CHECKING:
    from pbgm.ops.settings import Settings


def serve_settings(env: Env, **options: Any) -> tuple[Settings, dict[str, str]]:
    """The settings (flags > variables > file > defaults), validated, and their sources."""
    flags = {name: value for name, value in options.items() if value is not None}
    flags["database_url"] = env.db_flag
    settings, sources = resolve_settings(flags, file=env.config)
    if settings.database_url.strip() == MEMORY_URL and settings.workers > 1:
        raise ConfigurationError(
            "a `memory://` repository lives in one process: use one worker or a database"
        )
    return settings, sources


def _assignments(values: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"`{item}` is not NAME=VALUE", param_hint="--set")
        found[name.strip().lower().removeprefix("pbgm_")] = value
    return found


def _require_schema(url: str) -> None:
    if url.strip() == MEMORY_URL:
        return
    from pbgm.store.sql.migrate import require_head

    require_head(url)


@main.command("serve")
@click.option("--bind", help="host:port to listen on. [$PBGM_BIND, default 127.0.0.1:8080]")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes. [$PBGM_WORKERS]")
@click.option("--tls-cert", help="TLS certificate (PEM). [$PBGM_TLS_CERT]")
@click.option("--tls-key", help="TLS private key (PEM). [$PBGM_TLS_KEY]")
@click.option("--keys-dir", help="Token signing keys. [$PBGM_KEYS_DIR]")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Lowest level logged. [$PBGM_LOG_LEVEL, default info]",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    help="Log lines as text or JSON objects. [$PBGM_LOG_FORMAT, default text]",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="One log line per request. [$PBGM_ACCESS_LOG, default on]",
)
@click.option(
    "--gunicorn-config",
    type=click.Path(exists=True, dir_okay=False),
    help="A gunicorn configuration file for any other gunicorn option. "
    "[$PBGM_GUNICORN_CONFIG; GUNICORN_CMD_ARGS is honoured too]",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any setting, e.g. `--set max_batch=50` (repeat). Wins over PBGM_* and the file.",
)
@pass_env
def serve(
    env: Env,
    bind: str | None,
    workers: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    keys_dir: str | None,
    log_level: str | None,
    log_format: str | None,
    access_log: bool | None,
    gunicorn_config: str | None,
    assignments: tuple[str, ...],
) -> None:
    """Serve the REST API with gunicorn until interrupted."""
    settings, sources = serve_settings(
        env,
        **_assignments(assignments),
        bind=bind,
        workers=workers,
        tls_cert=tls_cert,
        tls_key=tls_key,
        keys_dir=keys_dir,
        log_level=log_level,
        log_format=log_format,
        access_log=access_log,
        gunicorn_config=gunicorn_config,
    )
    _require_schema(settings.database_url)
    from pbgm.ops.multiprocess import VARIABLE, prepare

    prepare(settings.metrics_dir or os.environ.get(VARIABLE))
    try:
        from pbgm.api.server import PbgmServer
    except ModuleNotFoundError as error:
        raise ConfigurationError(
            f"`pbgm serve` needs `{error.name}`: install pbgm with the server extra "
            "(`pip install 'pbgm[server]'`)"
        ) from None

    scheme = "https" if settings.tls_cert else "http"
    click.echo(
        f"pbgm serving {masked(settings.database_url)} on {scheme}://{settings.bind} "
        f"with {settings.workers} worker(s)",
        err=True,
    )
    PbgmServer(settings, sources).run()
