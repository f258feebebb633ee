"""The text access line: pbgm makes only the atoms its format reads, and the line reads
exactly as gunicorn's own atoms would make it (a client's quotes escaped too)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from pbgm.api._gunicorn import TEXT_ACCESS_FORMAT, logger_class, text_atoms


def environ(**extra: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/api/v1/decisions?policy_group=limits",
        "PATH_INFO": "/api/v1/decisions",
        "QUERY_STRING": "policy_group=limits",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": 'curl/8.5 "quoted"',
        "HTTP_AUTHORIZATION": "Basic c3ZjOnNlY3JldA==",
        **extra,
    }


NO_ADDRESS = {k: v for k, v in environ().items() if k != "REMOTE_ADDR"}
CASES = [
    ("a decision", environ(), "200 OK", 215, timedelta(microseconds=7_499)),
    (
        "no user agent, nothing sent",
        {**environ(), "HTTP_USER_AGENT": None},
        "204 No Content",
        None,
        timedelta(seconds=2, microseconds=999_999),
    ),
    ("no remote address", NO_ADDRESS, "503 Service Unavailable", 0, timedelta(0)),
    (
        "a status given as a number",
        environ(REQUEST_METHOD="GET", RAW_URI="/healthz"),
        404,
        12,
        timedelta(milliseconds=31),
    ),
]


@pytest.mark.parametrize(
    ("what", "env", "status", "sent", "took"), CASES, ids=[c[0] for c in CASES]
)
def test_the_text_line_reads_as_gunicorns_atoms_make_it(
    what: str, env: dict[str, Any], status: Any, sent: int | None, took: timedelta
) -> None:
    env = {k: v for k, v in env.items() if v is not None}
    response = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "text/plain")])
    request = SimpleNamespace(headers=[("HOST", "pbgm.local"), ("USER-AGENT", "curl/8.5")])
    logger = Logger(Config())
    theirs = logger.atoms_wrapper_class(logger.atoms(response, request, env, took))
    ours = logger.atoms_wrapper_class(text_atoms(response, env, took))
    assert TEXT_ACCESS_FORMAT % ours == TEXT_ACCESS_FORMAT % theirs


def test_the_served_line_escapes_a_clients_quotes(tmp_path: Path) -> None:
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", TEXT_ACCESS_FORMAT)
    logger = logger_class("text")(cfg)
    env = environ(HTTP_USER_AGENT='x" 200 0 0ms "forged')
    response = SimpleNamespace(status="200 OK", sent=2, headers=[("X-Request-Id", "abc")])
    logger.access(response, SimpleNamespace(headers=[]), env, timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    [line] = (tmp_path / "access.log").read_text().splitlines()
    assert '"POST /api/v1/decisions?policy_group=limits HTTP/1.1" 200 2 3ms' in line
    assert '"x\\" 200 0 0ms \\"forged"' in line
