"""`python -m tests.security.sleepy PORT MODE`: pbgm's gunicorn set-up around an app that
sleeps as long as its query string says, to see what a client gets from a timeout.

MODE `deadline`: the app under `Deadline` (1 s), as `pbgm serve` runs it. MODE
`kill`: no deadline and gunicorn's own timeout at 1 s, so the worker is killed
mid-request (the last resort of `pbgm serve`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from pbgm.api._wsgi import App, Deadline
from pbgm.api.server import PbgmServer
from pbgm.api.settings import Settings


def sleepy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    time.sleep(float(environ.get("QUERY_STRING") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept"]


class Sleepy(PbgmServer):
    def __init__(self, port: int, mode: str) -> None:
        self.mode = mode
        super().__init__(Settings(bind=f"127.0.0.1:{port}", workers=1, request_timeout=1))

    def gunicorn_options(self) -> dict[str, Any]:
        options = super().gunicorn_options()
        if self.mode == "kill":
            options["timeout"] = 1
        return options

    def load(self) -> App:
        return Deadline(sleepy, 1) if self.mode == "deadline" else sleepy


if __name__ == "__main__":
    Sleepy(int(sys.argv[1]), sys.argv[2]).run()
