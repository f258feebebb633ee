"""From a peer's answer to a reading: the value, its time and the other fields.

A data point's answer is a JSON value. `select` (a dotted path) leads to the reading,
and a list there gives its last item (a query answered with a series: the latest
sample). In the reading, `value` (default `value`) must be a finite number and `time`
(default `time`) an ISO 8601 time with a zone or epoch milliseconds. The other scalar
fields of the reading (at most `MAX_EXTRA_FIELDS`, text cut at `MAX_TEXT`) are carried
along, so that a `drop-fields` or `mask-fields` obligation has something to act on.
Anything else is `BadAnswer`, refused with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.kibernet._plan import Point
from pbgm.codecs import is_number
from pbgm.errors import PbgmError
from pbgm.policy import format_datetime, parse_datetime

__all__ = ["BadAnswer", "Reading", "read_answer"]

MAX_EXTRA_FIELDS = 32
MAX_TEXT = 200
_EPOCH_MS_MAX = 32503680000000  # year 3000


class BadAnswer(Exception):
    """The answer holds no usable reading; `reason` says why (no secrets: only shapes)."""

    def __init__(self, reason: str, code: str = "peer_bad_response") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Reading:
    """A value, its origin time (seconds since the epoch) and the reading's fields
    (`value`, `time` as ISO 8601 UTC, and the other scalars)."""

    value: float
    t: float
    fields: dict[str, Any]


def _walk(data: Any, path: tuple[str, ...], what: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            raise BadAnswer(f"the answer has no `{'.'.join(path)}` ({what})")
        data = data[key]
    return data


def _time(raw: Any, path: tuple[str, ...]) -> float:
    where = ".".join(path)
    if is_number(raw) and 0 <= raw <= _EPOCH_MS_MAX:
        return float(raw) / 1000.0
    if isinstance(raw, str):
        try:
            return parse_datetime(raw).timestamp()
        except PbgmError:
            pass
    raise BadAnswer(f"`{where}` is not an ISO 8601 time with a zone nor epoch milliseconds")


def read_answer(answer: Any, point: Point) -> Reading:
    """The reading of `point` in `answer`, else `BadAnswer`."""
    reading = _walk(answer, point.select, "select")
    if isinstance(reading, list):
        if not reading:
            raise BadAnswer("the answer holds no reading (an empty series)", "no_data")
        reading = reading[-1]
    value = _walk(reading, point.value, "value")
    if not is_number(value):
        raise BadAnswer(f"`{'.'.join(point.value)}` is not a finite number")
    t = _time(_walk(reading, point.time, "time"), point.time)
    fields: dict[str, Any] = {}
    if isinstance(reading, Mapping):
        skip = {point.value[0], point.time[0]}
        for key, item in reading.items():
            if len(fields) >= MAX_EXTRA_FIELDS:
                break
            if key in skip or not isinstance(key, str):
                continue
            if isinstance(item, str):
                fields[key] = item[:MAX_TEXT]
            elif item is None or isinstance(item, bool) or is_number(item):
                fields[key] = item
    moment = datetime.fromtimestamp(t, UTC)
    return Reading(float(value), t, {**fields, "value": value, "time": format_datetime(moment)})
