"""The bundle file format: `Bundle`, reading and writing its two forms."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pbgm.errors import InvalidInputError, Problem, ValidationError
from pbgm.model import Permission, PolicyGroup
from pbgm.pap import plain_json
from pbgm.policy import canonical_json, load_file
from pbgm.store.base import Grant, User

FORMAT = "pbgm/bundle/v1"
EVERY = 50  # documents between two reports of a phase
Phases = Callable[[str, int, int], None]
"""`(phase, done, total)`: `reading`, then those of an import (`validating`, `planning`,
`writing`), each from 0 to its total."""
BUNDLE_FILE = "bundle.json"
POLICY_DIR = "policies"
POLICY_SUFFIXES = (".json", ".yaml", ".yml")
_SECTIONS = ("format", "policy_groups", "policies", "users", "groups", "grants")


@dataclass(frozen=True, slots=True)
class BundleGroup:
    """A group of users and its members' names."""

    name: str
    description: str = ""
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bundle:
    """The content of a bundle, kept sorted so equal content compares equal.

    `sources` names where each policy came from (a file, or `policies[3]`); it is
    used to locate problems and takes no part in equality. The policies are kept as
    plain JSON (`pbgm.pap.plain_json`: YAML timestamps as ISO strings, tuples as
    lists), made so once here, so what is validated is what is written.
    """

    policies: tuple[dict[str, Any], ...] = ()
    policy_groups: tuple[PolicyGroup, ...] = ()
    users: tuple[User, ...] = ()
    groups: tuple[BundleGroup, ...] = ()
    grants: tuple[Grant, ...] = ()
    sources: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        sources = self.sources
        if len(sources) != len(self.policies):  # e.g. `replace(bundle, policies=...)`
            sources = tuple(f"policies[{i}]" for i in range(len(self.policies)))
        plain = (plain_json(p) for p in self.policies)
        pairs = sorted(zip(plain, sources, strict=True), key=lambda p: _policy_key(p[0]))
        groups = (replace(g, members=tuple(sorted(set(g.members)))) for g in self.groups)
        setters = {
            "policies": tuple(p for p, _ in pairs),
            "sources": tuple(s for _, s in pairs),
            "policy_groups": tuple(sorted(self.policy_groups, key=lambda g: g.id)),
            "users": tuple(sorted(self.users, key=lambda u: u.name)),
            "groups": tuple(sorted(groups, key=lambda g: g.name)),
            "grants": tuple(sorted(self.grants, key=_grant_key)),
        }
        for name, value in setters.items():
            object.__setattr__(self, name, value)


def _policy_key(doc: Any) -> str:
    return str(doc.get("id", "")) if isinstance(doc, Mapping) else ""


def _grant_key(grant: Grant) -> tuple[str, ...]:
    return (
        grant.target_kind,
        grant.target,
        grant.principal_kind,
        grant.principal,
        grant.permission,
    )


# --- reading -------------------------------------------------------------------


def read_bundle(path: str | Path, phases: Phases | None = None) -> Bundle:
    """A bundle from a file or a directory; `ValidationError` lists every problem found.

    A file that cannot be read at all (malformed, too large) is reported as a
    problem of that file when it is one of several; a single-file bundle raises
    the reading error itself. `phases` follows the `reading`: file by file for a
    directory, from 0 to 1 for a single file (one parse).
    """
    path = Path(path)
    if path.is_dir():
        return _read_directory(path, phases)
    if not path.exists():
        raise InvalidInputError(f"no bundle at `{path}`: give a bundle file or directory")
    if phases is not None:
        phases("reading", 0, 1)
    data = load_file(path)
    problems: list[Problem] = []
    bundle = bundle_from_data(data, source=path.name, problems=problems, with_policies=True)
    _raise_if(problems)
    if phases is not None:
        phases("reading", 1, 1)
    return bundle


def _read_directory(path: Path, phases: Phases | None) -> Bundle:
    problems: list[Problem] = []
    data: Any = {"format": FORMAT}
    if (path / BUNDLE_FILE).exists():
        data = _load_or_report(path / BUNDLE_FILE, BUNDLE_FILE, problems) or {"format": FORMAT}
    policies, sources = [], []
    files = _policy_files(path / POLICY_DIR)
    for done, file in enumerate(files):
        if phases is not None and done % EVERY == 0:
            phases("reading", done, len(files))
        source = f"{POLICY_DIR}/{file.name}"
        doc = _load_or_report(file, source, problems)
        if doc is not None:
            policies.append(doc)
            sources.append(source)
    bundle = bundle_from_data(data, source=BUNDLE_FILE, problems=problems, with_policies=False)
    _raise_if(problems)
    bundle = replace(bundle, policies=tuple(policies), sources=tuple(sources))
    if phases is not None:
        phases("reading", len(files), len(files))
    return bundle


def _policy_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in POLICY_SUFFIXES and p.is_file())


def _load_or_report(file: Path, source: str, problems: list[Problem]) -> Any:
    try:
        return load_file(file)
    except InvalidInputError as error:
        problems.append(Problem(source, error.code, error.message))
        return None


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ValidationError(problems)


def bundle_from_data(
    data: Any, *, source: str, problems: list[Problem], with_policies: bool
) -> Bundle:
    """Parse the bundle document, appending every problem to `problems`."""
    at = _Locator(source, problems)
    if not isinstance(data, Mapping):
        at.problem("$", "type", "a bundle is an object with `format`, `policies`, ...")
        return Bundle()
    if data.get("format") != FORMAT:
        at.problem("$.format", "unknown_format", f"set `format` to `{FORMAT}`")
    allowed = _SECTIONS if with_policies else tuple(s for s in _SECTIONS if s != "policies")
    for key in data:
        if key not in allowed:
            at.problem(f"$.{key}", "additional_property", f"unknown section `{key}`")
    policies = _items(data, "policies", at) if with_policies else []
    return Bundle(
        policies=tuple(policies),
        sources=tuple(f"policies[{i}]" for i in range(len(policies))),
        policy_groups=tuple(_parsed(data, "policy_groups", _policy_group, at)),
        users=tuple(_parsed(data, "users", _user, at)),
        groups=tuple(_parsed(data, "groups", _group, at)),
        grants=tuple(_parsed(data, "grants", _grant, at)),
    )


class _Locator:
    """Records problems under the bundle's source name."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems

    def problem(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(f"{self.source}:{path}", code, message))


def _items(data: Mapping[str, Any], key: str, at: _Locator) -> list[Any]:
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        at.problem(f"$.{key}", "type", f"`{key}` must be a list")
        return []
    return items


def _parsed(data: Mapping[str, Any], key: str, parse: Any, at: _Locator) -> Iterable[Any]:
    for i, item in enumerate(_items(data, key, at)):
        path = f"$.{key}[{i}]"
        try:
            yield parse(item)
        except _EntryError as error:
            at.problem(f"{path}{error.field}", error.code, error.message)


class _EntryError(Exception):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def _text(item: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = item.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise _EntryError(f".{key}", "required" if value is None else "type", f"`{key}` text")
    return value


def _choice(item: Mapping[str, Any], key: str, choices: Iterable[str]) -> str:
    value = _text(item, key)
    if value not in choices:
        allowed = ", ".join(f"`{c}`" for c in choices)
        raise _EntryError(f".{key}", "enum", f"`{value}` is not one of {allowed}")
    return value


def _flag(item: Mapping[str, Any], key: str) -> bool:
    value = item.get(key, True)
    if not isinstance(value, bool):
        raise _EntryError(f".{key}", "type", f"`{key}` must be true or false")
    return value


def _require_object(item: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise _EntryError("", "type", "expected an object")
    return item


def _policy_group(item: Any) -> PolicyGroup:
    item = _require_object(item)
    return PolicyGroup(
        id=_text(item, "id"),
        policy_combining=_text(item, "policy_combining", required=False) or "deny-overrides",
        description=_text(item, "description", required=False),
    )


def _user(item: Any) -> User:
    if isinstance(item, str) and item:
        return User(item)
    item = _require_object(item)
    return User(
        name=_text(item, "name"),
        display_name=_text(item, "display_name", required=False),
        enabled=_flag(item, "enabled"),
    )


def _group(item: Any) -> BundleGroup:
    item = _require_object(item)
    members = item.get("members") or []
    if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
        raise _EntryError(".members", "type", "`members` must be a list of names")
    return BundleGroup(
        _text(item, "name"), _text(item, "description", required=False), tuple(members)
    )


def _grant(item: Any) -> Grant:
    item = _require_object(item)
    return Grant(
        principal_kind=_choice(item, "principal_kind", ("user", "group", "service")),
        principal=_text(item, "principal"),
        target_kind=_choice(item, "target_kind", ("policy", "policy_group")),
        target=_text(item, "target"),
        permission=Permission(_choice(item, "permission", [p.value for p in Permission])),
        enabled=_flag(item, "enabled"),
    )


# --- writing -------------------------------------------------------------------


def bundle_data(bundle: Bundle, *, with_policies: bool = True) -> dict[str, Any]:
    """The canonical document of a bundle (what `write_bundle` writes)."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "policy_groups": [
            {"id": g.id, "policy_combining": g.policy_combining, "description": g.description}
            for g in bundle.policy_groups
        ],
        "users": [_user_data(u) for u in bundle.users],
        "groups": [
            {"name": g.name, "description": g.description, "members": list(g.members)}
            for g in bundle.groups
        ],
        "grants": [_grant_data(g) for g in bundle.grants],
    }
    if with_policies:
        data["policies"] = list(bundle.policies)
    return data


def _user_data(user: User) -> dict[str, Any]:
    out: dict[str, Any] = {"name": user.name}
    if user.display_name:
        out["display_name"] = user.display_name
    if not user.enabled:
        out["enabled"] = False
    return out


def _grant_data(grant: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "principal_kind": grant.principal_kind,
        "principal": grant.principal,
        "target_kind": grant.target_kind,
        "target": grant.target,
        "permission": str(grant.permission),
    }
    if not grant.enabled:
        out["enabled"] = False
    return out


def write_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write a bundle: one file when `path` ends in .json/.yaml/.yml, else a directory.

    In the directory form, stale policy files in `policies/` are removed so that
    the directory holds exactly the bundle. Policy files are named after the
    policy id, percent-encoding characters unsafe in file names (`/` and `:`).
    """
    path = Path(path)
    if path.suffix in POLICY_SUFFIXES:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_serialise(bundle_data(bundle), yaml_form=path.suffix != ".json"))
        return path
    policy_dir = path / POLICY_DIR
    policy_dir.mkdir(parents=True, exist_ok=True)
    (path / BUNDLE_FILE).write_text(canonical_json(bundle_data(bundle, with_policies=False)))
    wanted = {policy_file_name(p): p for p in bundle.policies}
    for stale in _policy_files(policy_dir):
        if stale.name not in wanted:
            stale.unlink()
    for name, doc in wanted.items():
        (policy_dir / name).write_text(canonical_json(doc))
    return path


def policy_file_name(doc: Mapping[str, Any]) -> str:
    return urllib.parse.quote(str(doc.get("id", "")), safe="") + ".json"


def _serialise(data: Any, *, yaml_form: bool) -> str:
    if yaml_form:
        text: str = yaml.safe_dump(
            data, sort_keys=True, allow_unicode=True, default_flow_style=False
        )
        return text
    return canonical_json(data)
