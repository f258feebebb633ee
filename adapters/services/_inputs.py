"""The one place where a control service decides whether an input sample counts.

A control service acts on what it reads: a year-old sample must not drive full
absorption, an older sample must not overwrite a newer one, a replayed one must not
switch power back on after the fallback, and a value no instrument can measure (10 pu,
`1e308`) must never reach an optimiser. Every sample a service takes passes
`SampleGate.admit` first:

1. **time**: the sample's origin time (`created` in ms, else `time` or `timestamp` in
   ISO 8601 with a zone; `origin_time`) must not be older than `max_age_s` nor more than
   `max_skew_s` ahead of this machine's clock, and must be later than the last sample
   taken for the same input (`out_of_order`: an older or a replayed sample). A sample
   without a time is taken at its arrival when the source's format does not promise
   one, and refused (`no_timestamp`) when it does (`json.edgeflex`);
2. **values**: the service's check for that input (plausible ranges from its
   operational-limits policies, known nodes or units), which raises `Refusal`.

A refused sample is counted under its reason (`too_old`, `from_future`,
`out_of_order`, `no_timestamp`, `implausible`, `unknown_nodes`, ...) and logged at
most every ten seconds per reason; it changes nothing the service holds. A sample
that passes is recorded with its time, so its age can be judged at each step
(`fresh`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from adapters._rules import seconds

log = logging.getLogger("adapters.services")

T = TypeVar("T")
REASONS = ("too_old", "from_future", "out_of_order", "no_timestamp", "implausible")
WARN_EVERY_S = 10.0
TIMED_FORMATS = frozenset({"json.edgeflex"})  # formats whose every sample carries `created`


class Refusal(Exception):
    """A sample that does not count; `reason` names the counter it goes to."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


MAX_AGE_S = 10.0
MAX_SKEW_S = 5.0


@dataclass(frozen=True, slots=True)
class Timing:
    """How old or how far ahead a sample may be, in seconds."""

    max_age_s: float = MAX_AGE_S
    max_skew_s: float = MAX_SKEW_S

    def __post_init__(self) -> None:
        """Checked by the file's rule however the timing was made (`from_config` or in
        code): a bound of 0 or below would refuse every sample, a NaN none."""
        object.__setattr__(self, "max_age_s", seconds(self.max_age_s, "max_age_s"))
        object.__setattr__(self, "max_skew_s", seconds(self.max_skew_s, "max_skew_s"))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Timing:
        age = seconds(config.get("max_input_age_s", MAX_AGE_S), "max_input_age_s")
        skew = seconds(config.get("max_clock_skew_s", MAX_SKEW_S), "max_clock_skew_s")
        return cls(age, skew)


@dataclass(frozen=True, slots=True)
class Taken(Generic[T]):
    """A sample that counts: its values and its origin time (s since the epoch)."""

    values: T
    t: float


def origin_time(payload: Mapping[str, Any]) -> float | None:
    """The sample's own time in seconds since the epoch, or None when it names none;
    a time it names but in no usable form is `Refusal("malformed")`."""
    if "created" in payload:
        created = payload["created"]
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise Refusal("malformed", "`created` must be milliseconds since the epoch")
        return created / 1000.0
    for key in ("time", "timestamp"):
        if key in payload:
            try:
                moment = datetime.fromisoformat(payload[key])
            except (TypeError, ValueError):
                moment = None
            if moment is None or moment.tzinfo is None:
                raise Refusal("malformed", f"`{key}` must be an ISO 8601 time with a zone")
            return moment.timestamp()
    return None


class SampleGate:
    """Admits samples per input key (see the module docstring); thread-safe."""

    def __init__(
        self,
        timing: Timing,
        bump: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timing = timing
        self._bump = bump
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._quiet_until: dict[str, float] = {}

    def admit(
        self,
        key: str,
        payload: Mapping[str, Any],
        check: Callable[[], T],
        *,
        timed: bool = False,
        where: str = "",
    ) -> Taken[T] | None:
        """`check()`'s values with the sample's time, or None (counted, logged) when the
        sample's time or `check` refuses it. `timed`: the format promises a time."""
        try:
            with self._lock:
                t = self._time(key, payload, timed)
                values = check()
                self._last[key] = t
        except Refusal as refusal:
            self._refused(refusal, where or key)
            return None
        return Taken(values, t)

    def age(self, t: float) -> float:
        """Seconds since a sample's origin time."""
        return self._clock() - t

    def forget(self) -> None:
        """Forget the last times (a new data source starts its own sequence)."""
        with self._lock:
            self._last.clear()

    def _time(self, key: str, payload: Mapping[str, Any], timed: bool) -> float:
        now = self._clock()
        t = origin_time(payload)
        if t is None:
            if timed:
                raise Refusal("no_timestamp", "the sample has no `created` time")
            t = now
        if now - t > self.timing.max_age_s:
            raise Refusal("too_old", f"the sample is {now - t:.3g} s old")
        if t - now > self.timing.max_skew_s:
            raise Refusal("from_future", f"the sample is {t - now:.3g} s ahead of this clock")
        last = self._last.get(key)
        if last is not None and t <= last:
            raise Refusal("out_of_order", "the sample is not newer than the last one taken")
        return t

    def _refused(self, refusal: Refusal, where: str) -> None:
        self._bump(refusal.reason)
        now = time.monotonic()
        if now < self._quiet_until.get(refusal.reason, 0.0):
            log.debug("sample on `%s` refused: %s", where, refusal.message)
            return
        self._quiet_until[refusal.reason] = now + WARN_EVERY_S
        log.warning(
            "sample on `%s` refused (%s): %s; more within %g s are counted, not logged",
            where, refusal.reason, refusal.message, WARN_EVERY_S,
        )  # fmt: skip


def plausible(value: Any, low: float, high: float, what: str) -> float:
    """`value` as a float within [low, high], else `Refusal("implausible")`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refusal("malformed", f"{what} `{value!r:.40}` is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not low <= number <= high:
        raise Refusal("implausible", f"{what} `{number:.6g}` is outside `{low:g}`-`{high:g}`")
    return number
