"""Logging of pbgm's processes: one line per event, as text or JSON, with the request id.

`configure_logging(level, fmt)` sets the root logger of a process (`pbgm serve`
workers, the event service, the loader, the control services):

- `text`: `2026-03-02 08:00:00,123 INFO 4711 pbgm.api.errors [3f2a...]: message`
  (time, level, pid, logger, request id or `-`, message);
- `json`: one object a line with `time`, `level`, `pid`, `logger`, `message`,
  `request_id` and whatever `extra=` a call adds (python-json-logger).

The request id of the request being served lives in a context variable
(`REQUEST_ID`), so every log line written while serving it carries it, whichever
module logs. `request_id(incoming)` keeps a well-formed `X-Request-Id` of the
caller (letters, digits, `._:-`, at most 128 characters) and makes a new one
otherwise; the API echoes it in its answer and uses it as the correlation id of a
`500`.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from typing import IO

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("pbgm_request_id", default=None)
HEADER = "X-Request-Id"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "{asctime}{levelname}{process}{name}{message}{request_id}"
JSON_NAMES = {"asctime": "time", "levelname": "level", "process": "pid", "name": "logger"}
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HANDLER_NAME = "pbgm"


def request_id(incoming: str | None) -> str:
    """The caller's request id when well formed, else a new random one."""
    if incoming is not None and _WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the current request's, or `-`) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of `fmt` (`text` or `json`)."""
    if fmt == "json":
        return JsonFormatter(JSON_FIELDS, style="{", rename_fields=JSON_NAMES)
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"unknown log format `{fmt}`: use text or json")


def handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `fmt` lines with request ids."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.setFormatter(formatter(fmt))
    made.addFilter(RequestIdFilter())
    made.set_name(_HANDLER_NAME)
    return made


def configure_logging(
    level: str = "info", fmt: str = "text", *, stream: IO[str] | None = None
) -> None:
    """Send the process's logs to stderr (or `stream`) as `fmt`, from `level` up.

    Replaces a handler it installed before, leaves other handlers alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler(fmt, stream))
    root.setLevel(level.upper())
    logging.getLogger("pbgm").setLevel(level.upper())
