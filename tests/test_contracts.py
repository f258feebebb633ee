"""The import-linter contracts name the pbgm core module by module (import-linter has no
"every module but these"), so a new core module must be added to them by hand: this test
fails when one is missing, before a framework import could slip into it unchecked."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_CORE = {"api", "cli", "testing", "__init__", "__main__", "schemas"}
"""The outer parts of pbgm (the REST API, the CLI, the test helpers), and what is no module."""


def core_modules() -> set[str]:
    names = set()
    for path in (ROOT / "pbgm").iterdir():
        name = path.stem if path.suffix == ".py" else path.name
        is_module = path.suffix == ".py" or (path / "__init__.py").is_file()
        if is_module and name not in NOT_CORE:
            names.add(f"pbgm.{name}")
    return names


def listed(contract: str) -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return set(config[f"importlinter:contract:{contract}"]["source_modules"].split())


def test_the_core_is_found():
    assert {"pbgm.pdp", "pbgm.decision", "pbgm.store", "pbgm.model"} <= core_modules()
    assert not {"pbgm.api", "pbgm.cli", "pbgm.testing"} & core_modules()


@pytest.mark.parametrize("contract", ["core-pure", "cli-api-leaves"])
def test_every_core_module_is_under_the_contract(contract):
    assert core_modules() - listed(contract) == set()
