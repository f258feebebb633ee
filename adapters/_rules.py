"""Rules for settings that several adapters share, one copy each, applied when a file is
read and when the object is made in code alike. Each returns the value it checked or
raises `ConfigurationError` naming the setting (`where`), at start: a bad value would
otherwise fail at every message, publish or tick."""

from __future__ import annotations

import math
from typing import Any

from pbgm.bus import check_qos, check_topic
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.functions import parse_topic_filter

DAY_S = 86400.0


def seconds(value: Any, where: str, *, zero: bool = False, most: float | None = DAY_S) -> float:
    """A period or a bound in seconds: a finite number above 0 (from 0 with `zero`), at
    most `most` (None: no upper bound). A period of 0 would spin, NaN compare false."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if (
        not number
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
        or (most is not None and value > most)
    ):
        if most is not None:
            raise ConfigurationError(f"`{where}` must be a number of seconds from 0 to {most:g}")
        bound = "from 0" if zero else "above 0"
        raise ConfigurationError(f"`{where}` must be a finite number of seconds {bound}")
    return float(value)


def publish_topic(value: Any, where: str) -> str:
    """A topic published on, by the bus's rule (`pbgm.bus.check_topic`): a wildcard or an
    empty name would fail at every publish."""
    try:
        return check_topic(value)
    except InvalidInputError as error:
        raise ConfigurationError(f"`{where}`: {error.message}") from None


def subscribe_topic(value: Any, where: str) -> str:
    """A topic name or filter subscribed to, by the rule the bus's subscribe applies
    (`pbgm.functions.parse_topic_filter`): refused only once the service ran otherwise."""
    if not isinstance(value, str):
        raise ConfigurationError(f"`{where}` must be a topic such as `/edgeflex/edgepmu3/ch1`")
    try:
        parse_topic_filter(value)
    except ValueError as error:
        raise ConfigurationError(f"`{where}`: {error}") from None
    return value


def qos_setting(value: Any, where: str) -> int:
    """An MQTT QoS by the bus's rule (`pbgm.bus.check_qos`): a bad one would fail at every
    publish."""
    try:
        return check_qos(value)
    except InvalidInputError as error:
        raise ConfigurationError(f"`{where}`: {error.message}") from None
