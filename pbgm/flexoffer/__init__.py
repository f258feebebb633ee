"""FlexOffers (FlexOffer User Group specification): model, parsing and validation.

`parse_flexoffer` reads every spelling seen in the wild (spec camelCase, GOFLEX
Java, the older spec shape, snake_case) and applies the spec's defaults;
`dump_flexoffer` writes the spec's camelCase. `validate_offer` checks an offer
against the content of a `flexoffer` policy (schema: `pbgm/policy/schemas/flexoffer.json`)
and `validate_schedule` an assignment against its offer; both take `now` (the
core reads no clock) and return every violation as `Violation(path, code, message)`.

Semantics fixed here where the sources are silent or disagree: energy bounds are
per interval and a schedule slice's amount is for the whole slice (spec Table
2.1/2.2; identical to the Java check for slices of 1 interval); several energy
constraints in a slice are alternatives; a schedule needs one slice per profile
slice; signs are read by the template's `sign_convention`.

Violation codes (stable; `VIOLATION_CODES` holds the same with longer descriptions):

==================================  ===========================================================
code                                raised when
==================================  ===========================================================
`missing_field`                     a mandatory field is absent
`invalid_type`                      a field has the wrong JSON type
`invalid_number`                    a number is not finite, or a string is not a number
`number_out_of_range`               a number outside the range the rules compute in
                                    (|energy|, |price| <= 1e15; spans <= 100 years)
`invalid_value`                     a value is out of range
`invalid_datetime`                  a time is neither ISO 8601 nor the Java date format
`naive_datetime`                    a time has no timezone
`conflicting_fields`                two spellings, or a time and its interval number, disagree
`unsupported_shape`                 per-interval arrays or dependency constraints
`empty_id`                          `id` is empty
`empty_offered_by`                  `offeredById` is empty
`unknown_state`                     `state` is not a state of the spec
`interval_length_invalid`           `numSecondsPerInterval` is not positive
`created_after_start`               `creationTime` > `startAfterTime`
`start_window_inverted`             `startAfterTime` > `startBeforeTime`
`created_after_accept`              `creationTime` > `acceptBeforeTime`
`accept_after_assignment`           `acceptBeforeTime` > `assignmentBeforeTime`
`assignment_after_start`            `assignmentBeforeTime` > `startAfterTime` (or, lenient,
                                    > `startBeforeTime`)
`created_after_assignment`          `creationTime` > `assignmentBeforeTime`
`end_window_inverted`               `endAfterTime` > `endBeforeTime`
`end_before_unreachable`            `startAfterTime` + shortest profile > `endBeforeTime`
`end_after_unreachable`             `startBeforeTime` + longest profile < `endAfterTime`
`latest_start_too_late`             `startBeforeTime` + shortest profile > `endBeforeTime`
`slice_duration_invalid`            a slice duration is below 1 interval
`slice_duration_inverted`           `minDuration` > `maxDuration`
`slice_without_energy`              a slice has no energy bounds
`slice_energy_inverted`             a slice's `lower` > `upper`
`slice_price_inverted`              a slice's `minPrice` > `maxPrice`
`total_energy_inverted`             `totalEnergyConstraint` lower > upper
`sub_total_energy_inverted`         `subTotalEnergyConstraint` lower > upper
`total_cost_inverted`               `totalCostConstraint` lower > upper
`power_factor_inverted`             `powerFactorConstraint` lower > upper
`power_factor_out_of_range`         a power factor outside [-1, 1]
`total_energy_infeasible`           the slices cannot reach `totalEnergyConstraint`
`offered_by_not_allowed`            `offeredById` not in the template's `allowed_offered_by`
`interval_length_mismatch`          interval length differs from the template's (or the offer's)
`unit_mismatch`                     energy unit differs from the template's `unit`
`profile_type_mismatch`             profile type differs from the template's `profile_type`
`not_on_interval_grid`              a time is not a whole number of intervals since the epoch
`activation_window_too_long`        start window longer than `max_activation_window_s`
`too_few_slices`                    fewer slices than `min_slices`
`too_many_slices`                   more slices than `max_slices`
`profile_too_long`                  sum of `maxDuration` above `max_profile_duration`
`slice_duration_out_of_bounds`      a slice duration outside `min/max_slice_duration`
`slice_energy_out_of_bounds`        energy outside the template's or the slice's bounds
`sign_convention_violated`          energy may flow the way `allowed_direction` forbids
`price_out_of_bounds`               a slice price outside the template's `price`
`power_factor_out_of_bounds`        power factor outside the template's `power_factor`
`total_energy_out_of_bounds`        total energy outside the template's or the offer's bounds
`created_in_future`                 `creationTime` after now (+ `clock_skew_s`)
`deadline_passed`                   `acceptBeforeTime` or `assignmentBeforeTime` before now
`offer_expired`                     `startBeforeTime` before now
`missing_accept_before`             no `acceptBeforeTime` though the template requires one
`lead_time_too_short`               deadline closer to now than `min_lead_time_s`
`horizon_too_far`                   latest end further from now than `max_offer_horizon_s`
`state_not_schedulable`             offer state is not offered, accepted or assigned
`assignment_too_late`               now after `assignmentBeforeTime` or after
                                    `startTime - assignmentBeforeStart`
`schedule_outside_window`           `startTime` outside [`startAfterTime`, `startBeforeTime`]
`slice_count_mismatch`              schedule and profile have different numbers of slices
`slice_duration_mismatch`           a schedule slice's duration outside its slice's range
`slice_price_out_of_bounds`         a schedule slice's price outside its slice's price bounds
`sub_total_energy_out_of_bounds`    a running sum leaves `subTotalEnergyConstraint`
`end_window_violated`               the schedule ends outside [`endAfterTime`, `endBeforeTime`]
==================================  ===========================================================

An invalid template raises `ValidationError` with codes `missing_field`,
`unknown_field`, `invalid_type`, `invalid_value` or `inverted_bounds`.
"""

from pbgm.flexoffer._dump import dump_flexoffer, dump_schedule
from pbgm.flexoffer._model import (
    STATES,
    Bounds,
    EnergyBounds,
    FlexOffer,
    FlexOfferSchedule,
    FlexOfferSlice,
    PriceBounds,
    ScheduleSlice,
)
from pbgm.flexoffer._parse import parse_flexoffer, parse_schedule
from pbgm.flexoffer._schedule_rules import SCHEDULABLE_STATES
from pbgm.flexoffer._slice_rules import reachable_energy
from pbgm.flexoffer._template import (
    FlexOfferTemplate,
    Limits,
    parse_template,
    template_problems,
    template_schema,
)
from pbgm.flexoffer._validate import (
    VIOLATION_CODES,
    Violation,
    validate_offer,
    validate_schedule,
)

__all__ = [
    "SCHEDULABLE_STATES",
    "STATES",
    "VIOLATION_CODES",
    "Bounds",
    "EnergyBounds",
    "FlexOffer",
    "FlexOfferSchedule",
    "FlexOfferSlice",
    "FlexOfferTemplate",
    "Limits",
    "PriceBounds",
    "ScheduleSlice",
    "Violation",
    "dump_flexoffer",
    "dump_schedule",
    "parse_flexoffer",
    "parse_schedule",
    "parse_template",
    "reachable_energy",
    "template_problems",
    "template_schema",
    "validate_offer",
    "validate_schedule",
]
