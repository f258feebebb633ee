"""`pbgm loader run`: once (exit status says whether all is fresh), and until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from pbgm.auth.keys import KeyRing
from pbgm.cli import main
from tests.api.conftest import SECRET, Server, World, make_world

ROOT = Path(__file__).resolve().parents[1]
BESS = {"name": "bess", "asset_id": "bess-01", "policy_type": "operational_limits"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> World:
    keys = tmp_path_factory.mktemp("cli-keys")
    KeyRing(keys).generate()
    return make_world(server, keys)


def write_config(tmp_path: Path, port: int, **extra: Any) -> Path:
    (tmp_path / "secret").write_text(SECRET)
    config = {
        "server": {
            "url": f"http://127.0.0.1:{port}",
            "client_id": "svc-voltage",
            "client_secret_file": "secret",
            "timeout_s": 5,
        },
        "cache_dir": "cache",
        "backoff": {"initial_s": 0.2, "max_s": 1},
        "policies": [{**BESS, "deliver_to": "log"}],
        **extra,
    }
    path = tmp_path / "loader.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_once_fetches_reports_and_exits_0_when_all_is_fresh(world: World, tmp_path: Path) -> None:
    config = write_config(tmp_path, world.server.port)
    result = run("--json", "loader", "run", "--config", str(config), "--once")
    assert result.exit_code == 0, result.output
    (state,) = json.loads(result.stdout)
    assert (state["name"], state["state"], state["source"], state["version"]) == (
        "bess",
        "fresh",
        "server",
        1,
    )
    assert (tmp_path / "cache" / "bess.json").is_file()


def test_once_exits_7_when_the_server_cannot_be_reached(world: World, tmp_path: Path) -> None:
    config = write_config(tmp_path, world.server.port)
    assert run("loader", "run", "--config", str(config), "--once").exit_code == 0
    unreachable = write_config(tmp_path, 1)
    result = run("loader", "run", "--config", str(unreachable), "--once")
    assert result.exit_code == 7
    assert "unreachable" in result.stdout and "cache" in result.stdout


def test_once_exits_5_when_a_policy_cannot_be_read(world: World, tmp_path: Path) -> None:
    hidden = {"name": "fo", "policy_id": "fo-template-bess-01", "policy_group": "flexibility"}
    config = write_config(tmp_path, world.server.port, policies=[hidden])
    assert run("loader", "run", "--config", str(config), "--once").exit_code == 5


def test_a_bad_configuration_exits_9_listing_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "loader.yaml"
    path.write_text(yaml.safe_dump({"server": {"url": "ftp://x"}, "policies": []}))
    result = CliRunner().invoke(main, ["loader", "run", "--config", str(path)])
    assert result.exit_code == 9
    for where in ("$.server.url", "$.server.client_id", "$.cache_dir", "$.policies"):
        assert where in result.stderr


def test_run_delivers_and_stops_cleanly_on_sigterm(world: World, tmp_path: Path) -> None:
    config = write_config(tmp_path, world.server.port, policies=[{**BESS, "deliver_to": "stdout"}])
    process = subprocess.Popen(
        [sys.executable, "-m", "pbgm", "loader", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        delivered = json.loads(process.stdout.readline())
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert (delivered["name"], delivered["version"], delivered["source"]) == ("bess", 1, "server")
    assert process.returncode == 0, errors
    assert "signal SIGTERM: stopping" in errors
    assert "final: `bess` fresh, version 1" in errors
