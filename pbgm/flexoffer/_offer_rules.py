"""The rules a FlexOffer must meet on its own and against its template.

Each rule is a small generator of violations; `offer_violations` runs them all.
Paths use the spec's canonical (camelCase) names whatever spelling came in.

A value that could not be read is None (see `pbgm.flexoffer._model`): each rule checks
what does not depend on it and skips the rest, so a parse problem never hides an
independent violation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pbgm.errors import Problem
from pbgm.flexoffer._model import STATES, FlexOffer
from pbgm.flexoffer._slice_rules import profile_span, profile_violations
from pbgm.flexoffer._template import FlexOfferTemplate
from pbgm.flexoffer._timing import (
    SECOND,
    interval_micros,
    micros,
    on_grid,
    show,
    show_seconds,
)


@dataclass(frozen=True, slots=True)
class Context:
    offer: FlexOffer
    template: FlexOfferTemplate
    now: datetime

    @property
    def step(self) -> int | None:
        """One interval in microseconds; None when the interval length is unknown."""
        seconds = self.offer.num_seconds_per_interval
        return None if seconds is None else interval_micros(self.offer)

    @property
    def latest_end(self) -> int | None:
        """Latest moment the offer may still run (µs since the epoch); None if unknown."""
        o = self.offer
        if o.end_before_time is not None:
            return micros(o.end_before_time)
        longest, step = profile_span(o)[1], self.step
        if "end_before_time" in o.unreadable or o.start_before_time is None:
            return None
        if longest is None or step is None:
            return None
        return micros(o.start_before_time) + longest * step


Rule = Callable[[Context], Iterator[Problem]]


def offer_violations(offer: FlexOffer, template: FlexOfferTemplate, now: datetime) -> list[Problem]:
    """Every violation of `offer` against `template` at `now`."""
    context = Context(offer, template, now)
    found = [p for rule in _RULES for p in rule(context)]
    found.extend(profile_violations(offer, template))
    return found


def _identity(c: Context) -> Iterator[Problem]:
    offer, allowed = c.offer, c.template.allowed_offered_by
    if offer.id is not None and not offer.id.strip():
        yield Problem("$.id", "empty_id", "the offer id is empty")
    if offer.offered_by_id is None:
        pass
    elif not offer.offered_by_id.strip():
        yield Problem("$.offeredById", "empty_offered_by", "`offeredById` is empty")
    elif allowed is not None and offer.offered_by_id not in allowed:
        yield Problem(
            "$.offeredById",
            "offered_by_not_allowed",
            f"`{offer.offered_by_id}` may not offer flexibility for this asset",
        )
    if offer.state is not None and offer.state not in STATES:
        yield Problem("$.state", "unknown_state", f"`{offer.state}` is not a flexoffer state")


def _format(c: Context) -> Iterator[Problem]:
    offer, template = c.offer, c.template
    seconds = offer.num_seconds_per_interval
    if seconds is None:
        pass
    elif seconds <= 0:
        yield Problem("$.numSecondsPerInterval", "interval_length_invalid", "must be positive")
    elif seconds != template.num_seconds_per_interval:
        yield Problem(
            "$.numSecondsPerInterval",
            "interval_length_mismatch",
            f"`{seconds}` s intervals, the template requires {template.num_seconds_per_interval}",
        )
    if offer.assignment_before_start is not None and offer.assignment_before_start < 0:
        yield Problem("$.assignmentBeforeStart", "invalid_value", "must not be negative")
    if (
        offer.unit is not None
        and offer.multiplier is not None
        and (offer.effective_unit != template.unit)
    ):
        yield Problem(
            "$.unit",
            "unit_mismatch",
            f"energy in `{offer.effective_unit}`, the template requires `{template.unit}`",
        )
    if template.profile_type is not None and offer.profile_type not in (
        None,
        template.profile_type,
    ):
        yield Problem(
            "$.flexOfferProfilType",
            "profile_type_mismatch",
            f"`{offer.profile_type}`, the template requires `{template.profile_type}`",
        )


def _ordering(c: Context) -> Iterator[Problem]:
    """Deadlines in order: creation <= accept <= assignment <= start window (spec, GOFLEX)."""
    o = c.offer
    start = o.start_after_time if c.template.strict_deadline_order else o.start_before_time
    accept, assign = o.accept_before_time, o.assignment_before_time
    pairs = [
        ("created_after_start", "startAfterTime", o.creation_time, o.start_after_time),
        ("start_window_inverted", "startBeforeTime", o.start_after_time, o.start_before_time),
        ("created_after_accept", "acceptBeforeTime", o.creation_time, accept),
        ("accept_after_assignment", "acceptBeforeTime", accept, assign),
        ("assignment_after_start", "assignmentBeforeTime", assign, start),
    ]
    if accept is None and assign != o.start_after_time:
        pairs.append(("created_after_assignment", "assignmentBeforeTime", o.creation_time, assign))
    for code, name, early, late in pairs:
        if early is not None and late is not None and early > late:
            yield Problem(f"$.{name}", code, f"{show(early)} is after {show(late)}")


def _end_window(c: Context) -> Iterator[Problem]:
    """`endAfterTime`/`endBeforeTime` consistent with the start window and the durations."""
    o, step = c.offer, c.step
    end_after, end_before = o.end_after_time, o.end_before_time
    if end_after is not None and end_before is not None and end_after > end_before:
        yield Problem(
            "$.endAfterTime",
            "end_window_inverted",
            f"{show(end_after)} is after {show(end_before)}",
        )
    least, most = profile_span(o)
    if step is None:
        return
    if end_before is not None and least is not None:
        shortest = least * step
        if o.start_before_time is not None and micros(o.start_before_time) + shortest > micros(
            end_before
        ):
            yield Problem(
                "$.startBeforeTime",
                "latest_start_too_late",
                f"the shortest profile started last ends after {show(end_before)}",
            )
        if o.start_after_time is not None and micros(o.start_after_time) + shortest > micros(
            end_before
        ):
            yield Problem(
                "$.endBeforeTime",
                "end_before_unreachable",
                f"the shortest profile started at once ends after {show(end_before)}",
            )
    if end_after is not None and most is not None and o.start_before_time is not None:
        latest = micros(o.start_before_time) + most * step
        if latest < micros(end_after):
            yield Problem(
                "$.endAfterTime",
                "end_after_unreachable",
                f"the longest profile started last ends before {show(end_after)}",
            )


def _grid(c: Context) -> Iterator[Problem]:
    o, seconds = c.offer, c.offer.num_seconds_per_interval
    if not c.template.align_to_interval_grid or seconds is None:
        return
    times = {
        "$.acceptBeforeTime": o.accept_before_time,
        "$.assignmentBeforeTime": o.assignment_before_time,
        "$.startAfterTime": o.start_after_time,
        "$.startBeforeTime": o.start_before_time,
        "$.endAfterTime": o.end_after_time,
        "$.endBeforeTime": o.end_before_time,
    }
    for path, moment in times.items():
        if moment is not None and not on_grid(moment, seconds):
            yield Problem(
                path, "not_on_interval_grid", f"{show(moment)} is not on the {seconds} s grid"
            )


def _activation_window(c: Context) -> Iterator[Problem]:
    limit, o = c.template.max_activation_window_s, c.offer
    if limit is None or o.start_before_time is None or o.start_after_time is None:
        return
    window = micros(o.start_before_time) - micros(o.start_after_time)
    if window > limit * SECOND:
        yield Problem(
            "$.startBeforeTime",
            "activation_window_too_long",
            f"the activation window lasts {show_seconds(window)}, at most {limit} s allowed",
        )


def _now(c: Context) -> Iterator[Problem]:
    """Deadlines against `now`: not created in the future, nothing expired."""
    o, now = c.offer, micros(c.now)
    if o.creation_time is not None and micros(o.creation_time) > (
        now + c.template.clock_skew_s * SECOND
    ):
        yield Problem(
            "$.creationTime", "created_in_future", f"{show(o.creation_time)} is in the future"
        )
    deadlines = (
        ("$.acceptBeforeTime", o.accept_before_time),
        ("$.assignmentBeforeTime", o.assignment_before_time),
    )
    for path, moment in deadlines:
        if moment is not None and micros(moment) < now:
            yield Problem(path, "deadline_passed", f"{show(moment)} has passed")
    if o.start_before_time is not None and micros(o.start_before_time) < now:
        yield Problem(
            "$.startBeforeTime", "offer_expired", f"{show(o.start_before_time)} has passed"
        )


def _lead_time(c: Context) -> Iterator[Problem]:
    o, template = c.offer, c.template
    accept_unknown = "accept_before_time" in o.unreadable
    if (
        template.require_accept_before_time
        and o.accept_before_time is None
        and not (accept_unknown)
    ):
        yield Problem(
            "$.acceptBeforeTime",
            "missing_accept_before",
            "the template requires `acceptBeforeTime`",
        )
    deadline = o.accept_before_time or o.assignment_before_time
    path = "$.acceptBeforeTime" if o.accept_before_time else "$.assignmentBeforeTime"
    if deadline is None or (accept_unknown and o.accept_before_time is None):
        return
    lead = micros(deadline) - micros(c.now)
    if 0 <= lead < template.min_lead_time_s * SECOND:
        yield Problem(
            path,
            "lead_time_too_short",
            f"{show(deadline)} leaves {show_seconds(lead)}, "
            f"at least {template.min_lead_time_s} s needed",
        )


def _horizon(c: Context) -> Iterator[Problem]:
    limit, latest = c.template.max_offer_horizon_s, c.latest_end
    if limit is not None and latest is not None and latest - micros(c.now) > limit * SECOND:
        yield Problem(
            "$.startBeforeTime",
            "horizon_too_far",
            f"the offer may run until more than {limit} s from now",
        )


_RULES: tuple[Rule, ...] = (
    _identity,
    _format,
    _ordering,
    _end_window,
    _grid,
    _activation_window,
    _now,
    _lead_time,
    _horizon,
)
