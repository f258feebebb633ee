"""The REST API under gunicorn: `PbgmServer`, what `pbgm serve` runs.

A gunicorn application whose workers each build their own app with
`create_app(settings)` after the fork, so no database connection crosses a
fork. Sync workers (`ProblemWorker`: gunicorn's own error answers are problems
too), gunicorn's request-line and header limits set explicitly, each request
stopped after `PBGM_REQUEST_TIMEOUT` seconds (`Deadline`), the worker killed 10 s
later as a last resort (`pbgm.api._wsgi`). Sync workers read a slow client's
request themselves: put a buffering reverse proxy in front of any server
reachable from untrusted networks.

gunicorn's configuration, weakest first:

1. pbgm's defaults for gunicorn (`PbgmServer.defaults`: worker class, limits,
   timeouts, logs, and the pbgm defaults of bind and workers);
2. a gunicorn configuration file: `PBGM_GUNICORN_CONFIG` (or `pbgm serve
   --gunicorn-config`), else the `--config` of `GUNICORN_CMD_ARGS`;
3. `GUNICORN_CMD_ARGS` (any gunicorn option, e.g. `--keep-alive 5 --backlog 512`);
4. pbgm's own settings that were given (flag, `PBGM_*` variable or settings file):
   bind, workers, TLS certificate and key, request timeout, access log.

Whatever the configuration says, the `child_exit` hook also tells the shared
metrics (`pbgm.ops.multiprocess.worker_exited`) that a worker is gone, after a
`child_exit` of the operator's own.

Each worker leaves its long-lived objects out of Python's cyclic garbage collector
(`freeze_long_lived`): the app once built, and again once its first policy sets are
loaded. Every request makes enough containers to start collections, and the older
generations held the whole app (about 140,000 objects with the example policies,
and more with every policy loaded). Measured in process, collections took 22 us of each
decision request (205 to 217 us in all), and 4 to 6 us with the objects frozen (182 to
191 us in all). Frozen objects are still freed when nothing refers to them; only a
reference cycle among them would stay. That is bounded by what the two freezes held (the
first policy sets are replaced by changes, never frozen again), and the compiled sets are
built without cycles.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from gunicorn.app.base import Application  # type: ignore[import-untyped]

from pbgm.api._app import create_app
from pbgm.api._decisions import DecisionService
from pbgm.api._gunicorn import TEXT_ACCESS_FORMAT, logger_class
from pbgm.api._wsgi import (
    KILL_AFTER_S,
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    App,
    Deadline,
)
from pbgm.bus import open_bus
from pbgm.ops.logs import configure_logging
from pbgm.ops.multiprocess import worker_exited
from pbgm.ops.settings import DEFAULT, Settings

GRACEFUL_TIMEOUT_S = 10

_OWNED: dict[str, tuple[str, ...]] = {
    "bind": ("bind",),
    "workers": ("workers",),
    "tls_cert": ("certfile",),
    "tls_key": ("keyfile",),
    "request_timeout": ("timeout",),
    "access_log": ("accesslog",),
}
"""pbgm settings and the gunicorn options they set when given explicitly."""


class PbgmServer(Application):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn running `create_app(settings)` in every worker (module docstring)."""

    def __init__(self, settings: Settings, sources: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.sources = dict(sources or {})
        super().__init__(prog="pbgm serve")

    def gunicorn_options(self) -> dict[str, Any]:
        """Every option pbgm sets from its settings (before gunicorn's own config)."""
        settings = self.settings
        options: dict[str, Any] = {
            "bind": [settings.bind],
            "workers": settings.workers,
            "worker_class": "pbgm.api._wsgi.ProblemWorker",
            "proc_name": "pbgm",
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": settings.request_timeout + KILL_AFTER_S,
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
            "logger_class": logger_class(settings.log_format),
            "loglevel": settings.log_level,
            "errorlog": "-",
            "accesslog": "-" if settings.access_log else None,
            "access_log_format": TEXT_ACCESS_FORMAT,
        }
        if settings.tls_cert and settings.tls_key:
            options["certfile"] = settings.tls_cert
            options["keyfile"] = settings.tls_key
        return options

    def explicit_options(self) -> dict[str, Any]:
        """The options of pbgm settings given by flag, variable or settings file."""
        options = self.gunicorn_options()
        given = [name for name, source in self.sources.items() if source != DEFAULT]
        return {
            option: options.get(option)
            for name in given
            for option in _OWNED.get(name, ())
            if option in options or option in ("certfile", "keyfile")
        }

    def load_config(self) -> None:
        for name, value in self.gunicorn_options().items():
            self.cfg.set(name, value)
        environment = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        config_file = self.settings.gunicorn_config or environment.config
        if config_file:
            self.load_config_from_file(config_file)
        for name, value in vars(environment).items():
            if value is not None and name not in ("args", "config"):
                self.cfg.set(name.lower(), value)
        for name, value in self.explicit_options().items():
            if value is not None:
                self.cfg.set(name, value)
        self.cfg.set("child_exit", _chained(self.cfg.child_exit))

    def load(self) -> App:
        """Runs in each worker after the fork, so the bus's network thread is the worker's."""
        configure_logging(self.settings.log_level, self.settings.log_format)
        bus = None
        if self.settings.notify_bus_url:
            bus = open_bus({"kind": "mqtt", "url": self.settings.notify_bus_url})
        app: Flask = create_app(self.settings, bus=bus)
        # the first set loads while the worker serves; requests take the revisions the
        # follower reads (`pbgm.api._cache`)
        decisions = app.extensions["pbgm"].decisions
        decisions.start(share_revisions=True)
        freeze_long_lived(decisions)
        return Deadline(app, self.settings.request_timeout)


FREEZE_WAIT_S = 600.0
"""How long a worker waits for its first policy sets before it stops waiting to freeze them."""


def freeze_long_lived(decisions: DecisionService) -> threading.Thread:
    """Freeze what the garbage collector tracks now (the app), and again once the first
    policy sets of `decisions` are loaded, on a thread that waits for them (see the
    module docstring); the thread."""
    gc.freeze()

    def when_ready() -> None:
        if decisions.wait_ready(FREEZE_WAIT_S):
            gc.freeze()

    thread = threading.Thread(target=when_ready, name="pbgm-freeze", daemon=True)
    thread.start()
    return thread


def _chained(theirs: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def child_exit(server: Any, worker: Any) -> None:
        try:
            theirs(server, worker)
        finally:
            worker_exited(server, worker)

    return child_exit
