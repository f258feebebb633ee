"""Validating FlexOffers against a `flexoffer` template, and schedules against offers."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pbgm.flexoffer
from pbgm.errors import InvalidInputError, ValidationError
from pbgm.flexoffer import (
    VIOLATION_CODES,
    Bounds,
    FlexOfferSchedule,
    ScheduleSlice,
    parse_flexoffer,
    validate_offer,
    validate_schedule,
)
from tests.flexoffer_strategies import odd_offers, offers, schedules, wild_offer_documents

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "flexoffers"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


TEMPLATE = load("template-bess-01.json")
OFFER = load("offer-bess-01-valid.json")
SCHEDULE = load("schedule-bess-01-valid.json")

Patch = Callable[[dict[str, Any]], None]


def at(hour: int, minute: int = 0, second: int = 0) -> str:
    return f"2026-03-02T{hour:02}:{minute:02}:{second:02}Z"


def now_at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


def put(**changes: Any) -> Patch:
    """Set top-level fields; None removes one."""

    def patch(document: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                document.pop(key, None)
            else:
                document[key] = value

    return patch


def piece(index: int, **changes: Any) -> Patch:
    """Change slice `index` of an offer's profile (`lower`/`upper` go to its first bounds)."""

    def patch(document: dict[str, Any]) -> None:
        target = document["flexOfferProfileConstraints"][index]
        for key, value in changes.items():
            if key in ("lower", "upper"):
                target["energyConstraintList"][0][key] = value
            elif key in ("minPrice", "maxPrice"):
                target["priceConstraint"][key] = value
            else:
                target[key] = value

    return patch


def both(*patches: Patch) -> Patch:
    def patch(document: dict[str, Any]) -> None:
        for each in patches:
            each(document)

    return patch


def offer_codes(
    patch: Patch, template: dict[str, Any] | None = None, now: datetime = NOW
) -> set[str]:
    document = copy.deepcopy(OFFER)
    patch(document)
    rules = {**TEMPLATE, **(template or {})}
    return {v.code for v in validate_offer(document, rules, now=now)}


OFFER_CASES = [
    ("the valid example offer", put(), {}, NOW, set()),
    ("acceptance after the assignment deadline", put(acceptBeforeTime=at(11, 15)), {}, NOW,
     {"accept_after_assignment"}),
    ("start window inverted", put(startAfterTime=at(14, 15)), {}, NOW, {"start_window_inverted"}),
    ("created after the acceptance deadline", put(creationTime=at(9, 30)), {}, NOW,
     {"created_after_accept", "created_in_future"}),
    ("assignment deadline inside the start window", put(assignmentBeforeTime=at(12, 30)), {},
     NOW, {"assignment_after_start"}),
    ("the same, allowed by a lenient template", put(assignmentBeforeTime=at(12, 30)),
     {"strict_deadline_order": False}, NOW, set()),
    ("assignment after the latest start, even when lenient",
     put(assignmentBeforeTime=at(14, 15)), {"strict_deadline_order": False}, NOW,
     {"assignment_after_start"}),
    ("created after the assignment deadline, no acceptance deadline",
     put(creationTime=at(11, 30), acceptBeforeTime=None),
     {"require_accept_before_time": False}, now_at(11, 45),
     {"created_after_assignment", "deadline_passed"}),
    ("slice durations inverted", piece(0, minDuration=3, maxDuration=2), {}, NOW,
     {"slice_duration_inverted"}),
    ("slice duration of zero intervals, reported once", piece(1, minDuration=0), {}, NOW,
     {"slice_duration_invalid"}),
    ("a valid duration below the template's minimum", piece(1, minDuration=1, maxDuration=2),
     {"min_slice_duration": 2}, NOW, {"slice_duration_out_of_bounds"}),
    ("slice longer than the template allows", piece(0, maxDuration=6), {}, NOW,
     {"slice_duration_out_of_bounds"}),
    ("slice energy bounds inverted", piece(1, lower=10, upper=-10), {}, NOW,
     {"slice_energy_inverted"}),
    ("slice energy beyond the template", piece(1, upper=70), {}, NOW,
     {"slice_energy_out_of_bounds"}),
    ("production offered under a consumption-only template", put(),
     {"allowed_direction": "consumption"}, NOW, {"sign_convention_violated"}),
    ("positive energy is production when the template says so", piece(1, lower=0),
     {"sign_convention": "production_positive", "allowed_direction": "consumption"}, NOW,
     {"sign_convention_violated"}),
    ("the same slices pass when only consumption is positive and allowed",
     both(piece(1, lower=0), piece(2, lower=0, upper=10), piece(3, lower=0, upper=10)),
     {"allowed_direction": "consumption"}, NOW, set()),
    ("total energy constraint out of reach", put(totalEnergyConstraint={"lower": 200,
     "upper": 300}), {}, NOW, {"total_energy_infeasible"}),
    ("total energy constraint inverted", put(totalEnergyConstraint={"lower": 40, "upper": -20}),
     {}, NOW, {"total_energy_inverted"}),
    ("reachable total within the template", put(totalEnergyConstraint=None),
     {"total_energy": {"min": -200, "max": 200}}, NOW, set()),
    ("a longer slice widens the reachable total beyond the template",
     both(put(totalEnergyConstraint=None), piece(0, maxDuration=4)),
     {"total_energy": {"min": -200, "max": 200}}, NOW, {"total_energy_out_of_bounds"}),
    ("the offer's total constraint narrows what the template sees", piece(0, maxDuration=4),
     {"total_energy": {"min": -200, "max": 200}}, NOW, set()),
    ("acceptance deadline passed", put(), {}, now_at(9, 30), {"deadline_passed"}),
    ("too little lead time before acceptance", put(), {}, now_at(8, 50),
     {"lead_time_too_short"}),
    ("offer expired", put(), {}, now_at(14, 30), {"deadline_passed", "offer_expired"}),
    ("created in the future", put(creationTime=at(8, 5)), {}, NOW, {"created_in_future"}),
    ("creation within the clock skew", put(creationTime=at(8, 0, 30)), {}, NOW, set()),
    ("start window off the interval grid", put(startAfterTime=at(12, 5)), {}, NOW,
     {"not_on_interval_grid"}),
    ("grid not required by the template", put(startAfterTime=at(12, 5)),
     {"align_to_interval_grid": False}, NOW, set()),
    ("activation window too long", put(startBeforeTime=at(19), endBeforeTime=None), {}, NOW,
     {"activation_window_too_long"}),
    ("latest start cannot end in time", put(startBeforeTime=at(15, 45)), {}, NOW,
     {"latest_start_too_late"}),
    ("end deadline before the shortest profile can finish", put(endBeforeTime=at(12, 30)), {},
     NOW, {"end_before_unreachable", "latest_start_too_late"}),
    ("end after unreachable", put(endAfterTime=at(20), endBeforeTime=at(21)), {}, NOW,
     {"end_after_unreachable"}),
    ("end window inverted", put(endAfterTime=at(16, 30)), {}, NOW,
     {"end_window_inverted", "end_after_unreachable"}),
    ("offered by a party the template does not know", put(offeredById="mallory"), {}, NOW,
     {"offered_by_not_allowed"}),
    ("empty offeredById", put(offeredById=" "), {}, NOW, {"empty_offered_by"}),
    ("empty id", put(id=""), {}, NOW, {"empty_id"}),
    ("state outside the spec", put(state="Adaptation"), {}, NOW, {"unknown_state"}),
    ("interval length other than the template's",
     put(numSecondsPerInterval=3600, endBeforeTime=None), {}, NOW,
     {"interval_length_mismatch"}),
    ("energy in Wh where the template wants kWh", put(multiplier="1"), {}, NOW,
     {"unit_mismatch"}),
    ("profile type other than the template's", put(flexOfferProfilType="reactiveEnergy"), {},
     NOW, {"profile_type_mismatch"}),
    ("power factor below the template", put(powerFactorConstraint={"lower": 0.85,
     "upper": 1}), {}, NOW, {"power_factor_out_of_bounds"}),
    ("power factor beyond one", put(powerFactorConstraint={"lower": 0.95, "upper": 1.2}), {},
     NOW, {"power_factor_out_of_range", "power_factor_out_of_bounds"}),
    ("power factor inverted", put(powerFactorConstraint={"lower": 1.0, "upper": 0.95}), {},
     NOW, {"power_factor_inverted"}),
    ("no power factor means unity", put(powerFactorConstraint=None), {}, NOW, set()),
    ("price beyond the template", piece(0, maxPrice=2.0), {}, NOW, {"price_out_of_bounds"}),
    ("price bounds inverted", piece(0, minPrice=0.3, maxPrice=0.1), {}, NOW,
     {"slice_price_inverted"}),
    ("more slices than the template allows", put(), {"max_slices": 3}, NOW,
     {"too_many_slices"}),
    ("an empty profile (flexibility removal)", put(flexOfferProfileConstraints=[]), {}, NOW,
     {"too_few_slices"}),
    ("an empty profile allowed by the template", put(flexOfferProfileConstraints=[]),
     {"min_slices": 0}, NOW, set()),
    ("profile longer than the template allows", put(), {"max_profile_duration": 4}, NOW,
     {"profile_too_long"}),
    ("slice without energy bounds", piece(1, energyConstraintList=[]), {}, NOW,
     {"slice_without_energy"}),
    ("acceptance deadline required", put(acceptBeforeTime=None), {}, NOW,
     {"missing_accept_before"}),
    ("offer reaching too far ahead", put(), {"max_offer_horizon_s": 4 * 3600}, NOW,
     {"horizon_too_far"}),
    ("sub-total and cost constraints inverted",
     put(subTotalEnergyConstraint={"lower": 10, "upper": -10},
         totalCostConstraint={"lower": 5, "upper": 1}), {}, NOW,
     {"sub_total_energy_inverted", "total_cost_inverted"}),
    ("default schedule outside the start window",
     put(defaultSchedule={**SCHEDULE, "startTime": at(11)}), {}, NOW,
     {"schedule_outside_window"}),
    ("a malformed document gives its parse problems",
     put(id=None, creationTime="soon", assignmentBeforeStart=-5), {}, NOW,
     {"missing_field", "invalid_datetime", "invalid_value"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "patch", "template", "now", "expected"), OFFER_CASES, ids=[c[0] for c in OFFER_CASES]
)
def test_offer_violations(
    what: str, patch: Patch, template: dict[str, Any], now: datetime, expected: set[str]
) -> None:
    assert offer_codes(patch, template, now) == expected


def test_the_invalid_example_lists_every_violation_with_its_path() -> None:
    found = validate_offer(load("offer-bess-01-invalid.json"), TEMPLATE, now=NOW)
    assert {(v.code, v.path) for v in found} == {
        ("offered_by_not_allowed", "$.offeredById"),
        ("deadline_passed", "$.acceptBeforeTime"),
        ("assignment_after_start", "$.assignmentBeforeTime"),
        ("not_on_interval_grid", "$.startBeforeTime"),
        (
            "slice_energy_out_of_bounds",
            "$.flexOfferProfileConstraints[0].energyConstraintList[0].upper",
        ),
        ("power_factor_out_of_bounds", "$.powerFactorConstraint"),
        ("total_energy_infeasible", "$.totalEnergyConstraint"),
    }


def test_messages_follow_the_house_style() -> None:
    found = validate_offer(load("offer-bess-01-invalid.json"), TEMPLATE, now=NOW)
    for violation in found:
        assert violation.message[0].islower() or violation.message[0] in "`0123456789"
        assert not violation.message.endswith(".")


# --- schedules ----------------------------------------------------------------


def amounts(*values: float) -> Patch:
    def patch(document: dict[str, Any]) -> None:
        for piece_, value in zip(document["scheduleSlices"], values, strict=True):
            piece_["energyAmount"] = value

    return patch


def slot(index: int, **changes: Any) -> Patch:
    def patch(document: dict[str, Any]) -> None:
        document["scheduleSlices"][index].update(changes)

    return patch


def drop_slot(index: int) -> Patch:
    return lambda document: document["scheduleSlices"].pop(index) and None


SCHEDULE_CASES = [
    ("the valid example schedule", put(), put(), NOW, set()),
    ("starting before the window", put(startTime=at(11, 45)), put(), NOW,
     {"schedule_outside_window"}),
    ("starting after the window", put(startTime=at(14, 15)), put(), NOW,
     {"schedule_outside_window"}),
    ("starting off the interval grid", put(startTime=at(12, 10)), put(), NOW,
     {"not_on_interval_grid"}),
    ("one slice short of the profile", drop_slot(1), put(), NOW, {"slice_count_mismatch"}),
    ("a slice longer than its profile slice", slot(1, duration=2), put(), NOW,
     {"slice_duration_mismatch"}),
    ("energy above the slice's bound", amounts(25, 55, -30, -30), put(), NOW,
     {"slice_energy_out_of_bounds"}),
    ("energy within the 0.01 tolerance", amounts(25, 50.005, -30, -30), put(), NOW, set()),
    ("bounds scale with the slice's duration", slot(0, duration=1), put(), NOW,
     {"slice_energy_out_of_bounds"}),
    ("total energy outside the offer's constraint", amounts(100, 50, 0, 0), put(), NOW,
     {"total_energy_out_of_bounds"}),
    ("assignment after the deadline", put(), put(), now_at(11, 30), {"assignment_too_late"}),
    ("assignment too close to the start", put(), put(assignmentBeforeStart=7200),
     now_at(10, 45), {"assignment_too_late"}),
    ("offer no longer open to schedules", put(), put(state="rejected"), NOW,
     {"state_not_schedulable"}),
    ("a price outside the slice's price bounds", slot(0, price=0.5), put(), NOW,
     {"slice_price_out_of_bounds"}),
    ("ending after the end deadline", put(), put(endBeforeTime=at(13, 30)), NOW,
     {"end_window_violated"}),
    ("a running sum leaving the reservoir", put(),
     put(subTotalEnergyConstraint={"lower": -10, "upper": 60}), NOW,
     {"sub_total_energy_out_of_bounds"}),
    ("another interval length", put(numSecondsPerInterval=3600), put(), NOW,
     {"interval_length_mismatch"}),
    ("a malformed schedule gives its parse problems",
     both(put(startTime=None), slot(2, energyAmount="ten")), put(), NOW,
     {"missing_field", "invalid_number"}),
    ("the older `energyAmounts` shape",
     put(scheduleSlices=None, energyAmounts=[40, 10, -30, -30]), put(), NOW, set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "schedule_patch", "offer_patch", "now", "expected"),
    SCHEDULE_CASES,
    ids=[c[0] for c in SCHEDULE_CASES],
)
def test_schedule_violations(
    what: str, schedule_patch: Patch, offer_patch: Patch, now: datetime, expected: set[str]
) -> None:
    schedule, offer = copy.deepcopy(SCHEDULE), copy.deepcopy(OFFER)
    schedule_patch(schedule)
    offer_patch(offer)
    found = validate_schedule(schedule, offer, TEMPLATE, now=now)
    assert {v.code for v in found} == expected


def test_the_template_bounds_a_schedule_per_interval() -> None:
    schedule = FlexOfferSchedule(
        start_time=now_at(12),
        slices=(ScheduleSlice(100.0, 2), ScheduleSlice(10.0), ScheduleSlice(-45.0),
                ScheduleSlice(-45.0)),
    )  # fmt: skip
    offer = parse_flexoffer(OFFER)
    assert validate_schedule(schedule, offer, now=NOW) == []
    narrow = {**TEMPLATE, "energy_per_slice": {"min": -40, "max": 40}}
    found = validate_schedule(schedule, offer, narrow, now=NOW)
    assert [(v.code, v.path) for v in found] == [
        ("slice_energy_out_of_bounds", "$.scheduleSlices[0].energyAmount"),
        ("slice_energy_out_of_bounds", "$.scheduleSlices[2].energyAmount"),
        ("slice_energy_out_of_bounds", "$.scheduleSlices[3].energyAmount"),
    ]


def test_a_malformed_offer_for_a_schedule_is_an_error() -> None:
    with pytest.raises(ValidationError):
        validate_schedule(SCHEDULE, {"id": "x"}, now=NOW)


@pytest.mark.parametrize(
    ("what", "now"),
    [("a naive now", datetime(2026, 3, 2, 8)), ("a string now", "2026-03-02T08:00:00Z")],
)
def test_now_must_be_an_aware_datetime(what: str, now: Any) -> None:
    with pytest.raises(InvalidInputError):
        validate_offer(OFFER, TEMPLATE, now=now)


# --- the code table -------------------------------------------------------------


def test_the_docstring_table_lists_exactly_the_codes() -> None:
    lines = (pbgm.flexoffer.__doc__ or "").splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=====")]
    table = "\n".join(lines[rules[1] : rules[2]])
    listed = set(re.findall(r"^`([a-z_]+)`", table, flags=re.MULTILINE))
    assert listed == set(VIOLATION_CODES)


def test_every_code_of_the_tables_above_is_documented() -> None:
    used = {code for case in OFFER_CASES + SCHEDULE_CASES for code in case[-1]}
    assert used <= set(VIOLATION_CODES)


# --- properties -----------------------------------------------------------------

templates = st.sampled_from(
    [
        TEMPLATE,
        {"asset_id": "a", "sign_convention": "production_positive"},
        {**TEMPLATE, "allowed_direction": "consumption", "strict_deadline_order": False},
    ]
)
nows = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(wild_offer_documents(), templates, nows)
def test_wild_documents_give_violations_never_exceptions(
    document: Any, template: Any, now: datetime
) -> None:
    found = validate_offer(document, template, now=now)
    assert {v.code for v in found} <= set(VIOLATION_CODES)


@settings(max_examples=150, deadline=None)
@given(odd_offers, templates, nows, schedules)
def test_odd_offers_and_schedules_never_raise(
    offer: Any, template: Any, now: datetime, schedule: Any
) -> None:
    found = validate_offer(offer, template, now=now)
    found += validate_schedule(schedule, offer, template, now=now)
    assert {v.code for v in found} <= set(VIOLATION_CODES)


@settings(max_examples=100, deadline=None)
@given(offers(), nows)
def test_validating_an_offer_or_its_document_agrees(offer: Any, now: datetime) -> None:
    from pbgm.flexoffer import dump_flexoffer

    assert validate_offer(dump_flexoffer(offer), TEMPLATE, now=now) == validate_offer(
        offer, TEMPLATE, now=now
    )


# --- every violation, across reading and rules --------------------------------------


def codes_of(violations: list[Any]) -> set[str]:
    return {v.code for v in violations}


def test_a_malformed_slice_does_not_skip_the_total_energy_check() -> None:
    patch = both(piece(0, minDuration=0, maxDuration=0),
                 put(totalEnergyConstraint={"lower": 500, "upper": 600}))  # fmt: skip
    assert offer_codes(patch) == {"slice_duration_invalid", "total_energy_infeasible"}


def test_a_malformed_slice_that_a_repair_could_fit_is_not_called_infeasible() -> None:
    # read leniently, the zero-length slice still lets the others reach [-150, 50]
    patch = both(piece(0, minDuration=0, maxDuration=0),
                 put(totalEnergyConstraint={"lower": 20, "upper": 40}))  # fmt: skip
    assert offer_codes(patch) == {"slice_duration_invalid"}


def test_inverted_slice_bounds_are_read_leniently_for_the_total_check() -> None:
    patch = both(piece(1, lower=50, upper=-50),
                 put(totalEnergyConstraint={"lower": 500, "upper": 600}))  # fmt: skip
    assert offer_codes(patch) == {"slice_energy_inverted", "total_energy_infeasible"}


def test_a_parse_error_does_not_hide_the_rule_violations() -> None:
    patch = both(put(startBeforeTime="2026-03-02T14:00:00"), piece(1, lower=10, upper=-10))
    assert offer_codes(patch) == {"naive_datetime", "slice_energy_inverted"}


@pytest.mark.parametrize(
    ("what", "patch", "expected"),
    [
        ("an unreadable state beside a deadline in the wrong order",
         put(state=["offered"], acceptBeforeTime=at(11, 15)),
         {"invalid_type", "accept_after_assignment"}),
        ("an unreadable slice beside an out-of-bounds one",
         both(piece(0, minDuration="one"), piece(1, upper=70)),
         {"invalid_type", "slice_energy_out_of_bounds"}),
        ("an unreadable energy bound beside an inverted price",
         both(piece(0, lower="lots"), piece(0, minPrice=0.3, maxPrice=0.1)),
         {"invalid_number", "slice_price_inverted"}),
        ("an unreadable interval length hides no time rule that does not need it",
         put(numSecondsPerInterval="fast", creationTime=at(9, 30)),
         {"invalid_type", "created_after_accept", "created_in_future"}),
        ("an unreadable acceptance deadline is not a missing one",
         put(acceptBeforeTime=12), {"invalid_datetime"}),
        ("an unreadable start window gives no window violation",
         put(startAfterTime="soon"), {"invalid_datetime"}),
        ("an unreadable total constraint is not an absent one",
         both(put(totalEnergyConstraint="all of it"), piece(2, upper=70)),
         {"invalid_type", "slice_energy_out_of_bounds"}),
        ("an unreadable power factor is not unity",
         put(powerFactorConstraint={"lower": "high", "upper": 1.2}),
         {"invalid_number", "power_factor_out_of_range", "power_factor_out_of_bounds"}),
    ],
)  # fmt: skip
def test_unreadable_fields_leave_every_independent_violation(
    what: str, patch: Patch, expected: set[str]
) -> None:
    assert offer_codes(patch) == expected


def test_a_malformed_schedule_still_gets_its_rule_violations() -> None:
    schedule = copy.deepcopy(SCHEDULE)
    schedule["startTime"] = "2026-03-02T12:00:00"  # naive
    schedule["scheduleSlices"][1]["energyAmount"] = 55  # above its slice's 50
    schedule["scheduleSlices"][2]["energyAmount"] = "ten"
    found = validate_schedule(schedule, OFFER, TEMPLATE, now=NOW)
    assert {(v.code, v.path) for v in found} == {
        ("naive_datetime", "$.startTime"),
        ("slice_energy_out_of_bounds", "$.scheduleSlices[1].energyAmount"),
        ("invalid_number", "$.scheduleSlices[2].energyAmount"),
    }


@settings(max_examples=120, deadline=None)
@given(
    key=st.sampled_from(sorted(set(OFFER) - {"flexOfferProfileConstraints"})),
    junk=st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.lists(st.none()),
)
def test_a_corrupted_field_never_hides_an_independent_slice_violation(key: str, junk: Any) -> None:
    document = copy.deepcopy(OFFER)
    document[key] = junk
    document["flexOfferProfileConstraints"][1]["energyConstraintList"][0]["lower"] = 10
    document["flexOfferProfileConstraints"][1]["energyConstraintList"][0]["upper"] = -10
    found = validate_offer(document, TEMPLATE, now=NOW)
    assert "slice_energy_inverted" in codes_of(found)
    assert codes_of(found) <= set(VIOLATION_CODES)


# --- numbers outside the range the rules compute in -----------------------------------

HUGE = int("9" * 4000)


@pytest.mark.parametrize(
    ("what", "patch", "path"),
    [
        ("a 4,000-digit total energy bound", put(totalEnergyConstraint={"lower": 0, "upper": HUGE}),
         "$.totalEnergyConstraint.upper"),
        ("the same as a string", put(totalEnergyConstraint={"lower": 0, "upper": str(HUGE)}),
         "$.totalEnergyConstraint.upper"),
        ("a negative one", put(totalEnergyConstraint={"lower": -HUGE, "upper": 0}),
         "$.totalEnergyConstraint.lower"),
        ("a slice bound of 1e300", piece(1, upper=1e300),
         "$.flexOfferProfileConstraints[1].energyConstraintList[0].upper"),
        ("a price beyond the range", piece(0, maxPrice=10**20),
         "$.flexOfferProfileConstraints[0].priceConstraint.maxPrice"),
        ("a 4,000-digit duration", piece(0, maxDuration=HUGE),
         "$.flexOfferProfileConstraints[0].maxDuration"),
        ("a duration of more than a century", piece(0, maxDuration=10**7),
         "$.flexOfferProfileConstraints[0].maxDuration"),
        ("a 4,000-digit interval number", put(startAfterInterval=HUGE), "$.startAfterInterval"),
        ("an interval number beyond any date", put(startAfterTime=None, startAfterInterval=10**15),
         "$.startAfterInterval"),
    ],
)  # fmt: skip
def test_numbers_outside_their_range_are_violations_not_errors(
    what: str, patch: Patch, path: str
) -> None:
    document = copy.deepcopy(OFFER)
    patch(document)
    document["flexOfferProfileConstraints"][2]["energyConstraintList"][0]["upper"] = 70
    found = validate_offer(document, TEMPLATE, now=NOW)
    assert ("number_out_of_range", path) in {(v.code, v.path) for v in found}
    assert "slice_energy_out_of_bounds" in codes_of(found)  # the rest is still checked
    assert all(len(v.message) < 200 for v in found)


def test_a_schedule_amount_of_4000_digits_is_a_violation() -> None:
    schedule = copy.deepcopy(SCHEDULE)
    schedule["scheduleSlices"][0]["energyAmount"] = HUGE
    found = validate_schedule(schedule, OFFER, TEMPLATE, now=NOW)
    assert [(v.code, v.path) for v in found] == [
        ("number_out_of_range", "$.scheduleSlices[0].energyAmount")
    ]


def test_a_model_built_in_code_is_range_checked_too() -> None:
    offer = parse_flexoffer(OFFER)
    first = offer.profile[0]
    wide = dataclasses.replace(first, energy_constraints=(Bounds(0.0, 1e300),), max_duration=10**30)
    odd = dataclasses.replace(
        offer, profile=(wide, *offer.profile[1:]), total_energy_constraint=Bounds(-math.inf, 4.0)
    )
    found = {(v.code, v.path) for v in validate_offer(odd, TEMPLATE, now=NOW)}
    assert {
        ("number_out_of_range", "$.flexOfferProfileConstraints[0].energyConstraintList[0].upper"),
        ("number_out_of_range", "$.flexOfferProfileConstraints[0].maxDuration"),
        ("invalid_number", "$.totalEnergyConstraint.lower"),
    } <= found


def test_a_leap_second_is_refused_as_unsupported_not_as_malformed() -> None:
    found = validate_offer({**OFFER, "creationTime": "2026-03-02T07:59:60Z"}, TEMPLATE, now=NOW)
    (violation,) = [v for v in found if v.path == "$.creationTime"]
    assert violation.code == "invalid_datetime"
    assert "leap second" in violation.message and "not an iso 8601" not in violation.message.lower()


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(
        st.sampled_from(["startTime", "scheduleSlices", "numSecondsPerInterval", "startInterval"]),
        max_size=2,
    ),
    slot_key=st.sampled_from(["energyAmount", "duration", "price"]),
    junk=st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.lists(st.none()),
)
def test_a_corrupted_schedule_never_raises_and_keeps_independent_violations(
    keys: list[str], slot_key: str, junk: Any
) -> None:
    schedule = copy.deepcopy(SCHEDULE)
    schedule["scheduleSlices"][3]["energyAmount"] = 55  # its slice allows [-50, 0]
    schedule["scheduleSlices"][0][slot_key] = junk
    for key in keys:
        schedule[key] = junk
    found = validate_schedule(schedule, OFFER, TEMPLATE, now=NOW)
    assert codes_of(found) <= set(VIOLATION_CODES)
    if "scheduleSlices" not in keys:
        assert "slice_energy_out_of_bounds" in codes_of(found)
