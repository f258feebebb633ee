"""`validate_offer` and `validate_schedule`: every violation, never only the first.

"Every" holds across reading and rules: a document that does not parse is read as far
as it can be (`read_flexoffer`, holes where it cannot), every number is checked against
the range the rules compute in (`pbgm.flexoffer._numbers`), and the rules then check
everything that does not depend on an unreadable value. So a naive date-time beside an
inverted slice gives both violations.

The code table lives in the package docstring (`pbgm.flexoffer`) and in
`VIOLATION_CODES`; a test keeps the two equal and checks that every code the
rules emit is listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pbgm.errors import InvalidInputError, Problem
from pbgm.flexoffer._model import FlexOffer, FlexOfferSchedule
from pbgm.flexoffer._numbers import sanitise_offer, sanitise_schedule
from pbgm.flexoffer._offer_rules import offer_violations
from pbgm.flexoffer._parse import parse_flexoffer, read_flexoffer, read_schedule
from pbgm.flexoffer._schedule_rules import Check, schedule_violations, structure_violations
from pbgm.flexoffer._template import FlexOfferTemplate, parse_template

#: One violation: `code` (stable), `path` (JSON path in the offer or schedule), `message`.
Violation = Problem


def validate_offer(
    offer: FlexOffer | Mapping[str, Any],
    template: FlexOfferTemplate | Mapping[str, Any],
    *,
    now: datetime,
) -> list[Violation]:
    """Every violation of `offer` against a `flexoffer` policy's content at `now`.

    A malformed offer document gives its parse problems as violations, together with
    the violations of everything that could be read; a template that is itself invalid
    raises `ValidationError` (the policy is at fault, not the offer).
    """
    _check_now(now)
    rules = parse_template(template)
    found: list[Violation] = []
    if not isinstance(offer, FlexOffer):
        read, found = read_flexoffer(offer)
        if read is None:
            return found
        offer = read
    offer, out_of_range = sanitise_offer(offer)
    found.extend(out_of_range)
    found.extend(offer_violations(offer, rules, now))
    for base, schedule in (
        ("$.defaultSchedule", offer.default_schedule),
        ("$.flexOfferSchedule", offer.schedule),
    ):
        if schedule is not None:
            found.extend(structure_violations(Check(schedule, offer, rules, base)))
    return found


def validate_schedule(
    schedule: FlexOfferSchedule | Mapping[str, Any],
    offer: FlexOffer | Mapping[str, Any],
    template: FlexOfferTemplate | Mapping[str, Any] | None = None,
    *,
    now: datetime,
) -> list[Violation]:
    """Every violation of a schedule (assignment) for `offer`, received at `now`.

    Paths point into the schedule document. A malformed schedule document gives its
    parse problems together with the violations of what could be read; a malformed
    offer document or template raises `ValidationError` (the reference is at fault).
    """
    _check_now(now)
    rules = None if template is None else parse_template(template)
    if not isinstance(offer, FlexOffer):
        offer = parse_flexoffer(offer)
    offer, _ = sanitise_offer(offer)  # an offer's own ranges are not the schedule's fault
    found: list[Violation] = []
    if not isinstance(schedule, FlexOfferSchedule):
        read, found = read_schedule(schedule, offer=offer)
        if read is None:
            return found
        schedule = read
    seconds = offer.num_seconds_per_interval
    schedule, out_of_range = sanitise_schedule(
        schedule, seconds if seconds and seconds > 0 else None
    )
    found.extend(out_of_range)
    found.extend(schedule_violations(Check(schedule, offer, rules, "$"), now))
    return found


def _check_now(now: Any) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInputError("`now` must be a date-time with a timezone", code="invalid_now")


VIOLATION_CODES: Mapping[str, str] = {
    # reading the document
    "missing_field": "a mandatory field is absent",
    "invalid_type": "a field has the wrong JSON type",
    "invalid_number": "a number is not finite or a string is not a number",
    "number_out_of_range": "a number outside the range the rules compute in "
    "(|energy|, |price| <= 1e15; spans <= 100 years)",
    "invalid_value": "a value is out of range (negative lead, bad durationSeconds, ...)",
    "invalid_datetime": "a time is not ISO 8601 / Java `yyyy-MM-dd'T'HH:mm:ss.SSSZ`",
    "naive_datetime": "a time has no timezone",
    "conflicting_fields": "two spellings (or a time and its interval number) disagree",
    "unsupported_shape": "per-interval arrays or dependency constraints",
    # the offer itself (GOFLEX isCorrect and spec)
    "empty_id": "`id` is empty",
    "empty_offered_by": "`offeredById` is empty",
    "unknown_state": "`state` is not a state of the spec",
    "interval_length_invalid": "`numSecondsPerInterval` is not positive",
    "created_after_start": "`creationTime` > `startAfterTime`",
    "start_window_inverted": "`startAfterTime` > `startBeforeTime`",
    "created_after_accept": "`creationTime` > `acceptBeforeTime`",
    "accept_after_assignment": "`acceptBeforeTime` > `assignmentBeforeTime`",
    "assignment_after_start": "`assignmentBeforeTime` > `startAfterTime` (strict order) "
    "or > `startBeforeTime`",
    "created_after_assignment": "`creationTime` > `assignmentBeforeTime`",
    "end_window_inverted": "`endAfterTime` > `endBeforeTime`",
    "end_before_unreachable": "`startAfterTime` + shortest profile > `endBeforeTime`",
    "end_after_unreachable": "`startBeforeTime` + longest profile < `endAfterTime`",
    "latest_start_too_late": "`startBeforeTime` + shortest profile > `endBeforeTime`",
    "slice_duration_invalid": "a slice duration is below 1 interval",
    "slice_duration_inverted": "`minDuration` > `maxDuration`",
    "slice_without_energy": "a slice has no energy bounds",
    "slice_energy_inverted": "a slice's `lower` > `upper`",
    "slice_price_inverted": "a slice's `minPrice` > `maxPrice`",
    "total_energy_inverted": "`totalEnergyConstraint` lower > upper",
    "sub_total_energy_inverted": "`subTotalEnergyConstraint` lower > upper",
    "total_cost_inverted": "`totalCostConstraint` lower > upper",
    "power_factor_inverted": "`powerFactorConstraint` lower > upper",
    "power_factor_out_of_range": "a power factor outside [-1, 1]",
    "total_energy_infeasible": "the slices cannot reach `totalEnergyConstraint`",
    # against the template
    "offered_by_not_allowed": "`offeredById` not in `allowed_offered_by`",
    "interval_length_mismatch": "interval length differs from the template (or the offer)",
    "unit_mismatch": "energy unit differs from the template's `unit`",
    "profile_type_mismatch": "profile type differs from the template's `profile_type`",
    "not_on_interval_grid": "a time is not a whole number of intervals since the epoch",
    "activation_window_too_long": "start window longer than `max_activation_window_s`",
    "too_few_slices": "fewer slices than `min_slices`",
    "too_many_slices": "more slices than `max_slices`",
    "profile_too_long": "sum of `maxDuration` above `max_profile_duration`",
    "slice_duration_out_of_bounds": "slice durations outside `min/max_slice_duration`",
    "slice_energy_out_of_bounds": "energy outside the template's or the slice's bounds",
    "sign_convention_violated": "energy flows in a direction `allowed_direction` forbids",
    "price_out_of_bounds": "a slice price outside the template's `price`",
    "power_factor_out_of_bounds": "power factor outside the template's `power_factor`",
    "total_energy_out_of_bounds": "total energy outside the template's or the offer's bounds",
    # against now
    "created_in_future": "`creationTime` after now (+ `clock_skew_s`)",
    "deadline_passed": "`acceptBeforeTime` or `assignmentBeforeTime` before now",
    "offer_expired": "`startBeforeTime` before now",
    "missing_accept_before": "no `acceptBeforeTime` though the template requires one",
    "lead_time_too_short": "deadline closer to now than `min_lead_time_s`",
    "horizon_too_far": "latest end further from now than `max_offer_horizon_s`",
    # schedules
    "state_not_schedulable": "offer state is not offered, accepted or assigned",
    "assignment_too_late": "now after `assignmentBeforeTime` or after "
    "`startTime - assignmentBeforeStart`",
    "schedule_outside_window": "`startTime` outside [`startAfterTime`, `startBeforeTime`]",
    "slice_count_mismatch": "schedule and profile have different numbers of slices",
    "slice_duration_mismatch": "a schedule slice's duration outside its profile slice's range",
    "slice_price_out_of_bounds": "a schedule slice's price outside its slice's price bounds",
    "sub_total_energy_out_of_bounds": "a running sum leaves `subTotalEnergyConstraint`",
    "end_window_violated": "the schedule ends outside [`endAfterTime`, `endBeforeTime`]",
}
