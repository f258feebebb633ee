"""A KIBERNet-like data platform on 127.0.0.1, for demos, tests and benchmarks.

Not KIBERNet: a small REST API of the shape `docs/kibernet.md` describes, over a real
socket (the standard library's threading HTTP server, HTTP/1.1 keep-alive, optionally
TLS), with knobs to make it misbehave:

    GET /datapoints/{id}/latest          -> {"id", "time", "value", <extra fields>}
    GET /measurements?point=ID&from=ISO  -> {"point", "data": [{"time", "value"}, ...]}
    POST /oauth/token                    -> a client-credentials token (when configured)

`set(id, value, ...)` stores a reading (`live=True`: its time is the time of each
request, as a sensor that reports all the time). `fail(id, status, times=,
retry_after=)` answers an error; `slow(delay_s)` answers late; `malformed(id)` answers
a body that is not JSON, `oversized(id, size)` a JSON body of that many bytes;
`down()` / `up()` answer 503 to everything or resume. With `api_key` (and `api_header`)
or `client` (an OAuth2 client id and secret) requests without the right credential are
answered 401. `requests` counts what was asked, per path.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

__all__ = ["KibernetStandIn"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Point:
    value: float
    t: float | None
    extra: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class _Failure:
    status: int
    times: int | None
    retry_after: float | None


class KibernetStandIn:
    """See the module docstring. Use as a context manager; `url` is the base URL."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_header: str = "X-API-Key",
        client: tuple[str, str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.api_key, self.api_header, self.client = api_key, api_header, client
        self.requests: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self._points: dict[str, _Point] = {}
        self._failures: dict[str, _Failure] = {}
        self._malformed: set[str] = set()
        self._oversized: dict[str, int] = {}
        self._delay_s = 0.0
        self._down = False
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        port = self.httpd.server_address[1]
        self.url = f"{scheme}://{'localhost' if tls else '127.0.0.1'}:{port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> KibernetStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- knobs ---------------------------------------------------------------------------

    def set(
        self, point: str, value: float, *, t: float | None = None, live: bool = False, **extra: Any
    ) -> None:
        with self._lock:
            stamp = None if live else round(time.time() if t is None else t, 3)
            entry = self._points.setdefault(point, _Point(value, stamp))
            entry.value, entry.t, entry.extra = value, stamp, dict(extra)
            if stamp is not None:
                entry.history.append((stamp, value))
                del entry.history[:-100]

    def fail(
        self, point: str, status: int, *, times: int | None = None, retry_after: float | None = None
    ) -> None:
        """Answer `status` for `point` (`*`: every point) `times` times (None: until `clear`)."""
        with self._lock:
            self._failures[point] = _Failure(status, times, retry_after)

    def malformed(self, point: str) -> None:
        with self._lock:
            self._malformed.add(point)

    def oversized(self, point: str, size: int) -> None:
        with self._lock:
            self._oversized[point] = size

    def slow(self, delay_s: float) -> None:
        self._delay_s = delay_s

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    def clear(self) -> None:
        """Answer normally again: no failures, no malformed or oversized bodies, no delay."""
        with self._lock:
            self._failures.clear()
            self._malformed.clear()
            self._oversized.clear()
        self._delay_s, self._down = 0.0, False

    # -- serving -------------------------------------------------------------------------

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query)
        self.requests[path] += 1
        if self._delay_s:
            time.sleep(self._delay_s)
        if self._down:
            return _json(503, {"error": "maintenance"})
        if method == "POST" and path == "/oauth/token":
            return self._token(body, headers)
        if not self._authorised(headers):
            return _json(401, {"error": "unauthorized"})
        if method != "GET":
            return _json(405, {"error": "method not allowed"})
        segments = path.strip("/").split("/")
        if len(segments) == 3 and segments[0] == "datapoints" and segments[2] == "latest":
            return self._latest(segments[1])
        if path == "/measurements" and query.get("point"):
            return self._series(query["point"][0], (query.get("from") or [""])[0])
        return _json(404, {"error": "no such resource"})

    def _special(self, point: str) -> tuple[int, bytes, dict[str, str]] | None:
        with self._lock:
            failure = self._failures.get(point) or self._failures.get("*")
            if failure is not None:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures = {
                            k: v for k, v in self._failures.items() if v is not failure
                        }
                extra = (
                    {}
                    if failure.retry_after is None
                    else {"Retry-After": f"{failure.retry_after:g}"}
                )
                return _json(failure.status, {"error": "failure"}, extra)
            if point in self._malformed:
                return 200, b'{"time": "2026-01-01T00:00:00Z", "value": 1.0', {}
            if point in self._oversized:
                size = self._oversized[point]
                return 200, b'{"pad": "' + b"x" * size + b'", "value": 1}', {}
        return None

    def _latest(self, point: str) -> tuple[int, bytes, dict[str, str]]:
        special = self._special(point)
        if special is not None:
            return special
        with self._lock:
            entry = self._points.get(point)
            if entry is None:
                return _json(404, {"error": f"no data point {point}"})
            t = time.time() if entry.t is None else entry.t
            reading = {"id": point, "time": _iso(t), "value": entry.value, **entry.extra}
        return _json(200, reading)

    def _series(self, point: str, since: str) -> tuple[int, bytes, dict[str, str]]:
        special = self._special(point)
        if special is not None:
            return special
        try:
            after = datetime.fromisoformat(since).timestamp() if since else 0.0
        except ValueError:
            return _json(400, {"error": "`from` must be an ISO 8601 time"})
        with self._lock:
            entry = self._points.get(point)
            if entry is None:
                return _json(404, {"error": f"no data point {point}"})
            history = entry.history if entry.t is not None else [(time.time(), entry.value)]
            data = [{"time": _iso(t), "value": v} for t, v in history if t > after]
        return _json(200, {"point": point, "data": data})

    def _authorised(self, headers: dict[str, str]) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        if self.api_key is not None:
            return secrets.compare_digest(lowered.get(self.api_header.lower(), ""), self.api_key)
        if self.client is not None:
            scheme, _, token = lowered.get("authorization", "").partition(" ")
            return scheme.lower() == "bearer" and token in self._tokens
        return True

    def _token(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        given = (form.get("client_id"), form.get("client_secret"))
        scheme, _, encoded = _header(headers, "authorization").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic (RFC 6749 2.3.1)
            try:
                name, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                name = secret = ""
            given = (unquote_plus(name), unquote_plus(secret))
        if self.client is None or given != self.client:
            return _json(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        return _json(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write (flushed per request)
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                server.headers_seen.append(headers)
                del server.headers_seen[:-50]
                status, payload, extra = server._answer(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def _json(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(body).encode(), dict(headers or {})


def main() -> None:
    """`python -m adapters.kibernet.standin [POINTS]`: serve `P0`..`P<n-1>` (live values)
    until standard input closes; the first line printed is the base URL."""
    import sys

    points = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with KibernetStandIn() as standin:
        for i in range(points):
            standin.set(f"P{i}", 1.0 + i / 1e5, live=True, meter_serial=f"SN{i}")
        print(standin.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
