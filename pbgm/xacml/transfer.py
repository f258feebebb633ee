"""XACML files to pbgm/v1 documents and back: what `pbgm xacml import` and `export` move.

`read_files(paths, ...)` reads XACML policy files (a directory: its `*.xml`) into
`Imported`: the pbgm/v1 documents of their root policies and policy sets, and the policy
groups of the policy sets `pbgm xacml export` wrote for groups. Every file is read and
checked before anything is returned, and any problem refuses the whole import
(`XacmlError`, each problem prefixed with its file). References are resolved among the
files given, then in `references` (a directory) and `known` (policies of the repository).

`write_groups(groups, documents)` writes each policy group with its policies as one
`<PolicySet>` (`pbgm.xacml.writer.group_element`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pbgm.errors import Problem
from pbgm.model import Policy, PolicyGroup
from pbgm.policy import dump_policy, parse_policy
from pbgm.xacml.elements import XacmlError, local
from pbgm.xacml.reader import read_policy
from pbgm.xacml.references import Repository
from pbgm.xacml.repository import DirectoryRepository, PoliciesRepository, Repositories
from pbgm.xacml.safexml import Element, parse_file
from pbgm.xacml.writer import GROUP_PARAMETER, group_element, xml_text

DEFAULT_GROUP = "xacml"


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import brings: pbgm/v1 documents, their sources, and policy groups."""

    documents: tuple[dict[str, Any], ...]
    sources: tuple[str, ...]
    groups: tuple[PolicyGroup, ...] = ()


def xml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.xml")) if path.is_dir() else [path]
    return files


def read_files(
    paths: Sequence[Path],
    *,
    group: str | None = None,
    references: Path | None = None,
    known: Iterable[Policy] = (),
) -> Imported:
    """Read XACML files (see the module docstring); `group` puts every policy in that
    policy group (default: the group a pbgm export recorded, else `xacml`)."""
    files = xml_files(paths)
    elements = {path: parse_file(path) for path in files}
    given = DirectoryRepository([])
    for element in elements.values():
        given.add(element)
    parts: list[Repository] = [given]
    if references is not None:
        parts.append(DirectoryRepository.of_directory(references))
    parts.append(PoliciesRepository(known))
    repository = Repositories(*parts)  # type: ignore[arg-type]
    documents, sources, groups = [], [], []
    problems: list[Problem] = []
    for path, element in elements.items():
        try:
            found = _read(element, repository, group)
        except XacmlError as error:
            problems += [
                Problem(f"{path.name}:{p.path}", p.code, p.message) for p in error.problems
            ]
            continue
        groups += found[1]
        for policy in found[0]:
            documents.append(dump_policy(policy))
            sources.append(path.name)
    if problems:
        raise XacmlError(problems)
    return Imported(tuple(documents), tuple(sources), tuple(groups))


def _read(
    element: Element, repository: Repository, group: str | None
) -> tuple[list[Policy], list[PolicyGroup]]:
    policy = read_policy(element, repository)
    if policy.is_set and _is_group(element):
        group_id = group or policy.id
        members = [_in_group(p, group or p.policy_group or group_id) for p in policy.policies]
        combining = policy.policy_combining or "deny-overrides"
        return members, [PolicyGroup(group_id, combining, policy.description)]
    return [_in_group(policy, group or policy.policy_group or DEFAULT_GROUP)], []


def _is_group(element: Element) -> bool:
    for child in element:
        if local(child) != "CombinerParameters":
            continue
        for parameter in child:
            if parameter.get("ParameterName", "").endswith(":" + GROUP_PARAMETER):
                return True
    return False


def _in_group(policy: Policy, group: str) -> Policy:
    return replace(policy, policy_group=group)


def write_groups(
    groups: Sequence[PolicyGroup], documents: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """The XACML text of each policy group (by group id) with its policies; a policy whose
    group has no document is written in a group of the default algorithm."""
    by_group: dict[str, list[Policy]] = {}
    for document in documents:
        policy = parse_policy(document)
        by_group.setdefault(policy.policy_group, []).append(policy)
    known = {g.id: g for g in groups}
    return {
        group_id: xml_text(group_element(known.get(group_id, PolicyGroup(group_id)), members))
        for group_id, members in sorted(by_group.items())
    }
