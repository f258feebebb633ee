"""The metrics directory several server workers share (prometheus-client multiprocess mode).

prometheus-client decides at import whether values live in the process or in
files of `$PROMETHEUS_MULTIPROC_DIR`, so `prepare` runs in the server's master
before anything imports it: it empties (or makes) the directory and sets the
variable, which the forked workers inherit. `worker_exited` is gunicorn's
`child_exit` hook: a dead worker's live gauges are removed (its counters stay,
so totals never drop). This module imports prometheus-client only inside
`worker_exited`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory of this process, or None for one process alone."""
    return os.environ.get(VARIABLE) or None


def prepare(directory: str | os.PathLike[str] | None = None) -> Path:
    """Make `directory` (default: a fresh temporary one, removed at exit) the empty
    metrics directory of this process and the workers it forks."""
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="pbgm-metrics-"))
        atexit.register(_remove_in, os.getpid(), path)
    else:
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values of an earlier run would add up with ours
            stale.unlink()
    os.environ[VARIABLE] = str(path)
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported already: metrics made from now on use the files
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    return path


def _remove_in(owner: int, path: Path) -> None:
    """Remove the directory at the exit of the process that made it: a forked worker
    inherits the exit handler, and a worker that exits (a reload, `max_requests`) must
    not take the files of the others with it."""
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def worker_exited(server: object, worker: object) -> None:
    """gunicorn's `child_exit` hook: forget the live gauges of a worker that exited."""
    from prometheus_client import multiprocess

    pid = getattr(worker, "pid", None)
    if pid is not None and multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
