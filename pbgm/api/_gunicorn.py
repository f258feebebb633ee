"""gunicorn's logs in pbgm's format: the error log, and an access log on by default.

`logger_class(fmt)` is a `gunicorn.glogging.Logger` whose handlers use pbgm's
formatter (`pbgm.ops.logs`: `text` or `json`), so gunicorn's own lines, the access
lines and the app's lines read alike. An access line carries the request id the
API echoed (`X-Request-Id`); in JSON it is an object with `remote`, `method`,
`path`, `query`, `status`, `bytes`, `duration_ms`, `user_agent` and `request_id`.
No header values other than the user agent and the request id are logged: never
`Authorization`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from pbgm.ops.logs import RequestIdFilter, formatter

TEXT_ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


class PbgmLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger with pbgm's line format (module docstring)."""

    log_format = "text"

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter(self.log_format))
                    handler.addFilter(RequestIdFilter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        request_id = _response_header(resp, "x-request-id") or "-"
        if self.log_format != "json":
            fmt = self.cfg.access_log_format
            made = (
                text_atoms(resp, environ, request_time)
                if fmt == TEXT_ACCESS_FORMAT
                else self.atoms(resp, req, environ, request_time)
            )
            atoms = self.atoms_wrapper_class(made)  # escapes the quotes a client sent
            self.access_log.info(fmt, atoms, extra={"request_id": request_id})
            return
        status = str(getattr(resp, "status", "") or "").split(" ", 1)[0]
        fields = {
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD", "-"),
            "path": environ.get("PATH_INFO", "-"),
            "query": environ.get("QUERY_STRING", ""),
            "status": int(status) if status.isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "request_id": request_id,
        }
        self.access_log.info(
            "%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields
        )


def text_atoms(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
    """The atoms `TEXT_ACCESS_FORMAT` reads, as gunicorn's `Logger.atoms` makes them.
    That makes every atom of every format: the time formatted, the user read from the
    Authorization header, and one entry per request header, response header and
    environment variable, for each access line."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    sent = getattr(resp, "sent", None)
    method, uri, protocol = (
        environ["REQUEST_METHOD"],
        environ["RAW_URI"],
        environ["SERVER_PROTOCOL"],
    )
    return {
        "h": environ.get("REMOTE_ADDR", "-"),
        "r": f"{method} {uri} {protocol}",
        "s": status,
        "b": "-" if sent is None else str(sent),
        "M": request_time.seconds * 1000 + int(request_time.microseconds / 1000),
        "a": environ.get("HTTP_USER_AGENT", "-"),
    }


def _response_header(resp: Any, name: str) -> str | None:
    for key, value in getattr(resp, "headers", None) or ():
        if key.lower() == name:
            return str(value)
    return None


def logger_class(fmt: str) -> type[PbgmLogger]:
    """A `PbgmLogger` writing `fmt` (`text` or `json`)."""
    return type(f"PbgmLogger_{fmt}", (PbgmLogger,), {"log_format": fmt})
