"""A real Prometheus (Debian's `prometheus`) started by a test on a free port.

`prometheus_binary()` finds the binary, installs Debian's package when it is missing
and the tests run as root (`apt-get install -y prometheus`), and otherwise skips
with the install hint (fails under `CI=true`, like every missing service).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_service


def _apt_install() -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "prometheus"], ["apt-get", "update"]):
        subprocess.run(command, env=environment, capture_output=True, timeout=900, check=False)
        if shutil.which("prometheus"):
            return
    subprocess.run(
        ["apt-get", "install", "-y", "prometheus"],
        env=environment,
        capture_output=True,
        timeout=900,
        check=False,
    )


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install()
        found = shutil.which("prometheus")
    if found is None:
        require_service("prometheus", "is not installed: apt-get install prometheus")
    assert found is not None
    return found


class Prometheus:
    """A Prometheus process with its own data directory, scraping what `config` says."""

    def __init__(self, directory: Path, port: int, config: dict[str, Any]) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        config_file = directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.log = (directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.directory = directory

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"prometheus did not become ready: {self.output()}")

    def query(self, expression: str) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/query", query=expression)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def query_range(self, expression: str, start: float, end: float) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/query_range", query=expression, start=start, end=end, step=1)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/targets")["data"]["activeTargets"])

    def output(self) -> str:
        self.log.flush()
        return (self.directory / "prometheus.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
