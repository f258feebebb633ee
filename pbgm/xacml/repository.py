"""Where `<PolicyIdReference>`s and `<PolicySetIdReference>`s are found.

`DirectoryRepository` holds the XACML files of a directory (or given files), indexed by
kind, id and version; `PoliciesRepository` holds policies already read (the store's, or
those of an earlier import). A reference is resolved by `pbgm.xacml.reader`, which
checks versions and cycles.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pbgm.model import Policy
from pbgm.xacml.elements import local
from pbgm.xacml.references import DEFAULT_VERSION
from pbgm.xacml.safexml import Element, parse_file

MAX_FILES = 10_000


class DirectoryRepository:
    """The policies and policy sets of XACML files (every `*.xml` of a directory)."""

    def __init__(self, files: Iterable[Path]) -> None:
        self.index: dict[tuple[str, str], list[tuple[str, Element]]] = {}
        self.files = 0
        for path in sorted(files):
            self.files += 1
            if self.files > MAX_FILES:
                raise ValueError(f"a policy directory holds at most {MAX_FILES} files")
            self.add(parse_file(path))

    @classmethod
    def of_directory(cls, directory: Path, *, skip: Iterable[Path] = ()) -> DirectoryRepository:
        left_out = {p.resolve() for p in skip}
        files = [p for p in directory.glob("*.xml") if p.resolve() not in left_out]
        return cls(files)

    def add(self, element: Element) -> None:
        kind = local(element)
        if kind not in ("Policy", "PolicySet"):
            return
        policy_id = element.get("PolicyId" if kind == "Policy" else "PolicySetId", "")
        version = element.get("Version", DEFAULT_VERSION)
        self.index.setdefault((kind, policy_id), []).append((version, element))

    def candidates(self, kind: str, policy_id: str) -> list[tuple[str, Element | Policy]]:
        return list(self.index.get((kind, policy_id), ()))


class PoliciesRepository:
    """Policies already read into the model (a set is found as a PolicySet)."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.index: dict[tuple[str, str], list[tuple[str, Element | Policy]]] = {}
        for policy in policies:
            kind = "PolicySet" if policy.is_set else "Policy"
            version = policy.policy_version or DEFAULT_VERSION
            self.index.setdefault((kind, policy.id), []).append((version, policy))

    def candidates(self, kind: str, policy_id: str) -> list[tuple[str, Element | Policy]]:
        return list(self.index.get((kind, policy_id), ()))


class Repositories:
    """Several repositories, asked in turn."""

    def __init__(self, *parts: DirectoryRepository | PoliciesRepository) -> None:
        self.parts = parts

    def candidates(self, kind: str, policy_id: str) -> list[tuple[str, Element | Policy]]:
        for part in self.parts:
            found = part.candidates(kind, policy_id)
            if found:
                return found
        return []
