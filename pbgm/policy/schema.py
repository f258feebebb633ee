"""JSON Schema support for `pbgm.policy.validate` (private).

Loading and caching the schemas of `pbgm/policy/schemas/` (one compiled
`Draft202012Validator` per schema, with format checks for `date-time`, `uri`,
`ipv4` and `ipv6` that need no extra package), turning jsonschema errors into
`Problem`s with stable codes and `$.a[0].b` paths, and the content cross-checks
that JSON Schema cannot express, written as tables.

Each schema is also compiled by `jsonschema_rs` (a validator written in Rust, about a
hundred times faster), which only answers whether a document is valid: a document it
accepts has no schema problems; one it refuses (or cannot read) is checked again by
`jsonschema`, whose errors are the problems shown. So `jsonschema` keeps the last word
on what is refused and how it is said; `jsonschema_rs` must never accept what
`jsonschema` refuses (tests/test_validate_fast.py holds them to that), and where it is
stricter (a pattern's `$` before a final newline) the document is only checked twice.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from pbgm.errors import Problem, ValidationError
from pbgm.model import CATEGORIES
from pbgm.policy.syntax import parse_datetime

# --- loading and caching --------------------------------------------------------

_FORMATS = FormatChecker(formats=())
_VALIDATORS: dict[str, Draft202012Validator] = {}
_FAST: dict[int, Callable[[Any], bool]] = {}
"""`is_valid` of the `jsonschema_rs` twin of each validator of `_VALIDATORS`, by its `id`
(the validators are kept for the life of the process, so their ids stay theirs)."""

FormatCheck = Callable[[object], bool]


def _format(
    name: str, raises: type[Exception] | tuple[type[Exception], ...] = ()
) -> Callable[[FormatCheck], FormatCheck]:
    """`FormatChecker.checks` with its type spelled out: jsonschema has no `py.typed` marker,
    so mypy sees it as Any and would leave every decorated check untyped."""
    register: Callable[[FormatCheck], FormatCheck] = _FORMATS.checks(name, raises)
    return register


@_format("date-time")
def _is_datetime(value: object) -> bool:
    try:
        return not isinstance(value, str) or parse_datetime(value) is not None
    except ValidationError:
        return False


@_format("uri")
def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not re.search(r"\s", value)


@_format("ipv4", raises=ValueError)
def _is_ipv4(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@_format("ipv6", raises=ValueError)
def _is_ipv6(value: object) -> bool:
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


def load_schema(name: str) -> dict[str, Any] | None:
    resource = resources.files("pbgm.policy").joinpath("schemas", f"{name}.json")
    if not resource.is_file():
        return None
    schema: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


def validator_for(
    key: str, build: Callable[[], dict[str, Any] | None]
) -> Draft202012Validator | None:
    """Build each validator once; a missing schema is not cached so it can appear later."""
    if key not in _VALIDATORS:
        schema = build()
        if schema is None:
            return None
        validator = Draft202012Validator(schema, format_checker=_FORMATS)
        _VALIDATORS[key] = validator
        _FAST[id(validator)] = _fast_twin(schema)
    return _VALIDATORS[key]


def _fast_twin(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """A `jsonschema_rs` check of `schema` with the same format checks; a document it
    cannot read, or any failure of its own, counts as "not shown valid"."""
    formats = {name: _safe(check) for name, (check, _) in _FORMATS.checkers.items()}
    try:
        fast = jsonschema_rs.Draft202012Validator(
            schema, formats=formats, validate_formats=True, offline=True
        )
    except Exception:  # a schema it cannot compile: jsonschema alone checks it
        return _never

    def is_valid(instance: Any) -> bool:
        try:
            return bool(fast.is_valid(instance))
        except Exception:
            return False

    return is_valid


def _safe(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def run(value: Any) -> bool:
        try:
            return bool(check(value))
        except Exception:
            return False

    return run


def _never(instance: Any) -> bool:
    return False


def envelope_validator() -> Draft202012Validator:
    validator = validator_for("policy", lambda: load_schema("policy"))
    assert validator is not None, "pbgm/policy/schemas/policy.json is part of the package"
    return validator


def group_validator() -> Draft202012Validator:
    def build() -> dict[str, Any] | None:
        envelope = load_schema("policy") or {}
        return {"$ref": "#/$defs/policy_group", "$defs": envelope.get("$defs", {})}

    validator = validator_for("policy_group", build)
    assert validator is not None
    return validator


def content_validator(policy_type: str) -> Draft202012Validator | None:
    """The validator of a type's `content`; None while no schema is installed."""
    return validator_for(f"content:{policy_type}", lambda: load_schema(policy_type))


def schema_problems(validator: Draft202012Validator, instance: Any, base: str) -> list[Problem]:
    fast = _FAST.get(id(validator))
    if fast is not None and fast(instance):
        return []
    problems: list[Problem] = []
    for error in validator.iter_errors(instance):
        problems += _convert(error, base)
    return problems


_KEYWORD_CODES = {
    **dict.fromkeys(("required", "dependentRequired"), "required"),
    **dict.fromkeys(("enum", "const"), "enum"),
    **dict.fromkeys(("minLength", "maxLength"), "invalid_length"),
    **dict.fromkeys(("minItems", "maxItems", "minProperties", "maxProperties"), "invalid_size"),
    **dict.fromkeys(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"), "out_of_range"),
    **{"type": "type", "pattern": "pattern", "format": "invalid_format"},
    **{"multipleOf": "not_multiple", "uniqueItems": "duplicate_item"},
}
_MESSAGES = {
    "const": "must be `{limit}`",
    "pattern": "`{value}` does not match `{limit}`",
    "format": "`{value}` is not a valid {limit}",
    "minLength": "must have at least {limit} character(s)",
    "maxLength": "must have at most {limit} character(s)",
    "minItems": "must have at least {limit} item(s)",
    "maxItems": "must have at most {limit} item(s)",
    "minProperties": "must have at least {limit} member(s)",
    "maxProperties": "must have at most {limit} member(s)",
    "minimum": "`{value}` is less than the minimum {limit}",
    "maximum": "`{value}` is greater than the maximum {limit}",
    "exclusiveMinimum": "`{value}` must be greater than {limit}",
    "exclusiveMaximum": "`{value}` must be less than {limit}",
    "multipleOf": "`{value}` is not a multiple of {limit}",
    "uniqueItems": "items must be unique",
    "invalid_id": "`{value}` is not a valid id (1-200 characters: letters, digits and `._:@/-`, "
    "starting with a letter or digit)",
    "invalid_attribute": "`{value}` is not a valid attribute name",
}


def _convert(error: SchemaError, base: str) -> list[Problem]:
    """One jsonschema error as pbgm problems (one per missing or unknown member)."""
    keyword = str(error.validator)
    path = json_path(base, error.absolute_path)
    alternatives_code = (
        error.schema.get("x-pbgm-code") if isinstance(error.schema, Mapping) else None
    )
    if keyword in ("anyOf", "oneOf") and alternatives_code:  # the alternatives say it best
        message = str(error.schema.get("x-pbgm-message", "does not match the allowed forms"))
        return [Problem(path, alternatives_code, message)]
    if keyword in ("anyOf", "oneOf") and error.context:
        alternatives = [e.validator_value for e in error.context if e.validator == "required"]
        if len(alternatives) == len(error.context):
            names = ", ".join(f"`{n}`" for names in alternatives for n in names)
            return [Problem(path, "required", f"needs one of {names}")]
        return _convert(best_match(error.context), base)  # its path is absolute
    subschema = error.schema if isinstance(error.schema, Mapping) else {}
    custom = subschema.get("x-pbgm-code")
    if "propertyNames" in error.absolute_schema_path:
        path = member(path, str(error.instance))
    if keyword == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [Problem(member(path, n), "required", f"`{n}` is required") for n in missing]
    if keyword == "additionalProperties":
        return [
            Problem(member(path, k), "additional_property", f"unknown property `{k}`")
            for k in _extra_keys(error.instance, subschema)
        ]
    code = custom or _KEYWORD_CODES.get(keyword, "schema_violation")
    return [Problem(path, code, _message(keyword, code, error))]


def _extra_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    known = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]


def _message(keyword: str, code: str, error: SchemaError) -> str:
    value, limit = error.instance, error.validator_value
    if code == "unknown_category":
        return f"unknown category `{show(value)}`; use one of {choices(CATEGORIES)}"
    if keyword == "type":
        return f"expected {_types(limit)}, got {_json_type(value)}"
    if keyword == "enum":
        return f"`{show(value)}` is not one of {choices(limit)}"
    template = _MESSAGES.get(code) or _MESSAGES.get(keyword, "does not match the allowed forms")
    return template.format(value=show(value), limit=show(limit))


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "unknown")


def _types(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return " or ".join(names)


def choices(values: Iterable[Any]) -> str:
    shown = [f"`{show(v)}`" for v in values]
    return ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "")


def show(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def member(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def json_path(base: str, parts: Iterable[str | int]) -> str:
    for part in parts:
        base = member(base, part)
    return base


def ordered(problems: Iterable[Problem]) -> list[Problem]:
    """Unique problems sorted by path (numerically inside brackets), then code."""

    def key(p: Problem) -> tuple[Any, ...]:
        parts = re.split(r"(\d+)", p.path)
        natural = tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in parts)
        return natural, p.code, p.message

    return sorted(dict.fromkeys(problems), key=key)


# --- content cross-checks ------------------------------------------------------
# Tables rather than code: a pattern is a tuple of keys from `content`, `*` meaning
# every member of an object or item of a list.

_BOUNDS = {  # (where, low, high): `low` must not exceed `high`
    "operational_limits": (
        (("voltage",), "v_min_pu", "v_max_pu"),
        (("voltage",), "v_target_min_pu", "v_target_max_pu"),
        (("power",), "p_min_kw", "p_max_kw"),
        (("power",), "q_min_kvar", "q_max_kvar"),
        (("energy",), "soc_min_pct", "soc_max_pct"),
        (("frequency",), "deadband_low_hz", "deadband_high_hz"),
        (("frequency",), "lfsm_u_threshold_hz", "lfsm_o_threshold_hz"),
        (("inertia_estimate",), "h_min_s", "h_max_s"),
        (("nodes", "*"), "v_min_pu", "v_max_pu"),
        (("nodes", "*"), "p_min_kw", "p_max_kw"),
        (("nodes", "*"), "q_min_kvar", "q_max_kvar"),
    ),
    "service_config": ((("controller", "parameters"), "VMIN", "VMAX"),),
    "service_trigger": ((("event", "conditions", "*"), "low", "high"),),
    "device_qos": ((("qos_profiles", "*"), "min_duration_s", "max_duration_s"),),
}
_INSIDE = {  # (where, value, low, high): `low <= value <= high` when all three are given
    "operational_limits": (
        (("voltage",), "v_target_min_pu", "v_min_pu", "v_max_pu"),
        (("voltage",), "v_target_max_pu", "v_min_pu", "v_max_pu"),
        (("voltage",), "v_ref_pu", "v_min_pu", "v_max_pu"),
        (("frequency",), "f_nominal_hz", "deadband_low_hz", "deadband_high_hz"),
    ),
}
_REFERENCES = {  # (names, object whose keys they must be, what they name)
    "service_config": ((("active_source",), ("data_sources",), "data source"),),
    "data_access": (
        (("polling", "endpoint"), ("endpoints",), "endpoint"),
        (("data_points", "*", "endpoint"), ("endpoints",), "endpoint"),
    ),
    "device_qos": (
        (("device_groups", "*", "default_qos_profile"), ("qos_profiles",), "QoS profile"),
        (("permissions", "*", "qos_profiles", "*"), ("qos_profiles",), "QoS profile"),
    ),
}


def _select(data: Any, pattern: tuple[str, ...], path: str) -> Iterable[tuple[Any, str]]:
    """Every (value, path) reached by following `pattern` from `data`."""
    if not pattern:
        yield data, path
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*" and isinstance(data, Mapping):
        for key, value in data.items():
            yield from _select(value, rest, member(path, str(key)))
    elif head == "*" and isinstance(data, list):
        for i, value in enumerate(data):
            yield from _select(value, rest, member(path, i))
    elif isinstance(data, Mapping) and head in data:
        yield from _select(data[head], rest, member(path, head))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table_check(policy_type: str) -> Callable[[Mapping[str, Any], str], list[Problem]]:
    """The cross-checks of `_BOUNDS`, `_INSIDE` and `_REFERENCES` for one policy type."""

    def check(content: Mapping[str, Any], base: str) -> list[Problem]:
        problems = []
        for where, low, high in _BOUNDS.get(policy_type, ()):
            for section, path in _select(content, where, base):
                a, b = section.get(low), section.get(high)
                if _number(a) and _number(b) and a > b:
                    message = f"`{low}` ({a}) is greater than `{high}` ({b})"
                    problems.append(Problem(member(path, low), "min_greater_than_max", message))
        if problems:  # a band inverted makes "inside the band" meaningless
            return problems
        for where, name, low, high in _INSIDE.get(policy_type, ()):
            for section, path in _select(content, where, base):
                v, a, b = section.get(name), section.get(low), section.get(high)
                if _number(v) and _number(a) and _number(b) and not a <= v <= b:
                    message = f"`{name}` ({v}) lies outside [`{low}`, `{high}`] = [{a}, {b}]"
                    problems.append(Problem(member(path, name), "inconsistent_limits", message))
        for names, keys, what in _REFERENCES.get(policy_type, ()):
            known: Any = next((v for v, _ in _select(content, keys, base)), {})
            for name, path in _select(content, names, base):
                if isinstance(name, str) and name not in known:
                    message = f"unknown {what} `{show(name)}`"
                    problems.append(Problem(path, "unknown_reference", message))
        return problems

    return check


TABLE_CHECKED_TYPES = tuple(sorted({*_BOUNDS, *_INSIDE, *_REFERENCES}))
