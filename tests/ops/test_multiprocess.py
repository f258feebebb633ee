"""The shared metrics directory: emptied at start, kept while workers come and go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import os, sys
from pathlib import Path
from pbgm.ops.multiprocess import prepare
path = prepare(None)
pid = os.fork()
if pid == 0:
    sys.exit(0)            # a worker that exits the way gunicorn's workers do
os.waitpid(pid, 0)
print(path, Path(path).is_dir())
"""


def test_a_worker_that_exits_leaves_the_directory_to_the_master(tmp_path: Path):
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    path, alive = done.stdout.split()
    assert alive == "True"  # still there after the worker's exit
    assert not Path(path).exists()  # and gone with the master


def test_a_named_directory_is_emptied_of_an_earlier_run(tmp_path: Path):
    (tmp_path / "counter_123.db").write_bytes(b"old values")
    (tmp_path / "notes.txt").write_text("kept")
    program = f"from pbgm.ops.multiprocess import prepare; prepare({str(tmp_path)!r})"
    environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-c", program], check=True, env=environment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
