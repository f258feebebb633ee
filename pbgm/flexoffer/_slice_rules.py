"""The rules on a FlexOffer's profile: slices, energy, power factor and price.

Energy bounds are per interval (spec Table 2.1); a slice of `d` intervals can
deliver between `d * lower` and `d * upper`. Over a duration range the slice's
reachable energy is taken as the hull `[min_d d*lower, max_d d*upper]` (gaps
between durations are ignored), and several energy constraints of a slice as
the hull of the alternatives.
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
    for index, piece in enumerate(offer.profile):
        found.extend(_slice(piece, f"{_PROFILE}[{index}]", template))
    found.extend(_constraints(offer, template))
    found.extend(_total_energy(offer, template))
    return found


def reachable_energy(offer: FlexOffer) -> Bounds | None:
    """The hull of the total energy the profile can deliver, or None if a slice is malformed."""
    low = high = 0.0
    for piece in offer.profile:
        hull = piece.energy_hull
        if hull is None or hull.lower > hull.upper or not _durations_ok(piece):
            return None
        ends = (piece.min_duration, piece.max_duration)
        low += min(scaled(d, hull.lower) for d in ends)
        high += max(scaled(d, hull.upper) for d in ends)
    return Bounds(low, high)


def _durations_ok(piece: FlexOfferSlice) -> bool:
    return 1 <= piece.min_duration <= piece.max_duration


def _slice_count(offer: FlexOffer, template: FlexOfferTemplate) -> Iterator[Problem]:
    count, longest = len(offer.profile), offer.max_duration_intervals
    if count < template.min_slices:
        yield Problem(_PROFILE, "too_few_slices", f"{count} slices, at least {template.min_slices}")
    if template.max_slices is not None and count > template.max_slices:
        yield Problem(_PROFILE, "too_many_slices", f"{count} slices, at most {template.max_slices}")
    limit = template.max_profile_duration
    if limit is not None and longest > limit:
        yield Problem(_PROFILE, "profile_too_long", f"{longest} intervals, at most {limit} allowed")


def _slice(piece: FlexOfferSlice, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    yield from _slice_durations(piece, path, template)
    if not piece.energy_constraints:
        yield Problem(f"{path}.energyConstraintList", "slice_without_energy", "no energy bounds")
    for index, bounds in enumerate(piece.energy_constraints):
        yield from _energy_bounds(bounds, f"{path}.energyConstraintList[{index}]", template)
    yield from _price(piece, f"{path}.priceConstraint", template.price)


def _slice_durations(
    piece: FlexOfferSlice, path: str, template: FlexOfferTemplate
) -> Iterator[Problem]:
    low, high = piece.min_duration, piece.max_duration
    if low < 1 or high < 1:
        yield Problem(path, "slice_duration_invalid", "durations must be at least 1 interval")
    elif low > high:
        yield Problem(f"{path}.minDuration", "slice_duration_inverted", f"{low} exceeds {high}")
    if low < template.min_slice_duration:
        yield Problem(
            f"{path}.minDuration",
            "slice_duration_out_of_bounds",
            f"{low} intervals, at least {template.min_slice_duration}",
        )
    if template.max_slice_duration is not None and high > template.max_slice_duration:
        yield Problem(
            f"{path}.maxDuration",
            "slice_duration_out_of_bounds",
            f"{high} intervals, at most {template.max_slice_duration}",
        )


def _energy_bounds(bounds: Bounds, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    if bounds.lower > bounds.upper:
        yield Problem(
            path,
            "slice_energy_inverted",
            f"lower {show_number(bounds.lower)} exceeds upper {show_number(bounds.upper)}",
        )
    limits = template.energy_per_slice
    for name, value in (("lower", bounds.lower), ("upper", bounds.upper)):
        if not limits.holds(value):
            yield Problem(
                f"{path}.{name}",
                "slice_energy_out_of_bounds",
                f"{show_number(value)} is outside the template's {_show_limits(limits)}",
            )
    yield from _direction(bounds, path, template)


def _direction(bounds: Bounds, path: str, template: FlexOfferTemplate) -> Iterator[Problem]:
    """Respect the template's sign convention and allowed direction of energy flow."""
    consumption_positive = template.sign_convention == "consumption_positive"
    can_consume = bounds.upper > 0 if consumption_positive else bounds.lower < 0
    can_produce = bounds.lower < 0 if consumption_positive else bounds.upper > 0
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
    if price.min_price > price.max_price:
        yield Problem(path, "slice_price_inverted", "`minPrice` exceeds `maxPrice`")
    for name, value in (("minPrice", price.min_price), ("maxPrice", price.max_price)):
        if not limits.holds(value):
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
        if bounds is not None and bounds.lower > bounds.upper:
            yield Problem(path, code, "`lower` exceeds `upper`")
    factor = offer.effective_power_factor
    if not (-1.0 <= factor.lower <= 1.0 and -1.0 <= factor.upper <= 1.0):
        yield Problem("$.powerFactorConstraint", "power_factor_out_of_range", "must lie in [-1, 1]")
    if not (
        template.power_factor.holds(factor.lower) and template.power_factor.holds(factor.upper)
    ):
        yield Problem(
            "$.powerFactorConstraint",
            "power_factor_out_of_bounds",
            f"outside the template's {_show_limits(template.power_factor)}",
        )


def _total_energy(offer: FlexOffer, template: FlexOfferTemplate) -> Iterator[Problem]:
    """The total energy constraint is reachable, and what remains lies within the template."""
    reach = reachable_energy(offer)
    total = offer.total_energy_constraint
    if reach is None or (total is not None and total.lower > total.upper):
        return
    if total is not None:
        if reach.lower > total.upper or reach.upper < total.lower:
            yield Problem(
                "$.totalEnergyConstraint",
                "total_energy_infeasible",
                f"the slices reach {show_bounds(reach)}, which misses {show_bounds(total)}",
            )
            return
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
