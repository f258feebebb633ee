"""Small helpers shared by the controllers: value checks, node keys, the limits slot."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from controls.errors import InvalidLimitsError, InvalidMeasurementError, InvalidMessageError

L = TypeVar("L")

_NODE_KEY = re.compile(r"node_(\d+)")


def finite(value: Any, what: str, error: type[Exception] = InvalidMeasurementError) -> float:
    """Return `value` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what} must be a number, got `{value!r}`")
    number = float(value)
    if not math.isfinite(number):
        raise error(f"{what} must be finite, got `{value!r}`")
    return number


def setting(
    value: Any,
    name: str,
    unit: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> float:
    """A numeric setting as a float, or `InvalidLimitsError` naming it and its unit.

    Refuses booleans, non-numbers, NaN and infinities, and values outside the given
    bounds (`minimum`/`maximum` inclusive, `above`/`below` exclusive), so a bad setting
    never passes silently (a NaN threshold would compare false everywhere).
    """
    unit_text = f" {unit}" if unit else ""
    in_unit = f" (in {unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLimitsError(f"`{name}` must be a number{in_unit}, got `{value!r}`")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidLimitsError(f"`{name}` must be finite{in_unit}, got `{value!r}`")
    checks = (
        (minimum, ">=", minimum is not None and number < minimum),
        (above, ">", above is not None and number <= above),
        (maximum, "<=", maximum is not None and number > maximum),
        (below, "<", below is not None and number >= below),
    )
    for bound, word, broken in checks:
        if broken and bound is not None:
            raise InvalidLimitsError(
                f"`{name}` must be {word} {bound:g}{unit_text}, got `{value!r}`{unit_text}"
            )
    return number


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    """One of `options`, or `InvalidLimitsError` listing them."""
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(f"`{o}`" for o in options)
        raise InvalidLimitsError(f"`{name}` must be one of {listed}, got `{value!r}`")
    return value


def check_range(low: float, high: float, what: str) -> None:
    """Raise `InvalidLimitsError` unless `low <= high`, both finite."""
    finite(low, f"{what} lower bound", InvalidLimitsError)
    finite(high, f"{what} upper bound", InvalidLimitsError)
    if low > high:
        raise InvalidLimitsError(f"{what}: lower bound `{low}` is above upper bound `{high}`")


def frozen_mapping(items: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only copy, so frozen limit dataclasses stay immutable."""
    return MappingProxyType(dict(items))


def node_id(key: str) -> int:
    """`"node_12"` -> 12; anything else is an invalid message."""
    match = _NODE_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidMessageError(f"node key `{key}` is not of the form `node_<n>`")
    return int(match.group(1))


def node_key(node: int) -> str:
    return f"node_{node}"


def load_message(message: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    """Accept a decoded JSON object, or its text/bytes, and return the object."""
    if isinstance(message, str | bytes | bytearray):
        try:
            message = json.loads(message)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidMessageError("message is not valid json") from exc
    if not isinstance(message, Mapping):
        raise InvalidMessageError("message must be a json object")
    return message


def node_values(message: Mapping[str, Any], key: str) -> dict[int, float]:
    """Read `{key: {"node_<n>": number}}` into `{n: number}`."""
    values = message.get(key)
    if not isinstance(values, Mapping):
        raise InvalidMessageError(f"message has no `{key}` object")
    return {node_id(k): finite(v, f"`{key}.{k}`", InvalidMessageError) for k, v in values.items()}


class LimitsSlot(Generic[L]):
    """Holds a controller's current limits; replacing them is one reference swap.

    `set_limits` validates first and then assigns, so a step running in another
    thread sees either the old or the new limits, never a mixture. A step reads
    the slot once at its start and uses that object throughout.
    """

    def __init__(self, limits: L) -> None:
        self._check(limits)
        self._limits = limits

    @property
    def limits(self) -> L:
        return self._limits

    def set_limits(self, limits: L) -> None:
        """Replace the limits; takes effect at the next step."""
        self._check(limits)
        self._limits = limits

    def _current(self, override: L | None) -> L:
        if override is None:
            return self._limits
        self._check(override)
        return override

    def _check(self, limits: L) -> None:
        """Controllers override this to check limits against their model."""
