"""Hypothesis strategies for FlexOffers: well-typed model objects and wild documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from pbgm.flexoffer import (
    STATES,
    Bounds,
    FlexOffer,
    FlexOfferSchedule,
    FlexOfferSlice,
    PriceBounds,
    ScheduleSlice,
    dump_flexoffer,
)
from pbgm.policy.syntax import freeze

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
energies = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
names = st.text(min_size=1, max_size=12)
interval_lengths = st.sampled_from([60, 300, 900, 3600])
durations = st.integers(min_value=-1, max_value=6)

bounds = st.builds(Bounds, energies, energies)
prices = st.builds(PriceBounds, energies, energies)
slices = st.builds(
    FlexOfferSlice,
    energy_constraints=st.lists(bounds, max_size=3).map(tuple),
    min_duration=durations,
    max_duration=durations,
    price_constraint=st.none() | prices,
)
odd_slices = st.builds(
    FlexOfferSlice,
    energy_constraints=st.lists(bounds, max_size=3).map(tuple),
    min_duration=durations | st.integers(10**15, 10**30),
    max_duration=durations | st.integers(10**15, 10**30),
    price_constraint=st.none() | prices,
)
schedule_slices = st.builds(
    ScheduleSlice, energy_amount=energies, duration=durations, price=st.none() | energies
)
schedules = st.builds(
    FlexOfferSchedule,
    start_time=moments,
    slices=st.lists(schedule_slices, max_size=5).map(tuple),
    schedule_id=st.none() | st.integers(0, 10**6) | names,
    update_id=st.none() | st.integers(0, 100),
    num_seconds_per_interval=st.none() | interval_lengths,
)
locations = st.none() | names | st.dictionaries(names, names, max_size=2).map(freeze)


@st.composite
def offers(
    draw: st.DrawFn,
    *,
    interval_length: st.SearchStrategy[int] = interval_lengths,
    profile_slices: st.SearchStrategy[FlexOfferSlice] = slices,
) -> Any:
    """Any FlexOffer the model can hold (well typed, not necessarily valid)."""
    return FlexOffer(
        id=draw(names),
        state=draw(st.sampled_from(STATES)),
        offered_by_id=draw(names),
        creation_time=draw(moments),
        start_after_time=draw(moments),
        start_before_time=draw(moments),
        assignment_before_time=draw(moments),
        profile=tuple(draw(st.lists(profile_slices, max_size=5))),
        state_reason=draw(st.none() | names),
        location_id=draw(locations),
        accept_before_time=draw(st.none() | moments),
        assignment_before_start=draw(st.integers(0, 86_400)),
        end_after_time=draw(st.none() | moments),
        end_before_time=draw(st.none() | moments),
        num_seconds_per_interval=draw(interval_length),
        total_energy_constraint=draw(st.none() | bounds),
        sub_total_energy_constraint=draw(st.none() | bounds),
        power_factor_constraint=draw(st.none() | bounds),
        total_cost_constraint=draw(st.none() | bounds),
        default_schedule=draw(st.none() | schedules),
        schedule=draw(st.none() | schedules),
        unit=draw(st.sampled_from(["Wh", "VAh", "V"])),
        multiplier=draw(st.sampled_from(["k", "1", "M"])),
        profile_type=draw(st.sampled_from(["activeEnergy", "reactiveEnergy", "voltage"])),
    )


#: Odd offers too: non-positive interval lengths and enormous durations.
odd_offers = offers(interval_length=st.integers(-900, 7200), profile_slices=odd_slices)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)

_EXTRA_KEYS = (
    "acceptanceBeforeTime",
    "startAfterInterval",
    "startBeforeInterval",
    "creationInterval",
    "assignmentBeforeDurationIntervals",
    "locationID",
    "flexOffer",
)
_SLICE_KEYS = (
    "minDuration",
    "maxDuration",
    "energyConstraintList",
    "energyConstraint",
    "durationSeconds",
    "priceConstraint",
    "tariffConstraint",
)


@st.composite
def wild_offer_documents(draw: st.DrawFn) -> Any:
    """A dumped offer with a few fields dropped or replaced by arbitrary JSON values."""
    document = dump_flexoffer(draw(offers()))
    keys = sorted(document) + list(_EXTRA_KEYS)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        if draw(st.booleans()):
            document.pop(key, None)
        else:
            document[key] = draw(json_values)
    profile = document.get("flexOfferProfileConstraints")
    if isinstance(profile, list) and profile and draw(st.booleans()):
        piece = profile[draw(st.integers(0, len(profile) - 1))]
        if isinstance(piece, dict):
            piece[draw(st.sampled_from(_SLICE_KEYS))] = draw(json_values)
    return document
