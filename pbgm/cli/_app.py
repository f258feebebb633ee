"""The `pbgm` group, its shared state and the one place errors become exit statuses."""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from pbgm.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PbgmError,
    PermissionDeniedError,
    Problem,
    StoreUnavailableError,
    ValidationError,
)
from pbgm.model import Decision, utc_now
from pbgm.network import NetworkError
from pbgm.ops.settings import setting
from pbgm.pap import PolicyAdministrationPoint
from pbgm.policy import parse_datetime
from pbgm.store.base import Store
from pbgm.store.factory import open_store

DEFAULT_DB = "sqlite:///pbgm.db"

EXIT_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (ValidationError, 4),
    (InvalidInputError, 3),
    (NotFoundError, 5),
    (ConflictError, 6),
    (AlreadyExistsError, 6),
    (StoreUnavailableError, 7),
    (PermissionDeniedError, 8),
    (ConfigurationError, 9),
    (NetworkError, 13),
    (click.UsageError, 2),
    (PbgmError, 1),
)
DECISION_STATUS = {
    Decision.PERMIT: 0,
    Decision.DENY: 10,
    Decision.NOT_APPLICABLE: 11,
    Decision.INDETERMINATE: 12,
}


def exit_status(error: BaseException) -> int:
    """The one mapping from an error to the process exit status."""
    for kind, status in EXIT_STATUS:
        if isinstance(error, kind):
            return status
    return 1


def report(error: BaseException, *, as_json: bool) -> None:
    """Print an error for a person (stderr) or a program (`--json`, stdout)."""
    data = error.as_dict() if isinstance(error, PbgmError) else {"code": "internal_error"}
    if not isinstance(error, PbgmError):
        data["message"] = f"unexpected failure: {error}"
    if as_json:
        click.echo(json.dumps({"error": data}, ensure_ascii=False, default=str))
        return
    click.echo(f"error: {data['code']}: {data['message']}", err=True)
    for problem in _problems_of(error, data):
        click.echo(f"  {problem.path}: {problem.code}: {problem.message}", err=True)


def _problems_of(error: BaseException, data: Mapping[str, Any]) -> list[Problem]:
    """A ValidationError's problems, or the problem dicts another error carries."""
    problems: list[Problem] = list(getattr(error, "problems", None) or ())
    for item in data.get("problems") or () if not problems else ():
        if isinstance(item, Mapping):
            problems.append(Problem(item["path"], item["code"], item["message"]))
    return problems


class _Cli(click.Group):
    """Maps every error raised by a command to its exit status, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as error:
            if os.environ.get("PBGM_DEBUG") and not isinstance(error, PbgmError):
                raise
            env = ctx.find_object(Env)
            report(error, as_json=bool(env and env.as_json))
            ctx.exit(exit_status(error))


@dataclass
class Env:
    """What every command needs: the repository URL, who acts, the output form.

    `db_flag` is the global `--db`; `config` the settings file (`--config`, else
    `$PBGM_CONFIG`). Settings resolve in one order: flag > `PBGM_*` variable >
    settings file > default (`pbgm.ops.settings`).
    """

    db_flag: str | None
    actor: str
    as_json: bool
    config: str | None = None
    _store: Store | None = None

    @property
    def db(self) -> str:
        return str(self.setting("database_url", self.db_flag))

    def setting(self, name: str, flag: Any = None) -> Any:
        """Setting `name`: `flag` when given, else `PBGM_<NAME>`, the file, the default."""
        return setting(name, flag, file=self.config)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db)
        return self._store

    @property
    def pap(self) -> PolicyAdministrationPoint:
        return PolicyAdministrationPoint(self.store)

    def close(self) -> None:
        close = getattr(self._store, "close", None)
        if close is not None:
            close()

    def emit(self, data: Any, text: str | Iterable[str]) -> None:
        """`data` as JSON with `--json`, else the human text."""
        if self.as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        elif isinstance(text, str):
            click.echo(text)
        else:
            for line in text:
                click.echo(line)


def _default_actor() -> str:
    try:
        return os.environ.get("PBGM_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


pass_env = click.make_pass_decorator(Env)


@click.group(cls=_Cli, name="pbgm")
@click.option(
    "--db",
    metavar="URL",
    help="Repository URL: sqlite:///file.db, postgresql://..., or memory://. "
    f"[$PBGM_DATABASE_URL, else the settings file, else {DEFAULT_DB}]",
)
@click.option(
    "--config",
    metavar="FILE",
    envvar="PBGM_CONFIG",
    type=click.Path(exists=True, dir_okay=False),
    help="Settings file (JSON or YAML, keys as in docs/rest-api.md). [$PBGM_CONFIG]",
)
@click.option("--actor", default=_default_actor, help="Who acts (audit log). [$PBGM_ACTOR]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")
@click.version_option(package_name="pbgm", prog_name="pbgm")
@click.pass_context
def main(ctx: click.Context, db: str | None, config: str | None, actor: str, as_json: bool) -> None:
    """pbgm: Policy-Based Grid Management.

    Settings come from the first of: a flag, a PBGM_* variable, the settings file
    (--config or $PBGM_CONFIG), the default. Shell completion:
    `eval "$(_PBGM_COMPLETE=bash_source pbgm)"` (zsh_source, fish_source).
    """
    env = Env(db_flag=db, actor=actor, as_json=as_json, config=config)
    ctx.obj = env
    ctx.call_on_close(env.close)


def masked(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def parse_now(text: str | None) -> datetime:
    return utc_now() if text is None else parse_datetime(text, "--now")


def table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    line = "  ".join(f"{{{c}:<{widths[c]}}}" for c in columns)
    header = line.format(**{c: c.upper() for c in columns})
    return [header, *(line.format(**{c: str(r[c]) for c in columns}) for r in rows)]


def log_options(command: Any) -> Any:
    """`--log-level` (any case) and `--log-format` for the commands that run services."""
    from pbgm.ops.settings import LOG_FORMATS, LOG_LEVELS

    level = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help="Lowest level logged, any case. [$PBGM_LOG_LEVEL, default info]",
    )
    fmt = click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS, case_sensitive=False),
        help="Log lines as text or JSON objects. [$PBGM_LOG_FORMAT, default text]",
    )
    return level(fmt(command))


def metrics_options(command: Any) -> Any:
    """`--metrics-port` and `--metrics-host`: `/metrics`, `/healthz`, `/readyz` of a service."""
    port = click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        help="Serve /metrics, /healthz and /readyz on this port (default: none).",
    )
    host = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address of the metrics port (0.0.0.0 for every interface).",
    )
    return port(host(command))


def start_logging(env: Env, level: str | None, fmt: str | None) -> None:
    """Log as the flags say, else as `PBGM_LOG_LEVEL` / `PBGM_LOG_FORMAT` (or the file)."""
    from pbgm.ops.logs import configure_logging

    configure_logging(env.setting("log_level", level), env.setting("log_format", fmt))


def _json_after(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    env = ctx.find_object(Env)
    if value and env is not None:
        env.as_json = True


def json_everywhere(group: click.Group) -> None:
    """Give every command below `group` its own `--json`, the same as the global one."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            json_everywhere(command)
        elif not any(p.name == "as_json" for p in command.params):
            command.params.append(
                click.Option(
                    ["--json", "as_json"],
                    is_flag=True,
                    expose_value=False,
                    callback=_json_after,
                    help="Machine-readable output (JSON), as the global --json.",
                )
            )
