"""A local HTTP server over a real socket that answers from a script, for REST-peer tests.

`ScriptedServer.answer(method, path, *answers)` queues answers for a route; the last one
repeats. An answer is `Answer(status, body, headers, delay_s)`; `body` may be bytes or a
JSON value. Every request is recorded (`requests`) with its headers and body. The server
speaks TLS (and asks for client certificates) when given a server key pair and a CA.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunked: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(
        self,
        *,
        tls: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
    ) -> None:
        self.requests: list[Seen] = []
        self._answers: dict[tuple[str, str], deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                answer = server._next(self.command, path, seen)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                payload = (
                    answer.body
                    if isinstance(answer.body, bytes)
                    else json.dumps(answer.body).encode()
                )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if "Content-Type" not in answer.headers:
                    self.send_header("Content-Type", "application/json")
                if answer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(payload), 4096):
                        chunk = payload[start : start + 4096]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if client_ca is not None:
                context.load_verify_locations(str(client_ca))
                context.verify_mode = ssl.CERT_REQUIRED
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        host, port = self.httpd.server_address[:2]
        self.url = f"{scheme}://{'localhost' if tls else host}:{port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        with self._lock:
            self._answers[(method, path)] = deque(answers)

    def seen(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    def _next(self, method: str, path: str, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
            queue = self._answers.get((method, path))
            if not queue:
                return Answer(404, {"error": "no such route"})
            return queue.popleft() if len(queue) > 1 else queue[0]
