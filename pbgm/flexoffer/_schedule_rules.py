"""The rules a schedule (assignment) must meet against its FlexOffer.

`FlexOfferSchedule.isCorrect(FlexOffer)` of the GOFLEX code (start inside the
window, slices matching the profile, each amount within its bounds with a 0.01
tolerance) plus what the spec asks of every schedule and the Java code skips:
the total and sub-total energy constraints, the end window, the interval grid,
the price bounds, the assignment deadlines and a state that allows scheduling.

Values that could not be read are None (see `pbgm.flexoffer._model`); a rule skips
what depends on them and checks the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pbgm.errors import Problem
from pbgm.flexoffer._model import FlexOffer, FlexOfferSchedule, FlexOfferSlice, ScheduleSlice
from pbgm.flexoffer._template import FlexOfferTemplate
from pbgm.flexoffer._timing import (
    SECOND,
    interval_micros,
    micros,
    on_grid,
    per_interval,
    scaled,
    show,
    show_bounds,
    show_number,
)

#: States in which an offer may receive a schedule; `assigned` allows an updated schedule.
SCHEDULABLE_STATES = ("offered", "accepted", "assigned")


@dataclass(frozen=True, slots=True)
class Check:
    schedule: FlexOfferSchedule
    offer: FlexOffer
    template: FlexOfferTemplate | None
    base: str

    @property
    def tolerance(self) -> float:
        return self.template.energy_tolerance if self.template else 0.01

    def path(self, suffix: str = "") -> str:
        return f"{self.base}{suffix}"


def schedule_violations(check: Check, now: datetime) -> list[Problem]:
    """Every violation of an assignment received at `now`."""
    return [*_state(check), *_deadlines(check, now), *structure_violations(check)]


def structure_violations(check: Check) -> list[Problem]:
    """The checks that do not depend on time of receipt (used for default schedules too)."""
    return [
        *_interval(check),
        *_window(check),
        *_slices(check),
        *_totals(check),
        *_end_window(check),
    ]


def _state(c: Check) -> Iterator[Problem]:
    if c.offer.state is not None and c.offer.state not in SCHEDULABLE_STATES:
        yield Problem(
            c.path(),
            "state_not_schedulable",
            f"an offer in state `{c.offer.state}` cannot be scheduled",
        )


def _deadlines(c: Check, now: datetime) -> Iterator[Problem]:
    deadline = c.offer.assignment_before_time
    if deadline is not None and micros(now) > micros(deadline):
        yield Problem(
            c.path(), "assignment_too_late", f"the assignment deadline {show(deadline)} has passed"
        )
    start = c.schedule.start_time
    lead = c.offer.assignment_before_start
    if start is None or lead is None:
        return
    if micros(now) > micros(start) - lead * SECOND:
        yield Problem(
            c.path(".startTime"),
            "assignment_too_late",
            f"a schedule starting at {show(start)} must arrive {lead} s before it",
        )


def _interval(c: Check) -> Iterator[Problem]:
    own, seconds = c.schedule.num_seconds_per_interval, c.offer.num_seconds_per_interval
    if seconds is None:
        return
    if own is not None and own != seconds:
        yield Problem(
            c.path(".numSecondsPerInterval"),
            "interval_length_mismatch",
            f"`{own}` s intervals, the offer uses {c.offer.num_seconds_per_interval}",
        )
    align = c.template.align_to_interval_grid if c.template else True
    start = c.schedule.start_time
    if align and start is not None and not on_grid(start, seconds):
        yield Problem(
            c.path(".startTime"),
            "not_on_interval_grid",
            f"{show(start)} is not on the {seconds} s grid",
        )


def _window(c: Check) -> Iterator[Problem]:
    start, offer = c.schedule.start_time, c.offer
    if start is None or offer.start_after_time is None or offer.start_before_time is None:
        return
    if not offer.start_after_time <= start <= offer.start_before_time:
        yield Problem(
            c.path(".startTime"),
            "schedule_outside_window",
            f"{show(start)} is outside "
            f"[{show(offer.start_after_time)}, {show(offer.start_before_time)}]",
        )


def _slices(c: Check) -> Iterator[Problem]:
    if c.offer.profile is None:
        return
    got, want = len(c.schedule.slices), len(c.offer.profile)
    if got != want:
        yield Problem(
            c.path(".scheduleSlices"), "slice_count_mismatch", f"{got} slices, the offer has {want}"
        )
        return
    for index, (piece, bounds) in enumerate(zip(c.schedule.slices, c.offer.profile, strict=True)):
        if piece is not None and bounds is not None:
            yield from _slice(c, piece, bounds, c.path(f".scheduleSlices[{index}]"))


def _slice(c: Check, piece: ScheduleSlice, offered: FlexOfferSlice, path: str) -> Iterator[Problem]:
    low, high = offered.min_duration, offered.max_duration
    if piece.duration is None or piece.energy_amount is None:
        yield from _slice_price(piece, offered, path)
        return
    if low is not None and high is not None and not low <= piece.duration <= high:
        yield Problem(
            f"{path}.duration",
            "slice_duration_mismatch",
            f"{piece.duration} intervals, "
            f"the offer allows {offered.min_duration} to {offered.max_duration}",
        )
    if _energy_fits(piece, offered, c.tolerance) is False:
        yield Problem(
            f"{path}.energyAmount",
            "slice_energy_out_of_bounds",
            f"{show_number(piece.energy_amount)} is outside the slice's bounds for "
            f"{piece.duration} interval(s)",
        )
    if c.template is not None and piece.duration >= 1:
        energy = per_interval(piece.energy_amount, piece.duration)
        if not c.template.energy_per_slice.holds(energy):
            yield Problem(
                f"{path}.energyAmount",
                "slice_energy_out_of_bounds",
                f"{show_number(energy)} per interval is outside the template's bounds",
            )
    yield from _slice_price(piece, offered, path)


def _energy_fits(piece: ScheduleSlice, offered: FlexOfferSlice, tolerance: float) -> bool | None:
    """Within one of the slice's alternatives, bounds scaled by the slice's duration;
    None (unknown) when it fits none of the known ones but some could not be read."""
    amount, duration = piece.energy_amount, piece.duration
    known = [b for b in offered.energy_constraints if b is not None]
    known = [b for b in known if b.lower is not None and b.upper is not None]
    if any(
        scaled(duration, b.lower) - tolerance <= amount <= scaled(duration, b.upper) + tolerance
        for b in known
    ):
        return True
    return None if len(known) < len(offered.energy_constraints) else False


def _slice_price(piece: ScheduleSlice, offered: FlexOfferSlice, path: str) -> Iterator[Problem]:
    bounds = offered.price_constraint
    if piece.price is None or bounds is None:
        return
    if bounds.min_price is None or bounds.max_price is None:
        return
    if not bounds.min_price <= piece.price <= bounds.max_price:
        yield Problem(
            f"{path}.price",
            "slice_price_out_of_bounds",
            f"{show_number(piece.price)} is outside [{bounds.min_price:g}, {bounds.max_price:g}]",
        )


def _totals(c: Check) -> Iterator[Problem]:
    yield from _sub_total(c)
    amounts = [s.energy_amount if s is not None else None for s in c.schedule.slices]
    if any(a is None for a in amounts):
        return
    total, tolerance = c.schedule.total_energy, c.tolerance
    bounds = c.offer.total_energy_constraint
    if (
        bounds is not None
        and bounds.lower is not None
        and bounds.upper is not None
        and not bounds.lower - tolerance <= total <= bounds.upper + tolerance
    ):
        yield Problem(
            c.path(".scheduleSlices"),
            "total_energy_out_of_bounds",
            f"the schedule totals {show_number(total)}, outside {show_bounds(bounds)}",
        )
    if c.template is not None and not c.template.total_energy.holds(total):
        yield Problem(
            c.path(".scheduleSlices"),
            "total_energy_out_of_bounds",
            f"the schedule totals {show_number(total)}, outside the template's bounds",
        )


def _sub_total(c: Check) -> Iterator[Problem]:
    """Every running sum stays within the reservoir (`subTotalEnergyConstraint`)."""
    bounds, running = c.offer.sub_total_energy_constraint, 0.0
    if bounds is None or bounds.lower is None or bounds.upper is None:
        return
    for index, piece in enumerate(c.schedule.slices):
        if piece is None or piece.energy_amount is None:
            return  # the running sums after an unknown amount are unknown
        running += piece.energy_amount
        if not bounds.lower - c.tolerance <= running <= bounds.upper + c.tolerance:
            yield Problem(
                c.path(f".scheduleSlices[{index}].energyAmount"),
                "sub_total_energy_out_of_bounds",
                f"energy so far {show_number(running)}, outside {show_bounds(bounds)}",
            )
            return


def _end_window(c: Check) -> Iterator[Problem]:
    offer, start = c.offer, c.schedule.start_time
    durations = [s.duration if s is not None else None for s in c.schedule.slices]
    if start is None or offer.num_seconds_per_interval is None or None in durations:
        return
    end = micros(start) + c.schedule.total_duration * interval_micros(offer)
    early = offer.end_after_time is not None and end < micros(offer.end_after_time)
    late = offer.end_before_time is not None and end > micros(offer.end_before_time)
    if early or late:
        yield Problem(
            c.path(".scheduleSlices"),
            "end_window_violated",
            "the schedule ends outside the offer's end window",
        )
