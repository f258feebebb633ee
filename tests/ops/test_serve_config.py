"""`pbgm serve` as an operator configures it: the settings file's database, gunicorn's own
`GUNICORN_CMD_ARGS` (pbgm's settings win when given), JSON access lines with the request
id, and a refusal to start on a database whose schema is behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pbgm.store.sql.migrate import downgrade, head, history
from tests.api.test_api_serve import free_port

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def start(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PBGM_", "GUNICORN_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "pbgm", "serve", "--bind", f"127.0.0.1:{port}", *args],
        env={**clean, **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return process, port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("pbgm serve did not become ready")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output.decode()


def wait_for_workers(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(children(pid)) != count:
        time.sleep(0.1)
    return children(pid)


@pytest.mark.parametrize(
    ("what", "environment", "workers"),
    [
        ("gunicorn's variable sets what pbgm leaves at its default", {}, 3),
        ("a pbgm setting that is given wins", {"PBGM_WORKERS": "1"}, 1),
    ],
)
def test_the_settings_file_and_gunicorn_cmd_args(sqlite_db, keys, tmp_path, what, environment,
                                                  workers):  # fmt: skip
    config = tmp_path / "pbgm.yaml"
    config.write_text(f"database_url: {sqlite_db}\nkeys_dir: {keys}\nlog_format: json\n")
    env = {"PBGM_CONFIG": str(config), "GUNICORN_CMD_ARGS": "--workers 3", **environment}
    workdir = tmp_path / "run"
    workdir.mkdir()
    process, port = start(workdir, env)
    try:
        assert len(wait_for_workers(process.pid, workers)) == workers
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "from-the-proxy"}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.headers["X-Request-Id"] == "from-the-proxy"
    finally:
        output = stop(process)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(
        line["request_id"] == "from-the-proxy" and line["path"] == "/healthz"
        and line["status"] == 200 and line["duration_ms"] >= 0
        for line in access
    ), access  # fmt: skip
    assert not (workdir / "pbgm.db").exists()  # the file's database, not the default one


def test_a_schema_that_is_behind_is_refused_with_the_command_to_run(sqlite_db, keys, tmp_path):
    previous = history()[-2].id
    downgrade(sqlite_db, previous)
    done = subprocess.run(
        [sys.executable, "-m", "pbgm", "--db", sqlite_db, "serve", "--keys-dir", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9
    assert f"schema revision `{previous}`, not at `{head()}`" in done.stderr
    assert f"pbgm --db '{sqlite_db}' db upgrade" in done.stderr
