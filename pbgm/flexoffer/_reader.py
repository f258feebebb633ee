"""Lenient field reading that collects every problem instead of stopping at the first.

FlexOffers arrive in several spellings (spec camelCase, GOFLEX Java, an older
spec revision, snake_case). A field is read under each of its names; when two
spellings are present and disagree, that is a `conflicting_fields` problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.flexoffer._model import EPOCH
from pbgm.flexoffer._numbers import MAX_MAGNITUDE, out_of_range_message
from pbgm.policy import parse_datetime

Convert = Callable[[Any, str], Any]

#: Integers beyond this (2**53) are refused: no interval count or duration is that large.
MAX_INTEGER = 2**53


class _Bad:
    """Marks a value that could not be converted (its problem is already recorded)."""


BAD = _Bad()


class Reader:
    """Reads fields of JSON objects, recording each problem with its JSON path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, code: str, message: str) -> _Bad:
        self.problems.append(Problem(path, code, message))
        return BAD

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)

    def failed(self, path: str, names: Sequence[str] = ("",)) -> bool:
        """Whether a problem was recorded at, or inside, `path.name` for any of `names`."""
        prefixes = [f"{path}.{n}" if n else path for n in names]
        return any(
            p.path == prefix or p.path.startswith((f"{prefix}.", f"{prefix}["))
            for p in self.problems
            for prefix in prefixes
        )

    # --- fields -------------------------------------------------------------

    def field(
        self,
        data: Mapping[str, Any],
        names: Sequence[str],
        path: str,
        convert: Convert,
        *,
        required: bool = False,
    ) -> Any:
        """The value under the first present name, converted; None if absent or bad."""
        found = [(n, convert(data[n], f"{path}.{n}")) for n in names if data.get(n) is not None]
        good = [(n, v) for n, v in found if v is not BAD]
        if not found and required:
            self.fail(f"{path}.{names[0]}", "missing_field", f"`{names[0]}` is required")
        if not good:
            return None
        first_name, first = good[0]
        for name, value in good[1:]:
            if value != first:
                self.fail(
                    f"{path}.{name}",
                    "conflicting_fields",
                    f"`{name}` disagrees with `{first_name}`",
                )
        return first

    def moment(
        self,
        data: Mapping[str, Any],
        time_names: Sequence[str],
        interval_names: Sequence[str],
        path: str,
        seconds_per_interval: int,
        *,
        required: bool = False,
    ) -> datetime | None:
        """A time given as a date-time or as an interval number since the epoch."""
        moment: datetime | None = self.field(data, time_names, path, self.datetime)
        number: int | None = self.field(data, interval_names, path, self.integer)
        if moment is not None and number is not None:
            if _interval_number(moment, seconds_per_interval) != number:
                self.fail(
                    f"{path}.{interval_names[0]}",
                    "conflicting_fields",
                    f"`{interval_names[0]}` disagrees with `{time_names[0]}`",
                )
            return moment
        if moment is None and number is not None:
            return self._from_interval(number, seconds_per_interval, f"{path}.{interval_names[0]}")
        if moment is None and required and not self._present(data, time_names, interval_names):
            self.fail(f"{path}.{time_names[0]}", "missing_field", f"`{time_names[0]}` is required")
        return moment

    def _from_interval(self, number: int, seconds_per_interval: int, path: str) -> datetime | None:
        try:
            return EPOCH + timedelta(seconds=number * seconds_per_interval)
        except OverflowError:
            self.fail(path, "number_out_of_range", f"interval `{number}` is out of range")
            return None

    @staticmethod
    def _present(data: Mapping[str, Any], *name_lists: Sequence[str]) -> bool:
        return any(data.get(n) is not None for names in name_lists for n in names)

    # --- converters: (raw value, path) -> value or BAD ----------------------

    def text(self, raw: Any, path: str) -> Any:
        if isinstance(raw, str):
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)
        return self.fail(path, "invalid_type", "expected a string")

    def identifier(self, raw: Any, path: str) -> Any:
        if isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool)):
            return raw
        return self.fail(path, "invalid_type", "expected a string or an integer")

    def number(self, raw: Any, path: str) -> Any:
        """A finite number; numeric strings such as `"-13342.61"` are accepted.

        Numbers of any size are read exactly first (JSON allows integers of thousands of
        digits): one that no float can hold, or beyond `MAX_MAGNITUDE`, is
        `number_out_of_range`, never an overflow.
        """
        if isinstance(raw, bool):
            return self.fail(path, "invalid_type", "expected a number")
        if isinstance(raw, list):
            return self.fail(path, "unsupported_shape", "per-interval arrays are not supported")
        if isinstance(raw, str):
            exact = _decimal(raw)
            if exact is None or exact.is_nan():
                return self.fail(path, "invalid_number", f"`{_short(raw)}` is not a number")
        elif isinstance(raw, int | float):
            exact = Decimal(raw) if isinstance(raw, int) or math.isfinite(raw) else None
        else:
            return self.fail(path, "invalid_type", "expected a number")
        if exact is None or not exact.is_finite():
            return self.fail(path, "invalid_number", "expected a finite number")
        if abs(exact) > MAX_MAGNITUDE:
            return self.fail(path, "number_out_of_range", out_of_range_message(_short(str(raw))))
        return float(exact)

    def integer(self, raw: Any, path: str) -> Any:
        if isinstance(raw, bool):
            return self.fail(path, "invalid_type", "expected an integer")
        if isinstance(raw, str):
            exact = _decimal(raw)
            if exact is None or not exact.is_finite() or exact != exact.to_integral_value():
                return self.fail(path, "invalid_type", f"`{_short(raw)}` is not an integer")
            if abs(exact) > MAX_INTEGER:
                return self.fail(path, "number_out_of_range", f"`{_short(raw)}` is out of range")
            raw = int(exact)
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if not isinstance(raw, int):
            return self.fail(path, "invalid_type", "expected an integer")
        if abs(raw) > MAX_INTEGER:
            return self.fail(path, "number_out_of_range", f"`{_short(str(raw))}` is out of range")
        return raw

    def positive_integer(self, raw: Any, path: str) -> Any:
        value = self.integer(raw, path)
        if value is not BAD and value <= 0:
            return self.fail(path, "invalid_value", "must be a positive integer")
        return value

    def datetime(self, raw: Any, path: str) -> Any:
        try:
            return parse_datetime(raw, path).astimezone(UTC)
        except ValidationError as error:
            self.problems.extend(error.problems)
            return BAD

    def mapping(self, raw: Any, path: str) -> Any:
        if isinstance(raw, Mapping):
            return raw
        return self.fail(path, "invalid_type", "expected an object")

    def array(self, raw: Any, path: str) -> Any:
        if isinstance(raw, list | tuple):
            return raw
        return self.fail(path, "invalid_type", "expected an array")

    def location(self, raw: Any, path: str) -> Any:
        if isinstance(raw, str | Mapping):
            return raw
        return self.fail(path, "invalid_type", "expected a string or an object")


_NUMBER = re.compile(
    r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*|\s*[+-]?(nan|inf|infinity)\s*", re.IGNORECASE
)


def _decimal(text: str) -> Decimal | None:
    """The exact value of a numeric string (any length), or None when it is not one."""
    if len(text) > 10_000 or not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:  # an exponent beyond Decimal's: the float reading tells the size
        return (
            Decimal(math.copysign(2 * MAX_MAGNITUDE, float(text)))
            if math.isinf(float(text))
            else Decimal(0)
        )


def _short(text: str) -> str:
    """User input for a message, cut so a 4,000-digit number does not fill the log."""
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]}"


def _interval_number(moment: datetime, seconds_per_interval: int) -> int:
    """Java's `toFlexOfferTime`: whole intervals since the epoch, truncated."""
    return (moment - EPOCH) // timedelta(seconds=seconds_per_interval)
