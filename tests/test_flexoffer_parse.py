"""Reading FlexOffers in every spelling seen in the wild, and writing the canonical one."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from pbgm.errors import ValidationError
from pbgm.flexoffer import (
    Bounds,
    PriceBounds,
    ScheduleSlice,
    dump_flexoffer,
    dump_schedule,
    parse_flexoffer,
    parse_schedule,
)
from tests.flexoffer_strategies import offers, schedules

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "flexoffers"


def load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def spec_offer() -> dict[str, Any]:
    """The valid example with a schedule attached, in the spec's spelling."""
    document = load("offer-bess-01-valid.json")
    document["flexOfferSchedule"] = load("schedule-bess-01-valid.json")
    return document


def java_offer() -> dict[str, Any]:
    """The same offer as the GOFLEX Java code writes it."""
    return {
        "id": "fo-bess-01-20260302-a",
        "state": "Offered",
        "offeredById": "bess-01-agent",
        "locationId": "wunsiedel-lv-feeder-3",
        "numSecondsPerInterval": 900,
        "creationTime": "2026-03-02T07:58:12.000+0000",
        "creationInterval": 1969375,
        "acceptanceBeforeTime": "2026-03-02T09:00:00.000+0000",
        "acceptanceBeforeInterval": 1969380,
        "assignmentBeforeInterval": 1969388,
        "assignmentBeforeDurationIntervals": 1,
        "startAfterInterval": 1969392,
        "startBeforeTime": "2026-03-02T15:00:00.000+0100",
        "endBeforeTime": "2026-03-02T16:00:00.000+0000",
        "flexOfferProfileConstraints": [
            _java_slice(0, 50, 0.05, 0.25, max_duration=2),
            _java_slice(-50, 50, 0.05, 0.25),
            _java_slice(-50, 0, 0.08, 0.3),
            _java_slice(-50, 0, 0.08, 0.3),
        ],
        "totalEnergyConstraint": {"lowerBound": -20, "upperBound": 40},
        "powerFactorConstraint": {"lower": 0.95, "upper": 1.0},
        "flexOfferSchedule": {
            "scheduleId": 1,
            "updateId": 0,
            "startTime": "2026-03-02T12:30:00.000+0000",
            "scheduleSlices": [
                {"duration": 2, "energyAmount": "80", "tariff": 0.12},
                {"duration": 1, "energyAmount": "10.0", "tariff": 0.12},
                {"duration": 1, "energyAmount": "-30", "tariff": 0.2},
                {"duration": 1, "energyAmount": -30, "tariff": 0.2},
            ],
        },
    }


def _java_slice(low: float, high: float, pmin: float, pmax: float, max_duration: int = 1) -> Any:
    return {
        "energyConstraintList": [{"lowerBound": low, "upperBound": high}],
        "tariffConstraint": {"minTariff": pmin, "maxTariff": pmax},
        "minDuration": 1,
        "maxDuration": max_duration,
    }


def snake_offer() -> dict[str, Any]:
    document = spec_offer()
    renames = {
        "offeredById": "offered_by_id",
        "locationId": "location_id",
        "numSecondsPerInterval": "num_seconds_per_interval",
        "creationTime": "creation_time",
        "acceptBeforeTime": "accept_before_time",
        "assignmentBeforeTime": "assignment_before_time",
        "assignmentBeforeStart": "assignment_before_start",
        "startAfterTime": "start_after_time",
        "startBeforeTime": "start_before_time",
        "endBeforeTime": "end_before_time",
        "totalEnergyConstraint": "total_energy_constraint",
        "powerFactorConstraint": "power_factor_constraint",
        "flexOfferProfilType": "profile_type",
        "flexOfferSchedule": "schedule",
        "flexOfferProfileConstraints": "profile",
    }
    out = {renames.get(k, k): v for k, v in document.items()}
    for piece in out["profile"]:
        piece["energy_constraints"] = piece.pop("energyConstraintList")
        price = piece.pop("priceConstraint")
        piece["price_constraint"] = {"min_price": price["minPrice"], "max_price": price["maxPrice"]}
        piece["min_duration"], piece["max_duration"] = (
            piece.pop("minDuration"),
            piece.pop("maxDuration"),
        )
    out["schedule"] = {"start_time": out["schedule"]["startTime"], **out["schedule"]}
    del out["schedule"]["startTime"]
    return out


def older_offer() -> dict[str, Any]:
    """The older spec revision: `durationSeconds`, `energyConstraint`, `energyAmounts[]`."""
    document = spec_offer()
    document.pop("assignmentBeforeStart")
    document["assignmentBeforeDurationSeconds"] = 900
    document["flexOfferProfileConstraints"] = [
        {"durationSeconds": 900, "energyConstraint": {"lower": -50, "upper": 50}},
        {"durationSeconds": 1800, "energyConstraint": {"lower": 0, "upper": 50}},
    ]
    document["flexOfferSchedule"] = {
        "startTime": "2026-03-02T12:30:00Z",
        "energyAmounts": [10, "60"],
    }
    return document


def test_the_java_spelling_reads_as_the_spec_spelling() -> None:
    assert parse_flexoffer(java_offer()) == parse_flexoffer(spec_offer())


def test_the_snake_case_spelling_reads_as_the_spec_spelling() -> None:
    assert parse_flexoffer(snake_offer()) == parse_flexoffer(spec_offer())


def test_a_wrapped_document_reads_as_the_bare_one() -> None:
    assert parse_flexoffer({"flexOffer": spec_offer()}) == parse_flexoffer(spec_offer())


def test_the_older_shape_reads_durations_in_intervals_and_amounts_per_slice() -> None:
    offer = parse_flexoffer(older_offer())
    assert [(s.min_duration, s.max_duration) for s in offer.profile] == [(1, 1), (2, 2)]
    assert offer.profile[1].energy_constraints == (Bounds(0.0, 50.0),)
    assert offer.assignment_before_start == 900
    assert offer.schedule is not None
    assert offer.schedule.slices == (ScheduleSlice(10.0, 1), ScheduleSlice(60.0, 2))


def test_spec_defaults_apply_when_optional_fields_are_absent() -> None:
    document = spec_offer()
    for key in (
        "startAfterTime",
        "assignmentBeforeTime",
        "assignmentBeforeStart",
        "numSecondsPerInterval",
        "unit",
        "multiplier",
        "flexOfferProfilType",
    ):
        document.pop(key)
    offer = parse_flexoffer(document)
    assert offer.start_after_time == datetime(2026, 3, 2, 7, 58, 12, tzinfo=UTC)
    assert offer.assignment_before_time == offer.start_after_time
    assert (offer.assignment_before_start, offer.num_seconds_per_interval) == (0, 900)
    assert (offer.effective_unit, offer.profile_type) == ("kWh", "activeEnergy")
    assert offer.effective_power_factor == Bounds(0.95, 1.0)


def test_prices_and_tariffs_are_one_thing() -> None:
    offer = parse_flexoffer(java_offer())
    assert offer.profile[2].price_constraint == PriceBounds(0.08, 0.3)
    assert offer.schedule is not None
    assert [s.price for s in offer.schedule.slices] == [0.12, 0.12, 0.2, 0.2]


def _problems(document: Any) -> set[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_flexoffer(document)
    return {(p.path, p.code) for p in caught.value.problems}


def _broken(**changes: Any) -> dict[str, Any]:
    document = spec_offer()
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("what", "document", "expected"),
    [
        (
            "every missing mandatory field is listed",
            _broken(id=None, state=None, offeredById=None, startBeforeTime=None),
            {
                ("$.id", "missing_field"),
                ("$.state", "missing_field"),
                ("$.offeredById", "missing_field"),
                ("$.startBeforeTime", "missing_field"),
            },
        ),
        (
            "unparseable and naive times",
            _broken(creationTime="yesterday", acceptBeforeTime="2026-03-02T09:00:00"),
            {("$.creationTime", "invalid_datetime"), ("$.acceptBeforeTime", "naive_datetime")},
        ),
        (
            "wrong types",
            _broken(flexOfferProfileConstraints={"a": 1}, numSecondsPerInterval="fast"),
            {
                ("$.flexOfferProfileConstraints", "invalid_type"),
                ("$.numSecondsPerInterval", "invalid_type"),
            },
        ),
        (
            "a time disagreeing with its interval number",
            _broken(startAfterInterval=1969393),
            {("$.startAfterInterval", "conflicting_fields")},
        ),
        (
            "two spellings disagreeing",
            _broken(acceptanceBeforeTime="2026-03-02T09:15:00Z"),
            {("$.acceptanceBeforeTime", "conflicting_fields")},
        ),
        (
            "negative lead before start",
            _broken(assignmentBeforeStart=-60),
            {("$.assignmentBeforeStart", "invalid_value")},
        ),
        (
            "a number that is not one",
            _broken(totalEnergyConstraint={"lower": "lots", "upper": float("inf")}),
            {
                ("$.totalEnergyConstraint.lower", "invalid_number"),
                ("$.totalEnergyConstraint.upper", "invalid_number"),
            },
        ),
        (
            "a non-positive interval length",
            _broken(numSecondsPerInterval=0),
            {("$.numSecondsPerInterval", "invalid_value")},
        ),
    ],
)
def test_malformed_offers_list_every_problem(
    what: str, document: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    assert _problems(document) == expected


def test_problems_inside_slices_and_schedules_carry_their_paths() -> None:
    document = spec_offer()
    document["flexOfferProfileConstraints"][1]["energyConstraintList"][0].pop("upper")
    document["flexOfferProfileConstraints"][2] = "slice"
    document["flexOfferSchedule"]["scheduleSlices"][3]["energyAmount"] = "ten"
    assert _problems(document) == {
        ("$.flexOfferProfileConstraints[1].energyConstraintList[0].upper", "missing_field"),
        ("$.flexOfferProfileConstraints[2]", "invalid_type"),
        ("$.flexOfferSchedule.scheduleSlices[3].energyAmount", "invalid_number"),
    }


def test_per_interval_arrays_of_the_spec_example_are_refused_plainly() -> None:
    document = spec_offer()
    document["flexOfferProfileConstraints"][0]["energyConstraintList"] = [
        {"lower": [0, 0], "upper": [5, 5]}
    ]
    path = "$.flexOfferProfileConstraints[0].energyConstraintList[0]"
    assert _problems(document) == {
        (f"{path}.lower", "unsupported_shape"),
        (f"{path}.upper", "unsupported_shape"),
    }


def test_a_non_object_is_one_problem() -> None:
    assert _problems(["not", "an", "offer"]) == {("$", "invalid_type")}


def test_dump_writes_the_spec_spelling() -> None:
    dumped = dump_flexoffer(parse_flexoffer(java_offer()))
    assert dumped["acceptBeforeTime"] == "2026-03-02T09:00:00Z"
    assert dumped["startBeforeTime"] == "2026-03-02T14:00:00Z"
    assert dumped["flexOfferProfileConstraints"][0]["priceConstraint"] == {
        "minPrice": 0.05,
        "maxPrice": 0.25,
    }
    assert dumped["flexOfferSchedule"]["scheduleSlices"][0]["price"] == 0.12
    assert "acceptanceBeforeTime" not in dumped


def test_a_standalone_schedule_uses_the_offer_for_older_amounts() -> None:
    offer = parse_flexoffer(older_offer())
    schedule = parse_schedule({"startInterval": 1969394, "energyAmounts": [1, 2]}, offer=offer)
    assert schedule.start_time == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert [s.duration for s in schedule.slices] == [1, 2]


@settings(max_examples=150, deadline=None)
@given(offers())
def test_parse_of_dump_is_the_offer(offer: Any) -> None:
    document = dump_flexoffer(offer)
    assert parse_flexoffer(json.loads(json.dumps(document))) == offer
    assert document == dump_flexoffer(parse_flexoffer(copy.deepcopy(document)))


@settings(max_examples=100, deadline=None)
@given(schedules)
def test_parse_of_dump_is_the_schedule(schedule: Any) -> None:
    assert parse_schedule(dump_schedule(schedule)) == schedule


@pytest.mark.parametrize("text", ["2026-03-02T07:59:60Z", "2016-12-31T23:59:60.250+00:00"])
def test_leap_seconds_are_refused_as_unsupported_wherever_times_are_read(text: str) -> None:
    from pbgm.functions.temporal import parse_datetime as condition_datetime
    from pbgm.policy import parse_datetime

    with pytest.raises(ValidationError) as info:
        parse_datetime(text)
    (problem,) = info.value.problems
    assert (
        problem.code == "invalid_datetime" and "leap seconds are not supported" in problem.message
    )
    with pytest.raises(ValueError, match="leap seconds are not supported"):
        condition_datetime(text)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        condition_datetime(text.replace(":60", ":61"))
