"""Every import path the README and the docs show resolves.

Two kinds of reference are read from `README.md` and `docs/*.md`: the `from X import a, b`
and `import X` lines of their code blocks, and the dotted names in backticks that start
with one of pbgm's packages (`pbgm.pdp.PolicyDecisionPoint`, `adapters.relay`). Each must
import (the longest module prefix) and resolve (the rest as attributes), so a module that
moves without its docs fails here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("pbgm", "pbgm_admin", "adapters", "controls")
NOT_PATHS = {
    "pbgm.services": "an entry-point group (setup.cfg), not a module",
}
"""Dotted names in the docs that are not import paths, and what they are."""

_ANY = "|".join(PACKAGES)
_IMPORT = re.compile(rf"^\s*from ((?:{_ANY})[\w.]*) import ([\w, ()]+)$", re.M)
_PLAIN_IMPORT = re.compile(rf"^\s*import ((?:{_ANY})[\w.]*)\s*$", re.M)
_DOTTED = re.compile(rf"`((?:{_ANY})(?:\.\w+)+)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def references() -> set[str]:
    found: set[str] = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in _FENCE.findall(text):
            for module, names in _IMPORT.findall(block):
                found |= {f"{module}.{n.strip()}" for n in names.strip("()").split(",") if n}
            found |= set(_PLAIN_IMPORT.findall(block))
        found |= {name.rstrip(".") for name in _DOTTED.findall(_FENCE.sub("", text))}
    return found - set(NOT_PATHS)


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_docs_name_import_paths():
    found = references()
    assert {"pbgm.pdp.PolicyDecisionPoint", "pbgm.store.MemoryStore"} <= found
    assert len(found) > 50


@pytest.mark.parametrize("dotted", sorted(references()))
def test_an_import_path_of_the_docs_resolves(dotted):
    assert resolve(dotted) is not None


def test_a_stale_path_does_not_resolve():
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        resolve("pbgm._compiled.CompiledPolicySet")
