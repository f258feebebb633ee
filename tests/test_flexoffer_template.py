"""The `flexoffer` policy type's content schema and the template read from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pbgm.errors import ValidationError
from pbgm.flexoffer import (
    FlexOfferTemplate,
    Limits,
    parse_template,
    template_problems,
    template_schema,
    validate_offer,
)
from pbgm.policy.syntax import freeze

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "flexoffers"
TEMPLATE = json.loads((EXAMPLES / "template-bess-01.json").read_text())


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = template_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_field_of_the_schema_is_described() -> None:
    schema = template_schema()
    undescribed = [k for k, v in schema["properties"].items() if not v.get("description")]
    assert undescribed == []


def test_the_example_template_is_complete_and_valid() -> None:
    properties = set(template_schema()["properties"])
    assert set(TEMPLATE) == properties
    template = parse_template(TEMPLATE)
    assert template.energy_per_slice == Limits(-62.5, 62.5)
    assert template.allowed_offered_by == ("bess-01-agent", "vpp-wunsiedel")


def test_a_frozen_policy_content_reads_as_its_document() -> None:
    assert parse_template(freeze(TEMPLATE)) == parse_template(TEMPLATE)
    assert template_problems(freeze({**TEMPLATE, "min_slices": -1})) == template_problems(
        {**TEMPLATE, "min_slices": -1}
    )


def test_the_smallest_template_takes_the_documented_defaults() -> None:
    template = parse_template({"asset_id": "pv-07", "sign_convention": "production_positive"})
    assert template == FlexOfferTemplate("pv-07", "production_positive")
    assert (template.num_seconds_per_interval, template.unit) == (900, "kWh")


def _codes(content: Any) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in template_problems(content)}


@pytest.mark.parametrize(
    ("what", "content", "expected"),
    [
        (
            "a template without a sign convention is ambiguous",
            {"asset_id": "bess-01"},
            {("$.sign_convention", "missing_field")},
        ),
        (
            "only the two sign conventions exist",
            {"asset_id": "bess-01", "sign_convention": "both"},
            {("$.sign_convention", "invalid_value")},
        ),
        (
            "unknown fields are refused, not ignored",
            {**TEMPLATE, "max_slice": 3},
            {("$.max_slice", "unknown_field")},
        ),
        (
            "wrong types are located",
            {**TEMPLATE, "energy_per_slice": {"min": "low"}, "min_slices": 1.5},
            {("$.energy_per_slice.min", "invalid_type"), ("$.min_slices", "invalid_type")},
        ),
        (
            "inverted ranges",
            {**TEMPLATE, "total_energy": {"min": 5, "max": -5}, "min_slices": 100},
            {("$.total_energy", "inverted_bounds"), ("$.min_slices", "inverted_bounds")},
        ),
        (
            "a non-positive interval length",
            {**TEMPLATE, "num_seconds_per_interval": 0},
            {("$.num_seconds_per_interval", "invalid_value")},
        ),
        (
            "not an object at all",
            ["bess-01"],
            {("$", "invalid_type")},
        ),
    ],
)
def test_template_problems(what: str, content: Any, expected: set[tuple[str, str]]) -> None:
    assert _codes(content) == expected


def test_an_offer_is_never_judged_against_an_invalid_template() -> None:
    offer = json.loads((EXAMPLES / "offer-bess-01-valid.json").read_text())
    with pytest.raises(ValidationError) as caught:
        validate_offer(offer, {"asset_id": "bess-01"}, now=datetime(2026, 3, 2, 8, tzinfo=UTC))
    assert [p.code for p in caught.value.problems] == ["missing_field"]
