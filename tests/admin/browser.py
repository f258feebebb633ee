"""A real Chromium (Debian's, driven by Playwright) against the GUI on a real socket.

One browser per test session, a fresh context per test; one werkzeug server per
session into which each test plugs its own app. Chromium is Debian's
`/usr/bin/chromium` (Playwright cannot download a browser here); `make test`
installs it as root when it is missing. Without it the browser tests skip with
the reason, and fail under `CI=true`.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import require_service

CHROMIUM = Path(os.environ.get("PBGM_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "install it with `apt-get install -y chromium` (`make test` does so as root)"


class LiveServer:
    """A werkzeug server on a free port of 127.0.0.1; tests plug their app in."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.wsgi: BaseWSGIServer = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self.wsgi.server_port}"
        self.thread = threading.Thread(target=self.wsgi.serve_forever, daemon=True)
        self.thread.start()

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "no app plugged in"
        return self.app(environ, start_response)

    def close(self) -> None:
        self.wsgi.shutdown()
        self.wsgi.server_close()
        self.thread.join()


def launch_browser() -> Iterator[Any]:
    """The session's Chromium, or a skip (a failure under CI) saying what to install."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        require_service("chromium", f"not found at {CHROMIUM}: {INSTALL_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("playwright", "is not installed: `make venv` installs the dev extra")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
