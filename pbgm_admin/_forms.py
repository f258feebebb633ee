"""Editor forms generated from the JSON Schemas of the policy types.

`content_form(type)` reads `pbgm/policy/schemas/<type>.json` (`content_schema`)
and makes one input per leaf: numbers, integers, enums (a select), booleans (a
select with "not set"), strings, and arrays of plain values (one per line);
an object whose members are known becomes a fieldset; anything the schema
leaves open (maps such as `nodes`, arrays of objects) is a JSON text area.
Every input is named by its JSON path (`content.voltage.v_min_pu`), so a
problem the validator reports at `$.content.voltage.v_min_pu` is shown next to
that input. The envelope of the document (id, group, target, rules ...) has
fixed fields; rules, targets, obligations and advice are JSON.

`read_form` turns the posted form back into a document, collecting every
input that cannot be read (`Problem`s with the input's path); the PAP then
validates the document and its problems are placed the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pbgm.errors import Problem
from pbgm.model import COMBINING_ALGORITHMS
from pbgm.policy import FORMAT, content_schema

JSON_ENVELOPE = ("target", "rules", "obligations", "advice")
TEXT_ENVELOPE = ("id", "asset_id", "description", "valid_from", "valid_until")


@dataclass
class Field:
    name: str  # the JSON path without `$.`: `content.voltage.v_min_pu`
    label: str
    kind: str  # number | integer | text | enum | bool | lines | json
    help: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False
    value: str = ""
    problems: list[Problem] = field(default_factory=list)
    enum_values: tuple[Any, ...] = ()

    @property
    def path(self) -> str:
        return f"$.{self.name}"

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


@dataclass
class Section:
    name: str
    title: str
    help: str = ""
    fields: list[Field] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"$.{self.name}"


@dataclass
class EditorForm:
    """Every input of the editor, with values and the problems placed next to them."""

    policy_type: str
    envelope: list[Field]
    sections: list[Section]
    unplaced: list[Problem] = field(default_factory=list)

    def all_fields(self) -> list[Field]:
        return [*self.envelope, *(f for s in self.sections for f in s.fields)]

    def problem_count(self) -> int:
        placed = sum(len(f.problems) for f in self.all_fields())
        return placed + sum(len(s.problems) for s in self.sections) + len(self.unplaced)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _resolve(merged, root)
    return schema


def _label(name: str) -> str:
    return name.replace("_", " ")


def _leaf(name: str, key: str, schema: Mapping[str, Any], required: bool) -> Field:
    help_text = str(schema.get("description", ""))
    label = _label(key)
    if "enum" in schema:
        values = tuple(schema["enum"])
        choices = tuple(str(v) for v in values)
        return Field(name, label, "enum", help_text, choices, required, enum_values=values)
    kind = schema.get("type")
    if kind in ("number", "integer"):
        return Field(name, label, str(kind), help_text, required=required)
    if kind == "boolean":
        return Field(name, label, "bool", help_text, ("true", "false"), required)
    if kind == "string":
        return Field(name, label, "text", help_text, required=required)
    if kind == "array" and _plain_items(schema):
        return Field(name, label, "lines", help_text + " (one per line)", required=required)
    return Field(name, label, "json", help_text + " (JSON)", required=required)


def _plain_items(schema: Mapping[str, Any]) -> bool:
    items = schema.get("items", {})
    return isinstance(items, Mapping) and (
        items.get("type") == "string" or "enum" in items or ("$ref" in items and "pattern" in items)
    )


def _is_section(schema: Mapping[str, Any]) -> bool:
    return (
        schema.get("type") == "object"
        and isinstance(schema.get("properties"), Mapping)
        and schema.get("additionalProperties") is False
    )


def content_form(policy_type: str) -> list[Section]:
    """The content's sections for `policy_type` (one JSON area when it has no schema)."""
    schema = content_schema(policy_type)
    whole = Section("content", "content", fields=[Field("content", "content", "json")])
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return [whole]
    general = Section("content", "general", str(schema.get("description", "")))
    sections = [general]
    required = set(schema.get("required", ()))
    for key, raw in schema["properties"].items():
        prop = _resolve(raw, schema)
        name = f"content.{key}"
        if _is_section(prop):
            inner = set(prop.get("required", ()))
            section = Section(name, _label(key), str(prop.get("description", "")))
            for sub, sub_raw in prop["properties"].items():
                sub_schema = _resolve(sub_raw, schema)
                section.fields.append(_leaf(f"{name}.{sub}", sub, sub_schema, sub in inner))
            sections.append(section)
        else:
            general.fields.append(_leaf(name, key, prop, key in required))
    return [s for s in sections if s.fields]


def envelope_fields(groups: list[str], *, free_group: bool) -> list[Field]:
    fields = [
        Field("id", "policy id", "text", "letters, digits and . _ : @ / -", required=True),
        Field(
            "policy_group",
            "policy group",
            "text" if free_group else "enum",
            "the policy set it belongs to",
            tuple(groups),
            True,
        ),
        Field("asset_id", "asset id", "text", "the grid asset it is about (optional)"),
        Field("description", "description", "text"),
        Field(
            "valid_from",
            "valid from",
            "text",
            "ISO 8601 with a timezone, e.g. 2026-01-01T00:00:00Z",
        ),
        Field("valid_until", "valid until", "text", "ISO 8601 with a timezone, or empty"),
        Field("rule_combining", "rule combining", "enum", "", tuple(COMBINING_ALGORITHMS)),
        Field("target", "target", "json", "which requests the policy applies to (JSON)"),
        Field("rules", "rules", "json", "rules with conditions, obligations, advice (JSON)"),
        Field("obligations", "obligations", "json", "policy obligations (JSON)"),
        Field("advice", "advice", "json", "policy advice (JSON)"),
    ]
    return fields


def build_form(
    policy_type: str, groups: list[str], *, free_group: bool, document: Mapping[str, Any] | None
) -> EditorForm:
    """The editor for `policy_type`, filled from `document` when given."""
    form = EditorForm(
        policy_type, envelope_fields(groups, free_group=free_group), content_form(policy_type)
    )
    if document is not None:
        for item in form.all_fields():
            item.value = _shown(_get(document, item.name), item.kind)
    return form


def _get(document: Mapping[str, Any], name: str) -> Any:
    value: Any = document
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind == "lines":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else json.dumps(value)
    if kind == "bool":
        return "true" if value is True else "false" if value is False else str(value)
    return str(value)


def fill_from_post(form: EditorForm, posted: Mapping[str, str]) -> None:
    """Show exactly what the user typed (nothing typed is ever lost)."""
    for item in form.all_fields():
        item.value = posted.get(item.name, "")


def read_form(form: EditorForm) -> tuple[dict[str, Any], list[Problem]]:
    """The document the filled form describes, and the inputs that cannot be read."""
    document: dict[str, Any] = {"format": FORMAT, "type": form.policy_type}
    problems: list[Problem] = []
    for item in form.all_fields():
        text = item.value.strip()
        if not text:
            continue
        try:
            value = _parsed(text, item)
        except ValueError as error:
            problems.append(Problem(item.path, _code(item), str(error)))
            continue
        _put(document, item.name, value)
    document.setdefault("content", {})
    return document, problems


def _code(item: Field) -> str:
    return {"number": "invalid_number", "integer": "invalid_number", "json": "invalid_json"}.get(
        item.kind, "invalid_value"
    )


def _parsed(text: str, item: Field) -> Any:
    if item.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"`{text}` is not a number") from None
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if item.kind == "integer":
        if not text.lstrip("-").isdigit():
            raise ValueError(f"`{text}` is not a whole number")
        return int(text)
    if item.kind == "bool":
        if text not in ("true", "false"):
            raise ValueError("choose true, false or not set")
        return text == "true"
    if item.kind == "enum" and item.enum_values:
        for value in item.enum_values:
            if str(value) == text:
                return value
        raise ValueError(f"`{text}` is not one of the choices")
    if item.kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if item.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            ) from None
    return text


def _put(document: dict[str, Any], name: str, value: Any) -> None:
    parts = name.split(".")
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def place_problems(form: EditorForm, problems: list[Problem]) -> None:
    """Each problem next to the input (or fieldset) whose path is the longest prefix."""
    fields = sorted(form.all_fields(), key=lambda f: len(f.path), reverse=True)
    sections = sorted(form.sections, key=lambda s: len(s.path), reverse=True)
    for problem in problems:
        target = next((f for f in fields if _under(problem.path, f.path)), None)
        if target is not None:
            target.problems.append(problem)
            continue
        section = next((s for s in sections if _under(problem.path, s.path)), None)
        if section is not None:
            section.problems.append(problem)
        else:
            form.unplaced.append(problem)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")
