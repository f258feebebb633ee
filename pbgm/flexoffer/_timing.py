"""Exact time and energy arithmetic shared by the offer and schedule rules.

Times are compared as whole microseconds since the epoch (Python integers), so
durations of any size never overflow a `datetime`; energies scaled by a
duration never raise on absurd durations.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pbgm.flexoffer._model import EPOCH, Bounds, FlexOffer
from pbgm.policy import format_datetime

_MICROSECOND = timedelta(microseconds=1)
SECOND = 1_000_000


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch."""
    return (moment - EPOCH) // _MICROSECOND


def interval_micros(offer: FlexOffer) -> int:
    """Length of one interval in microseconds (0 when the offer's length is invalid)."""
    return max(offer.num_seconds_per_interval, 0) * SECOND


def on_grid(moment: datetime, seconds_per_interval: int) -> bool:
    """True when `moment` is a whole number of intervals since the epoch."""
    if seconds_per_interval <= 0:
        return True
    return micros(moment) % (seconds_per_interval * SECOND) == 0


def scaled(duration: int, energy: float) -> float:
    """`duration * energy`, infinite instead of an overflow."""
    try:
        return duration * energy
    except OverflowError:
        return math.copysign(math.inf, energy) if energy else 0.0


def per_interval(amount: float, duration: int) -> float:
    """`amount / duration` for a positive duration, 0.0 where the quotient underflows."""
    try:
        return amount / duration
    except OverflowError:
        return 0.0


def show(moment: datetime) -> str:
    return f"`{format_datetime(moment)}`"


def show_number(value: float) -> str:
    return f"`{value:g}`"


def show_bounds(bounds: Bounds) -> str:
    return f"[{bounds.lower:g}, {bounds.upper:g}]"


def show_seconds(value: int) -> str:
    return f"{value // SECOND} s"
