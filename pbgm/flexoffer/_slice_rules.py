"""The rules on a FlexOffer's profile: slices, energy, power factor and price.

Energy bounds are per interval (spec Table 2.1); a slice of `d` intervals can
deliver between `d * lower` and `d * upper`. Over a duration range the slice's
reachable energy is taken as the hull `[min_d d*lower, max_d d*upper]` (gaps
between durations are ignored), and several energy constraints of a slice as
the hull of the alternatives.

Whether the total energy constraint can be met is decided even when a slice is
malformed: such a slice is read in the most lenient way its numbers allow (bounds
in either order, durations in either order and not below zero). When even that
reading cannot reach the constraint, no repair of the slice alone can, and
`total_energy_infeasible` is reported beside the slice's own violation. A value that
could not be read at all (None) makes the reach unknown.
"""

from __future__ import annotations

from collections.abc import Iterator

from pbgm.errors import Problem
from pbgm.flexoffer._model import Bounds, FlexOffer, FlexOfferSlice
from pbgm.flexoffer._template import FlexOfferTemplate, Limits
from pbgm.flexoffer._timing import scaled, show_bounds, show_number

_PROFILE = "$.flexOfferProfileConstraints"


def profile_violations(offer: FlexOffer, template: FlexOfferTemplate) -> list[Problem]:
    found = list(_slice_count(offer, template))
    for index, piece in enumerate(offer.profile or ()):
        if piece is not None:
            found.extend(_slice(piece, f"{_PROFILE}[{index}]", template))
    found.extend(_constraints(offer, template))
    found.extend(_total_energy(offer, template))
    return found


def profile_span(offer: FlexOffer) -> tuple[int | None, int | None]:
    """The shortest and longest profile in intervals; None where a duration is unknown."""
    if offer.profile is None or any(p is None for p in offer.profile):
        return None, None
    lows = [p.min_duration for p in offer.profile]
    highs = [p.max_duration for p in offer.profile]
    return (
        None if any(d is None for d in lows) else sum(lows),
        None if any(d is None for d in highs) else sum(highs),
    )


def reachable_energy(offer: FlexOffer) -> Bounds | None:
    """The hull of the total energy the profile can deliver, or None if a slice is malformed."""
    return _reach(offer, lenient=False)


def _reach(offer: FlexOffer, *, lenient: bool) -> Bounds | None:
    """The reachable total; `lenient` reads malformed slices as widely as they allow."""
    if offer.profile is None:
        return None
    low = high = 0.0
    for piece in offer.profile:
        part = _slice_reach(piece, lenient) if piece is not None else None
        if part is None:
            return None
        low, high = low + part.lower, high + part.upper
    return Bounds(low, high)


def _slice_reach(piece: FlexOfferSlice, lenient: bool) -> Bounds | None:
    bounds = piece.energy_constraints
    if not bounds or any(b is None or b.lower is None or b.upper is None for b in bounds):
        return None
    if not lenient and (not _durations_ok(piece) or any(b.lower > b.upper for b in bounds)):
        return None
    if piece.min_duration is None or piece.max_duration is None:
        return None
    lows = [min(b.lower, b.upper) for b in bounds]
    highs = [max(b.lower, b.upper) for b in bounds]
    ends = [max(d, 0) for d in (piece.min_duration, piece.max_duration)]
    return Bounds(min(scaled(d, min(lows)) for d in ends), max(scaled(d, max(highs)) for d in ends))


def _durations_ok(piece: FlexOfferSlice) -> bool:
    low, high = piece.min_duration, piece.max_duration
    return low is not None and high is not None and 1 <= low <= high


def _slice_count(offer: FlexOffer, template: FlexOfferTemplate) -> Iterator[Problem]:
    if offer.profile is None:
        return
    count, longest = len(offer.profile), profile_span(offer)[1]
    if count < template.min_slices:
        yield Problem(_PROFILE, "too_few_slices", f"{count} slices, at least {template.min_slices}")
    if template.max_slices is not None and count > template.max_slices:
        yield Problem(_PROFILE, "too_many_slices", f"{count} slices, at most {template.max_slices}")
    limit = template.max_profile_duration
    if limit is not None and longest is not None and longest > limit:
        yield Problem(_PROFILE, "profile_too_long", f"{longest} intervals, at most {limit} allowed")


def _slice(piece: FlexOfferSlice, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    yield from _slice_durations(piece, path, template)
    if not piece.energy_constraints:
        yield Problem(f"{path}.energyConstraintList", "slice_without_energy", "no energy bounds")
    for index, bounds in enumerate(piece.energy_constraints):
        if bounds is not None:
            yield from _energy_bounds(bounds, f"{path}.energyConstraintList[{index}]", template)
    yield from _price(piece, f"{path}.priceConstraint", template.price)


def _slice_durations(
    piece: FlexOfferSlice, path: str, template: FlexOfferTemplate
) -> Iterator[Problem]:
    low, high = piece.min_duration, piece.max_duration
    if (low is not None and low < 1) or (high is not None and high < 1):
        yield Problem(path, "slice_duration_invalid", "durations must be at least 1 interval")
    elif low is not None and high is not None and low > high:
        yield Problem(f"{path}.minDuration", "slice_duration_inverted", f"{low} exceeds {high}")
    # a duration below 1 is `slice_duration_invalid` alone, not also out of the template
    if low is not None and 1 <= low < template.min_slice_duration:
        yield Problem(
            f"{path}.minDuration",
            "slice_duration_out_of_bounds",
            f"{low} intervals, at least {template.min_slice_duration}",
        )
    if (
        template.max_slice_duration is not None
        and high is not None
        and (high > template.max_slice_duration)
    ):
        yield Problem(
            f"{path}.maxDuration",
            "slice_duration_out_of_bounds",
            f"{high} intervals, at most {template.max_slice_duration}",
        )


def _energy_bounds(bounds: Bounds, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    if bounds.lower is not None and bounds.upper is not None and bounds.lower > bounds.upper:
        yield Problem(
            path,
            "slice_energy_inverted",
            f"lower {show_number(bounds.lower)} exceeds upper {show_number(bounds.upper)}",
        )
    limits = template.energy_per_slice
    for name, value in (("lower", bounds.lower), ("upper", bounds.upper)):
        if value is not None and not limits.holds(value):
            yield Problem(
                f"{path}.{name}",
                "slice_energy_out_of_bounds",
                f"{show_number(value)} is outside the template's {_show_limits(limits)}",
            )
    yield from _direction(bounds, path, template)


def _direction(bounds: Bounds, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    """Respect the template's sign convention and allowed direction of energy flow."""
    consumption_positive = template.sign_convention == "consumption_positive"
    upper = bounds.upper is not None and bounds.upper > 0
    lower = bounds.lower is not None and bounds.lower < 0
    can_consume = upper if consumption_positive else lower
    can_produce = lower if consumption_positive else upper
    if template.allowed_direction == "consumption" and can_produce:
        yield Problem(path, "sign_convention_violated", _direction_message("production", template))
    if template.allowed_direction == "production" and can_consume:
        yield Problem(path, "sign_convention_violated", _direction_message("consumption", template))


def _direction_message(flow: str, template: FlexOfferTemplate) -> str:
    return f"allows {flow}, which the template forbids (`{template.sign_convention}`)"


def _price(piece: FlexOfferSlice, path: str, limits: Limits) -> Iterator[Problem]:
    price = piece.price_constraint
    if price is None:
        return
    low, high = price.min_price, price.max_price
    if low is not None and high is not None and low > high:
        yield Problem(path, "slice_price_inverted", "`minPrice` exceeds `maxPrice`")
    for name, value in (("minPrice", low), ("maxPrice", high)):
        if value is not None and not limits.holds(value):
            yield Problem(
                f"{path}.{name}",
                "price_out_of_bounds",
                f"{show_number(value)} is outside the template's {_show_limits(limits)}",
            )


def _constraints(offer: FlexOffer, template: FlexOfferTemplate) -> Iterator[Problem]:
    """Offer-wide ranges well formed; power factor a cosine within the template's range."""
    ranges = (
        ("$.totalEnergyConstraint", offer.total_energy_constraint, "total_energy_inverted"),
        (
            "$.subTotalEnergyConstraint",
            offer.sub_total_energy_constraint,
            "sub_total_energy_inverted",
        ),
        ("$.totalCostConstraint", offer.total_cost_constraint, "total_cost_inverted"),
        ("$.powerFactorConstraint", offer.power_factor_constraint, "power_factor_inverted"),
    )
    for path, bounds, code in ranges:
        if bounds is not None and _known(bounds) and bounds.lower > bounds.upper:
            yield Problem(path, code, "`lower` exceeds `upper`")
    if "power_factor_constraint" in offer.unreadable:
        return
    factor = offer.effective_power_factor
    sides = [v for v in (factor.lower, factor.upper) if v is not None]
    if not all(-1.0 <= v <= 1.0 for v in sides):
        yield Problem("$.powerFactorConstraint", "power_factor_out_of_range", "must lie in [-1, 1]")
    if not all(template.power_factor.holds(v) for v in sides):
        yield Problem(
            "$.powerFactorConstraint",
            "power_factor_out_of_bounds",
            f"outside the template's {_show_limits(template.power_factor)}",
        )


def _known(bounds: Bounds | None) -> bool:
    return bounds is not None and bounds.lower is not None and bounds.upper is not None


def _total_energy(offer: FlexOffer, template: FlexOfferTemplate) -> Iterator[Problem]:
    """The total energy constraint is reachable, and what remains lies within the template."""
    total = offer.total_energy_constraint
    if total is not None and not _known(total):
        return
    if total is not None:
        wide = _reach(offer, lenient=True)
        want = Bounds(min(total.lower, total.upper), max(total.lower, total.upper))
        if wide is not None and (wide.lower > want.upper or wide.upper < want.lower):
            yield Problem(
                "$.totalEnergyConstraint",
                "total_energy_infeasible",
                f"the slices reach {show_bounds(wide)}, which misses {show_bounds(total)}",
            )
            return
    reach = reachable_energy(offer)
    if reach is None or (total is not None and total.lower > total.upper):
        return
    if total is not None:
        reach = Bounds(max(reach.lower, total.lower), min(reach.upper, total.upper))
    limits = template.total_energy
    if not (limits.holds(reach.lower) and limits.holds(reach.upper)):
        yield Problem(
            "$.totalEnergyConstraint" if total else _PROFILE,
            "total_energy_out_of_bounds",
            f"total energy may reach {show_bounds(reach)}, "
            f"outside the template's {_show_limits(limits)}",
        )


def _show_limits(limits: Limits) -> str:
    low = "-inf" if limits.min is None else f"{limits.min:g}"
    high = "inf" if limits.max is None else f"{limits.max:g}"
    return f"[{low}, {high}]"
