"""A measurement as a `json.edgeflex` payload (VILLASnode's flat JSON format).

`json.edgeflex` is one flat object per sample, `{"<signal name>": value, ...,
"created": <integer ms since the epoch>}` (docs/domain.md §2.4). Signal names follow the
edgeFLEX field trial (`edgePMU3 ch1 amplitude`): `<prefix> <channel> <quantity>`, where
the prefix defaults to the PMU's station name:

| signal                          | value                                    |
|---------------------------------|------------------------------------------|
| `<prefix> <phasor> amplitude`   | phasor magnitude, V or A                 |
| `<prefix> <phasor> angle`       | phasor angle, radians                    |
| `<prefix> <analog>`             | analog value                             |
| `<prefix> digital <k>`          | k-th digital word (from 1), 0..65535     |
| `<prefix> frequency`            | absolute frequency, Hz                   |
| `<prefix> rocof`                | rate of change of frequency, Hz/s        |
| `created`                       | SOC + FRACSEC / TIME_BASE, in integer ms |

Channel names are used as configured (padding stripped). If two signals get the same
name the later one in this table wins. A value the PMU marked as missing (0x8000 in an
integer word, NaN in a float; `None` in the `Measurement`) is sent as JSON `null`: the
signal is there and says "no data", so a consumer neither reads a number that was never
measured nor mistakes the gap for a channel that does not exist. A missing phasor gives
`null` for both its amplitude and its angle.
"""

from __future__ import annotations

from adapters.pmu._data import Measurement

Value = float | int | None


def to_edgeflex(measurement: Measurement, *, prefix: str | None = None) -> dict[str, Value]:
    """The measurement as a `json.edgeflex` object, ready for `json.dumps`.

    `prefix` replaces the station name in front of every signal name; `""` drops it.
    """
    base = measurement.pmu.station if prefix is None else prefix
    lead = f"{base} " if base else ""
    pmu = measurement.pmu
    out: dict[str, Value] = {}
    for name, phasor in zip(pmu.phasor_names, measurement.phasors, strict=True):
        out[f"{lead}{name} amplitude"] = None if phasor is None else phasor.magnitude
        out[f"{lead}{name} angle"] = None if phasor is None else phasor.angle
    for name, value in zip(pmu.analog_names, measurement.analogs, strict=True):
        out[f"{lead}{name}"] = value
    for k, word in enumerate(measurement.digitals, start=1):
        out[f"{lead}digital {k}"] = word
    out[f"{lead}frequency"] = measurement.frequency
    out[f"{lead}rocof"] = measurement.rocof
    out["created"] = round(measurement.time * 1000)
    return out
