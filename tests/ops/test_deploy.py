"""The deployment files name commands and options that exist, and settings pbgm reads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.cli import main as service_main
from pbgm.cli import main
from pbgm.ops.settings import ENV_PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def exec_lines(unit: Path) -> list[str]:
    text = unit.read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]


def resolve(words: list[str]) -> None:
    """`pbgm ...` or `pbgm-service ...` with `--help` added: click walks the command path
    and refuses an unknown command or option before it shows the help."""
    program, *args = words
    group = main if program.endswith("/pbgm") else service_main
    args = [a.replace("%i", "voltage").replace("${METRICS_PORT}", "9313") for a in args]
    result = CliRunner().invoke(group, [*args, "--help"], prog_name=program)
    assert result.exit_code == 0, (words, result.output)
    assert result.output.startswith("Usage: ")


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_every_unit_runs_a_command_that_exists(unit: Path):
    lines = exec_lines(unit)
    assert lines
    for line in lines:
        resolve(shlex.split(line))


def test_the_example_settings_are_settings():
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.__dataclass_fields__}
    for line in (DEPLOY / "pbgm.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.split("=", 1)[0] in known, line
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name in re.findall(r"(PBGM_[A-Z_]+)=", dockerfile):
        assert name in known, name
    assert '"$(ls /wheels/pbgm-*.whl)[server,postgres,mqtt]"' in dockerfile
