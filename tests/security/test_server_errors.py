"""What gunicorn itself answers is a problem too: a malformed request line (400), a
request line too long (414), too many or too large headers (431), and a request that
runs past its time, stopped by the deadline or by gunicorn killing the worker (503)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.security.conftest import Live, free_port

pytestmark = pytest.mark.slow
ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parents[2]


def answer(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("what", "request_bytes", "status", "code"),
    [
        ("a malformed request line", b"GET\r\n\r\n", 400, "bad_request"),
        ("a request line of 5000 bytes", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414,
         "uri_too_long"),
        ("101 headers", b"GET /healthz HTTP/1.1\r\n" + b"".join(
            f"X-{i}: y\r\n".encode() for i in range(101)) + b"\r\n", 431,
         "header_fields_too_large"),
        ("a header of 9000 bytes", b"GET /healthz HTTP/1.1\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n",
         431, "header_fields_too_large"),
        ("an unknown transfer coding", b"POST /api/v1/decisions HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: bogus\r\n\r\n0\r\n\r\n", 501, "not_implemented"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_gunicorns_own_errors_are_problems(
    live: Live, what: str, request_bytes: bytes, status: int, code: str
):
    got_status, headers, body = answer(live.raw(request_bytes))
    assert (got_status, body["code"]) == (status, code), what
    assert headers["Content-Type"] == "application/problem+json"
    assert b"<html" not in json.dumps(body).encode()
    assert "aaaa" not in body["detail"] and "yyyy" not in body["detail"]  # no echo


@pytest.fixture(params=["deadline", "kill"])
def sleepy(request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security.sleepy", str(port), request.param],
        cwd=ROOT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_request_past_its_time_gets_a_503_problem(sleepy: int):
    import socket

    with socket.create_connection(("127.0.0.1", sleepy), timeout=20) as connection:
        connection.sendall(b"GET /?8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := connection.recv(65536):
            raw += chunk
    status, headers, body = answer(raw)
    assert (status, body["code"]) == (503, "request_timeout")
    assert headers["Content-Type"] == "application/problem+json"
