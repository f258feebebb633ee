"""The wheel: a LICENSE, the migrations inside pbgm's namespace (no top-level
`migrations` package), and `pbgm db upgrade` working from the installed wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("pbgm-*.whl")
    return found


def test_the_wheel_ships_the_license_and_the_migrations_inside_pbgm(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "pbgm",
        "pbgm_admin",
        "adapters",
        "controls",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    shipped = sorted(
        n.rsplit("/", 1)[1] for n in names if n.startswith("pbgm/_migrations/versions/")
    )
    assert shipped == versions
    assert "pbgm/_migrations/env.py" in names and "pbgm/_migrations/script.py.mako" in names
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_the_installed_wheel_migrates_a_database(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    program = (
        "import sys; sys.path.insert(0, sys.argv[1]); import pbgm;"
        "assert pbgm.__file__.startswith(sys.argv[1]), pbgm.__file__;"
        "from pbgm.store.sql.migrate import script_location; print(script_location());"
        "from pbgm.cli import main; main(['--db', sys.argv[2], 'db', 'upgrade'])"
    )
    url = f"sqlite:///{tmp_path / 'from-wheel.db'}"
    done = subprocess.run(
        [sys.executable, "-c", program, str(target), url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == str(target / "pbgm" / "_migrations")
    assert "schema up to date" in done.stdout
