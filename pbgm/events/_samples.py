"""Samples of a measurement topic, the recent history per topic, and derived values.

A sample is one decoded payload with its time (seconds since the epoch) and the
two signals the grid services care about: frequency (Hz) and active power (MW).
Where they are found:

- the payload field named by the subscription (`frequency_field`, `power_field`);
- else, for flat payloads (`json.edgeflex`, `json`), a field named `frequency` or
  ending in ` frequency` (VILLASnode signal names such as `edgePMU3 frequency`),
  and `active_power` / `p_mw` or a name ending in ` active_power`;
- for SOGNO v4 (`readings`), the mean of the `frequency` readings and the sum of
  the `activepower` readings (W, converted to MW).

The time is `created` (integer ms, `json.edgeflex`), else `time` or `timestamp`
(ISO 8601), else the moment of arrival. Derived values are computed in pure
Python from the history: RoCoF is the least-squares slope of frequency over a
window ending at the newest sample; ΔP is the mean power of the newest tenth of a
window minus that of its oldest tenth (a step shows fully unless it falls in one of
those tenths; the means damp measurement noise). Each window asked for is kept up to
date as samples arrive (`pbgm.events._windows`), so neither costs a pass over it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._windows import RunningWindow

MAX_FLATTEN_DEPTH = 3
MAX_WINDOWS = 32
_SCALARS = frozenset({str, int, bool, type(None)})


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: time (s since the epoch), payload fields, extracted signals."""

    t: float
    fields: Mapping[str, Any]
    frequency: float | None = None
    power: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, **self.fields}


class SignalNames:
    """Where a subscription's payloads keep frequency and power (module docstring)."""

    def __init__(self, frequency_field: str | None = None, power_field: str | None = None):
        self.frequency_field = frequency_field
        self.power_field = power_field

    def extract(self, payload: Mapping[str, Any]) -> tuple[float | None, float | None]:
        readings = payload.get("readings")
        if isinstance(readings, list) and self.frequency_field is None:
            return _sogno_signals(readings)
        frequency = _number(payload.get(self.frequency_field or "frequency"))
        power = _number(payload.get(self.power_field or "active_power"))
        if frequency is None and self.frequency_field is None:
            frequency = _suffixed(payload, " frequency")
        if power is None and self.power_field is None:
            power = _number(payload.get("p_mw"))
            power = _suffixed(payload, " active_power") if power is None else power
        return frequency, power


def _number(value: Any) -> float | None:
    if value.__class__ is float:  # the common case first
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _suffixed(payload: Mapping[str, Any], suffix: str) -> float | None:
    for key, value in payload.items():
        if isinstance(key, str) and key.endswith(suffix):
            return _number(value)
    return None


def _sogno_signals(readings: list[Any]) -> tuple[float | None, float | None]:
    frequencies, powers = [], []
    for reading in readings:
        if not isinstance(reading, Mapping):
            continue
        value = _number(reading.get("data"))
        if value is not None and reading.get("measurand") == "frequency":
            frequencies.append(value)
        elif value is not None and reading.get("measurand") == "activepower":
            powers.append(value / 1e6)
    frequency = sum(frequencies) / len(frequencies) if frequencies else None
    return frequency, (sum(powers) if powers else None)


def sample_time(payload: Mapping[str, Any], arrival: float) -> float:
    """The sample's own time if the payload carries one, else `arrival`."""
    created = _number(payload.get("created"))
    if created is not None:
        return created / 1000.0
    for key in ("time", "timestamp"):
        text = payload.get(key)
        if isinstance(text, str):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                return moment.timestamp()
    return arrival


def flatten(payload: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Scalars and lists of scalars of a payload; nested objects as `outer.inner`.

    Lists holding objects (SOGNO `readings`) are left out: conditions work on
    scalars and bags of scalars.
    """
    out: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if value.__class__ is float or value.__class__ in _SCALARS:
            out[name] = value
        elif isinstance(value, Mapping):
            if depth < MAX_FLATTEN_DEPTH:
                out.update(flatten(value, f"{name}.", depth + 1))
        elif isinstance(value, list):
            if all(not isinstance(v, Mapping | list) for v in value):
                out[name] = tuple(value)
        else:
            out[name] = value
    return out


class TopicHistory:
    """The recent samples of one topic, oldest first, bounded in age and count.

    Samples older than the newest one are refused (`add` returns False): the
    windows assume time order.
    """

    def __init__(self, max_age_s: float, max_samples: int) -> None:
        self.max_age_s = max_age_s
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self._windows: dict[tuple[str, float], RunningWindow] = {}

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def newest(self) -> Sample | None:
        return self._samples[-1] if self._samples else None

    def add(self, sample: Sample) -> bool:
        samples = self._samples
        if samples and sample.t <= samples[-1].t:
            return False
        samples.append(sample)
        horizon = sample.t - self.max_age_s
        while samples[0].t < horizon:
            samples.popleft()
        oldest_t = samples[0].t
        for (signal, _), window in self._windows.items():
            value = sample.frequency if signal == "frequency" else sample.power
            if value is None:
                window.advance(sample.t, oldest_t)
            else:
                window.add(sample.t, value, oldest_t)
        return True

    def since(self, t_start: float) -> list[Sample]:
        """The samples at or after `t_start`, oldest first."""
        return list(reversed(list(self._newest_first(t_start))))

    def _newest_first(self, t_start: float) -> Iterator[Sample]:
        for sample in reversed(self._samples):
            if sample.t < t_start:
                return
            yield sample

    def rocof(self, window_s: float, min_samples: int = 3) -> float | None:
        """Least-squares slope of frequency (Hz/s) over the last `window_s`."""
        window = self._window("frequency", window_s)
        return window.slope() if len(window) >= max(min_samples, 3) else None

    def delta_p(self, window_s: float, min_samples: int = 2) -> float | None:
        """Power step (MW) over the last `window_s`: newest tenth minus oldest tenth, means."""
        window = self._window("power", window_s)
        return window.step() if len(window) >= max(min_samples, 2) else None

    def _window(self, signal: str, window_s: float) -> RunningWindow:
        """The running window of `signal` over `window_s`, filled from the history the
        first time it is asked for and kept up to date by `add` from then on."""
        window = self._windows.get((signal, window_s))
        if window is None:
            if len(self._windows) >= MAX_WINDOWS:  # windows of replaced trigger policies
                self._windows.clear()
            window = self._windows[(signal, window_s)] = RunningWindow(window_s)
            newest = self.newest
            start = newest.t - window_s - 1e-9 if newest is not None else 0.0
            for sample in self.since(start):
                value = sample.frequency if signal == "frequency" else sample.power
                if value is not None:
                    window.add(sample.t, value)
        return window


def slope(points: Iterable[tuple[float, float]]) -> float | None:
    """Ordinary least-squares slope of y on x; None without points or when x does not vary.

    One pass over the points; x should be small (e.g. seconds before the newest sample)
    so the sums keep their precision.
    """
    n = sx = sy = sxx = sxy = 0.0
    for x, y in points:
        n += 1
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
    denominator = n * sxx - sx * sx
    if n < 2 or denominator <= 1e-12 * max(n * sxx, 1e-300):
        return None
    return (n * sxy - sx * sy) / denominator
