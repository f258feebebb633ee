"""What stands between gunicorn and the app: every answer a client sees is a problem.

- `ProblemWorker`, gunicorn's sync worker whose own error answers (a malformed
  request line `400`, `414` for a request line over `LIMIT_REQUEST_LINE` bytes,
  `431` for more than `LIMIT_REQUEST_FIELDS` headers or one over
  `LIMIT_REQUEST_FIELD_SIZE` bytes, `501` for an unknown transfer coding, and the
  `500` of a worker killed at gunicorn's timeout) are `application/problem+json`
  with a stable `code` instead of gunicorn's HTML. gunicorn still decides which
  error it is and logs it; only the bytes written change. The text the client
  sent is never echoed.
- `Deadline`, a WSGI wrapper that stops a request after `PBGM_REQUEST_TIMEOUT`
  seconds with `503 request_timeout` (a `SIGALRM` timer, in the worker's main
  thread, as sync workers run requests), and keeps the worker: gunicorn's own
  timeout, set 10 s later, only kills a worker stuck where Python cannot
  interrupt it (inside one long C call).
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import FrameType
from typing import Any

from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
KILL_AFTER_S = 10
"""gunicorn's timeout is the request timeout plus this: the last resort."""

_CODES = {
    400: ("bad_request", "the request is malformed"),
    403: ("forbidden", "the request is refused"),
    414: ("uri_too_long", f"the request line is longer than {LIMIT_REQUEST_LINE} bytes"),
    417: ("expectation_failed", "the `Expect` header cannot be met"),
    431: (
        "header_fields_too_large",
        f"more than {LIMIT_REQUEST_FIELDS} headers, or one longer than "
        f"{LIMIT_REQUEST_FIELD_SIZE} bytes",
    ),
    501: ("not_implemented", "the transfer coding is not supported"),
    503: ("request_timeout", "the request took too long and was stopped; retry later"),
}


def problem_bytes(status: int) -> bytes:
    """A complete HTTP/1.1 problem answer for a status gunicorn (or a timeout) gave."""
    code, detail = _CODES.get(status, ("internal_error", "the server could not answer"))
    body: dict[str, Any] = {
        "type": f"urn:pbgm:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if status >= 500 and status != 503:
        body["correlation_id"] = secrets.token_hex(8)
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode("latin-1") + data


class _Captured:
    """A socket stand-in that keeps what gunicorn's error writer sends."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data


def _status_of(written: bytes) -> int:
    try:
        return int(written.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 500


class ProblemWorker(SyncWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's sync worker, answering its own errors as problems (module docstring)."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        timed_out = isinstance(exc, SystemExit) and not self.alive
        status = 503 if timed_out else _status_of(captured.data)
        try:
            client.sendall(problem_bytes(status))
        except OSError:
            log.debug("the client left before its error answer")


class RequestTimeout(BaseException):
    """Raised into a request that ran past its deadline (not an `Exception`, so that
    no handler of the app turns it into an ordinary answer)."""


def _expire(signum: int, frame: FrameType | None) -> None:
    raise RequestTimeout


_handler_of: Callable[[int], Any] = importlib.import_module("_signal").getsignal
"""`signal.getsignal` without its conversion to `signal.Handlers`, which tries (and
fails, raising and catching an error) to make an enum of a Python handler: asked on
every request, the conversion cost more than the rest of the deadline."""

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Deadline:
    """A WSGI wrapper that answers `503 request_timeout` after `seconds` (see above)."""

    def __init__(self, app: App, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if threading.get_ident() != threading.main_thread().ident:
            return self.app(environ, start_response)  # a threaded server: no timer here
        if _handler_of(signal.SIGALRM) is not _expire:  # installed once per worker
            signal.signal(signal.SIGALRM, _expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            return list(self.app(environ, start_response))
        except RequestTimeout:
            log.warning("request stopped after %s s: %s", self.seconds, environ.get("PATH_INFO"))
            return self._timeout(start_response)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)  # the handler stays, without a timer

    @staticmethod
    def _timeout(start_response: StartResponse) -> list[bytes]:
        head, _, body = problem_bytes(503).partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode("latin-1").split("\r\n")[1:]]
        kept = [(k, v) for k, v in headers if k != "Connection"]  # hop-by-hop: not for WSGI
        start_response("503 Service Unavailable", kept, sys.exc_info())
        return [body]
