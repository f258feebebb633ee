"""The README's shell blocks, typed as a newcomer types them, in a fresh checkout.

The tracked files are copied to a new directory (nothing a developer left around comes
along), the project's `.venv` is linked in as `make demo` would have made it, the first
half of `make demo` (`examples/demo.sh`) runs, then every ```sh block of the README in
order, in one bash with a clean environment (no `PBGM_*`, the venv not active, a home
of its own). A block preceded by `<!-- not run ...: reason -->` is skipped, and the
reason must be given. Port 8080 becomes a free port.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"(?:<!-- (not run[^>]*?) -->\n)?```sh\n(.*?)```", re.S)
BLOCKS = [(reason, body) for reason, body in BLOCK.findall(README)]

pytestmark = pytest.mark.slow


def test_every_shell_block_runs_or_says_why_not():
    skipped = [reason for reason, _ in BLOCKS if reason]
    assert all(":" in reason and len(reason) > 30 for reason in skipped), skipped
    assert len(BLOCKS) - len(skipped) >= 2


def _fresh_checkout(directory: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    checkout = directory / "pbgm"
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = checkout / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    return checkout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_newcomer_path_runs_from_a_fresh_checkout(tmp_path: Path):
    if not (ROOT / ".venv" / "bin" / "pbgm").exists():
        pytest.skip("no .venv: run `make venv` (what `make demo` does first)")
    checkout = _fresh_checkout(tmp_path)
    port = str(_free_port())
    script = ["set -euo pipefail", "bash examples/demo.sh >demo.log 2>&1"]
    for index, (reason, body) in enumerate(BLOCKS):
        if not reason:
            script += [f"echo '--- README shell block {index}'", body.replace("8080", port)]
    home = tmp_path / "home"
    home.mkdir()
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    environment = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=checkout,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        else:
            with contextlib.suppress(ProcessLookupError):  # a server a block left behind
                os.killpg(process.pid, signal.SIGTERM)
    text = output.decode(errors="replace")
    demo_log = (checkout / "demo.log").read_text() if (checkout / "demo.log").exists() else ""
    assert process.returncode == 0, f"{text[-4000:]}\n--- demo.log:\n{demo_log[-2000:]}"
    assert '"content"' in text and "limits-bess-01" in text  # the policy fetched with $TOKEN
    assert "Permit" in demo_log
