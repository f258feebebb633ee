"""The REST API under gunicorn: `PbgmServer`, what `pbgm serve` runs.

A `gunicorn.app.base.BaseApplication` whose workers each build their own app
with `create_app(settings)` after the fork, so no database connection crosses a
fork. Options come from the validated `Settings`: bind address, worker count,
TLS certificate and key when both are set. Sync workers (`ProblemWorker`: gunicorn's
own error answers are problems too), gunicorn's request-line and header limits
set explicitly, each request stopped after `PBGM_REQUEST_TIMEOUT` seconds
(`Deadline`), the worker killed 10 s later as a last resort (`pbgm.api._wsgi`).
Sync workers read a slow client's request themselves: put a buffering reverse
proxy in front of any server reachable from untrusted networks.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from pbgm.api._app import create_app
from pbgm.api._wsgi import (
    KILL_AFTER_S,
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    App,
    Deadline,
)
from pbgm.api.settings import Settings
from pbgm.bus import open_bus

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
            "worker_class": "pbgm.api._wsgi.ProblemWorker",
            "proc_name": "pbgm",
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": self.settings.request_timeout + KILL_AFTER_S,
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        }
        if self.settings.tls_cert and self.settings.tls_key:
            options["certfile"] = self.settings.tls_cert
            options["keyfile"] = self.settings.tls_key
        return options

    def load_config(self) -> None:
        for name, value in self.gunicorn_options().items():
            self.cfg.set(name, value)

    def load(self) -> App:
        """Runs in each worker after the fork, so the bus's network thread is the worker's."""
        bus = None
        if self.settings.notify_bus_url:
            bus = open_bus({"kind": "mqtt", "url": self.settings.notify_bus_url})
        app: Flask = create_app(self.settings, bus=bus)
        app.extensions["pbgm"].decisions.start()  # the first set loads while the worker serves
        return Deadline(app, self.settings.request_timeout)
