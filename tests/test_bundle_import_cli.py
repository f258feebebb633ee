"""`pbgm policy import` of a large bundle: a progress bar per phase (reading the files
included), a summary with the seconds of each phase instead of a line per policy, and
`read_bundle` / `import_bundle` reporting their phases in order, each from 0 to its total."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import scale_workload as workload
from pbgm.bundle import import_bundle, read_bundle
from pbgm.cli import main
from pbgm.testing import sqlite_store

N = 230  # above the 200 changes that are listed one per line


@pytest.fixture
def directory_bundle(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    (root / "policies").mkdir(parents=True)
    (root / "bundle.json").write_text(json.dumps({"format": "pbgm/bundle/v1"}))
    for document in workload.documents(N):
        (root / "policies" / f"{document['id']}.json").write_text(json.dumps(document))
    return root


@pytest.fixture
def pbgm(tmp_path: Path):
    sqlite_store(tmp_path / "pbgm.db").close()
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(
            main, ["--db", f"sqlite:///{tmp_path / 'pbgm.db'}", "--actor", "tester", *args]
        )

    return run


def test_each_phase_has_its_bar_and_the_summary_its_seconds(pbgm, directory_bundle):
    result = pbgm("policy", "import", str(directory_bundle))
    assert result.exit_code == 0, result.output
    for phase in ("reading", "validating", "planning", "writing"):
        assert f"importing: {phase}" in result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0].startswith("imported (revision ")
    assert not any(line.startswith("create ") for line in lines)  # no line per policy
    assert lines[1] == f"{N} changes, not listed (`--json` lists them)"
    phases = [part.split()[0] for part in lines[2].split(", ")]
    assert phases == ["reading", "validating", "planning", "writing"]
    assert lines[3].startswith(f"{N} in ") and lines[3].endswith("/s)")
    assert lines[4] == f"{N} create"


def test_the_json_summary_has_the_phases_and_every_change(pbgm, directory_bundle):
    result = pbgm("--json", "policy", "import", str(directory_bundle))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no bars with --json
    data = json.loads(result.stdout)
    assert list(data["phases"]) == ["reading", "validating", "planning", "writing"]
    assert all(seconds >= 0 for seconds in data["phases"].values())
    assert data["counts"] == {"create": N}
    assert len(data["changes"]) == N


def test_reading_and_importing_report_their_phases_in_order(directory_bundle, tmp_path):
    seen: list[tuple[str, int, int]] = []
    bundle = read_bundle(directory_bundle, lambda *call: seen.append(call))
    store = sqlite_store(tmp_path / "other.db")
    import_bundle(store, bundle, actor="tester", phases=lambda *call: seen.append(call))
    store.close()
    order = list(dict.fromkeys(phase for phase, _, _ in seen))
    assert order == ["reading", "validating", "planning", "writing"]
    for phase in order:
        calls = [(done, total) for name, done, total in seen if name == phase]
        assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] == calls[0][1]
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert ("reading", N, N) in seen and ("writing", N, N) in seen
