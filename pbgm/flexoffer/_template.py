"""The `flexoffer` policy type: its content schema and the template read from it.

The schema is `pbgm/policy/schemas/flexoffer.json` (JSON Schema 2020-12). A template
that breaks it, or whose ranges are inverted, is refused with every problem
listed: a FlexOffer is never judged against an ambiguous template.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from pbgm.errors import Problem, ValidationError
from pbgm.policy import load_schema, thaw


@dataclass(frozen=True, slots=True)
class Limits:
    """An operator's `{min, max}`; either side may be open."""

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True, slots=True)
class FlexOfferTemplate:
    """The content of a `flexoffer` policy, defaults applied (see the schema's descriptions)."""

    asset_id: str
    sign_convention: str
    allowed_direction: str = "both"
    unit: str = "kWh"
    profile_type: str | None = None
    num_seconds_per_interval: int = 900
    align_to_interval_grid: bool = True
    min_slices: int = 1
    max_slices: int | None = None
    min_slice_duration: int = 1
    max_slice_duration: int | None = None
    max_profile_duration: int | None = None
    max_activation_window_s: int | None = None
    min_lead_time_s: int = 0
    require_accept_before_time: bool = False
    max_offer_horizon_s: int | None = None
    clock_skew_s: int = 0
    strict_deadline_order: bool = True
    energy_per_slice: Limits = Limits()
    total_energy: Limits = Limits()
    power_factor: Limits = Limits()
    price: Limits = Limits()
    currency: str | None = None
    allowed_offered_by: tuple[str, ...] | None = None
    energy_tolerance: float = 0.01
    grid_node: int | None = None


_LIMITS = ("energy_per_slice", "total_energy", "power_factor", "price")
_PAIRS = (("min_slices", "max_slices"), ("min_slice_duration", "max_slice_duration"))


@cache
def template_schema() -> Mapping[str, Any]:
    """The JSON Schema of a `flexoffer` policy's content."""
    schema = load_schema("flexoffer")
    assert schema is not None, "pbgm/policy/schemas/flexoffer.json is part of the package"
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(template_schema())


def template_problems(content: Any) -> list[Problem]:
    """Every problem of a template: schema violations, then inverted ranges.

    A frozen policy content (read-only mappings, tuples) is read as plain JSON.
    """
    content = thaw(content)
    errors = _validator().iter_errors(content)
    problems = _dedupe(p for e in errors for p in _schema_problems(e))
    if problems or not isinstance(content, Mapping):
        return problems
    return _range_problems(content)


def parse_template(content: FlexOfferTemplate | Mapping[str, Any]) -> FlexOfferTemplate:
    """The template of a policy's content; `ValidationError` when it is unusable."""
    if isinstance(content, FlexOfferTemplate):
        return content
    data: dict[str, Any] = thaw(content)
    problems = template_problems(data)
    if problems:
        raise ValidationError(problems, "the flexoffer template is invalid")
    known = {f.name for f in fields(FlexOfferTemplate)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    for name in _LIMITS:
        if name in values:
            values[name] = Limits(values[name].get("min"), values[name].get("max"))
    if "allowed_offered_by" in values:
        values["allowed_offered_by"] = tuple(values["allowed_offered_by"])
    return FlexOfferTemplate(**values)


def _range_problems(content: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for name in _LIMITS:
        limits = content.get(name) or {}
        if "min" in limits and "max" in limits and limits["min"] > limits["max"]:
            problems.append(Problem(f"$.{name}", "inverted_bounds", "`min` exceeds `max`"))
    for low, high in _PAIRS:
        if low in content and high in content and content[low] > content[high]:
            problems.append(Problem(f"$.{low}", "inverted_bounds", f"exceeds `{high}`"))
    return problems


def _schema_problems(error: SchemaError) -> list[Problem]:
    path = _json_path(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [k for k in value if k not in error.instance]
        return [Problem(f"{path}.{k}", "missing_field", f"`{k}` is required") for k in missing]
    if kind == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = sorted(k for k in error.instance if k not in allowed)
        return [Problem(f"{path}.{k}", "unknown_field", f"unknown field `{k}`") for k in extra]
    if kind == "type":
        return [Problem(path, "invalid_type", f"expected {value}")]
    if kind == "enum":
        choices = ", ".join(f"`{v}`" for v in value)
        return [Problem(path, "invalid_value", f"must be one of {choices}")]
    return [Problem(path, "invalid_value", _short_message(kind, value))]


def _short_message(kind: Any, value: Any) -> str:
    messages = {
        "minimum": f"must be at least {value}",
        "exclusiveMinimum": f"must be greater than {value}",
        "minLength": "must not be empty",
        "minProperties": "must not be empty",
        "uniqueItems": "must not repeat items",
        "pattern": "has the wrong form",
    }
    return messages.get(str(kind), f"breaks the `{kind}` rule")


def _json_path(parts: Iterable[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
