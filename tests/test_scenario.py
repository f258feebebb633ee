"""The end-to-end scenario (`examples/scenario.sh`) runs to the end and measures propagation.

The script starts pbgm, uses (or starts) Mosquitto, runs the simulated feeder and the
voltage service, has the operator tighten the band through the admin API, and prints
the time from that change to the first set-point computed with the new limits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[1]
PROPAGATION = re.compile(
    r"^propagation: (\d+\.\d{3}) s from the admin change \(publish of version 2\) to the "
    r"first set-point computed with the new limits$",
    re.MULTILINE,
)


@pytest.mark.slow
@pytest.mark.mosquitto
def test_scenario_runs_and_the_set_points_follow_the_tightened_limits():
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        require_service("mosquitto", "is not installed (Debian: apt-get install mosquitto)")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHON": sys.executable, "PBGM": str(bin_dir / "pbgm")}
    env.pop("KEEP", None)
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "scenario.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = PROPAGATION.search(done.stdout)
    assert found, done.stdout
    assert 0 < float(found.group(1)) < 3.0  # one loader poll (1 s) plus a step, on a busy box
    assert "voltage service exited 0" in done.stdout
    assert re.search(r"\[operator\] after: highest measured voltage 1\.0[0-4]\d\d pu", done.stdout)
