"""Every route of the API (read from the app's own `url_map`, so a new route is walked
without a change here) against the fault classes of issue 10, on the live server:
hostile path ids, huge numbers in paths, queries and bodies, deep and broken
bodies, oversized and chunked bodies. Whatever the route, the answer comes within
the client's timeout, is never a 5xx, and every error is `application/problem+json`
(the token endpoint answers RFC 6749 JSON errors, as OAuth2 clients expect, and the
admin GUI, a browser surface, its own HTML error pages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbgm.api import create_app
from pbgm.auth.keys import KeyRing
from tests.api.conftest import Reply, b64
from tests.security.conftest import Live

pytestmark = pytest.mark.slow

HUGE = "9" * 4000
OAUTH_ENDPOINTS = {"auth.token"}


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every route of a freshly made app."""
    import tempfile

    with tempfile.TemporaryDirectory() as keys:
        KeyRing(Path(keys)).generate()
        app = create_app({"database_url": "memory://", "keys_dir": keys})
        found = {
            (rule.endpoint, method, rule.rule)
            for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
    return sorted(found)


ROUTES = _routes()
PATH_VALUES = {
    "a 300-character id": b64("x" * 300),
    "not base64": "!!not-base64!!",
    "a NUL": "%00",
    "a 2^31 number": "2147483648",
    "a 40-digit number": "9" * 40,
}
BODIES: dict[str, tuple[bytes, str]] = {
    "a 4000-digit integer": (('{"version": ' + HUGE + ', "id": ' + HUGE + "}").encode(), "json"),
    "100 nested arrays": (b"[" * 100 + b"]" * 100, "json"),
    "bytes that are not UTF-8": (b'{"id": "\xff\xfe"}', "json"),
    "NaN": (b'{"version": NaN}', "json"),
    "a lone surrogate": (b'{"id": "\\ud800"}', "json"),
    "a duplicate key": (b'{"id": "a", "id": "b"}', "json"),
    "a 2 MiB body": (b'{"id": "' + b"x" * 2_097_152 + b'"}', "json"),
    "a form with a 4000-digit number": (
        b"grant_type=client_credentials&scope=" + HUGE.encode(),
        "form",
    ),
}


def _url(rule: str, value: str) -> str:
    url = rule
    while "<" in url:
        start, end = url.index("<"), url.index(">")
        url = url[:start] + value + url[end + 1 :]
    return url


def _error_types(endpoint: str) -> tuple[str, ...]:
    """The content types an error of `endpoint` may have: RFC 6749 JSON on the token
    endpoint; on the admin GUI (a browser surface) its own HTML pages, or problem+json for
    a path no route matches (a bad `<int:...>`); problem+json everywhere else."""
    if endpoint in OAUTH_ENDPOINTS:
        return ("application/json",)
    if endpoint.startswith("gui."):
        return ("text/html; charset=utf-8", "application/problem+json")
    return ("application/problem+json",)


def _check(reply: Reply, endpoint: str, what: str) -> None:
    assert reply.status < 500, f"{endpoint} {what}: {reply.status} {reply.body[:300]!r}"
    if reply.status >= 400:
        kind = reply.headers.get("Content-Type", "")
        assert kind in _error_types(endpoint), f"{endpoint} {what}: {kind}"


def _cases() -> Iterator[Any]:
    for endpoint, method, rule in ROUTES:
        yield pytest.param(endpoint, method, rule, id=f"{method} {rule}")


@pytest.mark.parametrize(("endpoint", "method", "rule"), list(_cases()))
def test_every_route_survives_every_hostile_input(
    live: Live, endpoint: str, method: str, rule: str
):
    caller = None if endpoint in OAUTH_ENDPOINTS else "svc-admin"
    urls = {what: _url(rule, value) for what, value in PATH_VALUES.items()} if "<" in rule else {
        "": rule
    }  # fmt: skip
    for what, url in urls.items():
        _check(live.as_caller(caller, method, url), endpoint, f"path with {what}")
        queries = {"limit": HUGE[:30], "before_id": "2147483648", "since_revision": HUGE[:30]}
        _check(live.as_caller(caller, method, url, params=queries), endpoint, f"query {what}")
    if method in ("GET", "DELETE"):
        return
    url = next(iter(urls.values()))
    for what, (body, kind) in BODIES.items():
        content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
        reply = live.as_caller(
            caller, method, url, raw=body, headers={"Content-Type": content_type}
        )
        _check(reply, endpoint, what)
    chunked = (
        (
            f"{method} {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {live.token('svc-admin')}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        + b"".join(b"100000\r\n" + b" " * 0x100000 + b"\r\n" for _ in range(2))
        + b"0\r\n\r\n"
    )
    answer = live.raw(chunked)
    status = int(answer.split(b" ", 2)[1])
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert status < 500, f"{endpoint} chunked: {answer[:300]!r}"
    if endpoint.startswith("gui."):  # a page or a redirect to sign-in; errors as above
        assert status < 400 or any(kind in head for kind in _error_types(endpoint))
    elif endpoint not in OAUTH_ENDPOINTS:  # refused as a problem, never taken
        assert "application/problem+json" in head, f"{endpoint} chunked: {answer[:300]!r}"
