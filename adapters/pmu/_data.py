"""C37.118.2 data frames: measurements, decoded with the stream's configuration.

A data frame carries, per PMU block: STAT, the phasors, FREQ, DFREQ, the analogs and the
digital words, in the integer or float formats the configuration's FORMAT word says.
Units after decoding:

- phasors: magnitude in V or A, angle in radians (polar), whatever the wire format;
  integer phasors are scaled by PHUNIT (10^-5 V or A per bit), integer angles are
  radians x 10^4;
- `frequency`: absolute, in Hz. Integer FREQ is the deviation from nominal in mHz. Float
  FREQ is read as the deviation in Hz (C37.118-2005, what `synchrophasor` sends) when it
  is below half the nominal frequency, as the absolute frequency in Hz (C37.118.2-2011)
  otherwise: no grid runs below half its nominal frequency, so the two never collide;
- `rocof`: Hz/s (integer DFREQ is ROCOF x 100);
- analogs: floats as sent; integer analogs raw (the standard leaves ANUNIT scaling
  user-defined; the unit is in the configuration);
- digitals: the 16-bit words as unsigned integers.

Missing data is `None`, never a number. The standard marks a missing value with 0x8000
in a 16-bit integer word (-32768 signed) and with NaN in a float; a phasor is missing
when either of its two words is, and a non-finite float (NaN or infinity) is never a
measurement. Digital words have no missing-data marker (every bit pattern is data).

The frame is refused (`FrameError`) when its FRACSEC fraction is not below TIME_BASE
(`bad_time`), or its version or header flags break the standard (`check_header_fields`).

The decoder is compiled once per configuration: one `struct.Struct` for the whole
payload and one small converter per PMU block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from adapters.pmu._blocks import PmuConfig
from adapters.pmu._frames import (
    HEADER,
    HEADER_SIZE,
    MIN_FRAME_SIZE,
    SYNC_BYTE,
    FrameError,
    check_crc,
    check_fraction,
    check_frame,
    check_header_fields,
    check_size,
)

if TYPE_CHECKING:
    import struct


Number = int | float

MISSING_INT = -0x8000
"""0x8000 read as a signed 16-bit word: the standard's marker of missing integer data."""

MISSING_UNSIGNED = 0x8000
"""The same marker in an unsigned word (the magnitude of an integer polar phasor)."""


class Phasor(NamedTuple):
    """A phasor in polar form: magnitude (V or A) and angle (radians)."""

    magnitude: float
    angle: float

    @property
    def real(self) -> float:
        return self.magnitude * math.cos(self.angle)

    @property
    def imag(self) -> float:
        return self.magnitude * math.sin(self.angle)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One PMU block of one data frame, in engineering units (see the module docstring).

    `stream_id` is the IDCODE of the frame header; `pmu` the block's configuration
    (station name, its own IDCODE, channel names). `time` = SOC + FRACSEC / TIME_BASE in
    seconds since the epoch; `time_quality` is the FRACSEC flag byte; `stat` the raw STAT
    word (see the properties). A phasor, `frequency`, `rocof` or analog the PMU marked as
    missing is `None`.
    """

    stream_id: int
    pmu: PmuConfig
    time: float
    soc: int
    fraction: int
    time_quality: int
    stat: int
    phasors: tuple[Phasor | None, ...]
    frequency: float | None
    rocof: float | None
    analogs: tuple[Number | None, ...]
    digitals: tuple[int, ...]

    @property
    def station(self) -> str:
        return self.pmu.station

    @property
    def frequency_deviation(self) -> float | None:
        """Frequency minus nominal, in Hz (None when the frequency is missing)."""
        if self.frequency is None:
            return None
        return self.frequency - self.pmu.nominal_frequency

    @property
    def data_error(self) -> int:
        """STAT bits 15-14: 0 good, 1 PMU error, 2 test mode, 3 PMU error (data invalid)."""
        return self.stat >> 14

    @property
    def synchronised(self) -> bool:
        """STAT bit 13 clear: the PMU clock is synchronised."""
        return not self.stat & 0x2000

    @property
    def triggered(self) -> bool:
        return bool(self.stat & 0x0800)

    @property
    def config_changed(self) -> bool:
        """STAT bit 10: the configuration will change soon; fetch a new CFG-2."""
        return bool(self.stat & 0x0400)


BlockConverter = Callable[[Sequence[Any], int], tuple[Any, ...]]


def compile_decoder(
    stream_id: int, time_base: int, pmus: Sequence[PmuConfig], size: int, layout: struct.Struct
) -> Callable[[bytes], tuple[Measurement, ...]]:
    """Build the function that reads a data frame of a stream (see `Config.decode_data`):
    its IDCODE, TIME_BASE, PMU blocks, frame size and payload layout."""
    blocks = [(pmu, _block_width(pmu), _block_converter(pmu)) for pmu in pmus]
    unpack_payload = layout.unpack_from

    def decode(frame: bytes) -> tuple[Measurement, ...]:
        soc, fracsec = _check_data_frame(frame, stream_id, size)
        fraction = fracsec & 0xFFFFFF
        check_fraction(fraction, time_base)
        values = unpack_payload(frame, HEADER_SIZE)
        time, quality = soc + fraction / time_base, fracsec >> 24
        out = []
        pos = 0
        for pmu, width, convert in blocks:
            fields = convert(values, pos)
            pos += width
            out.append(Measurement(stream_id, pmu, time, soc, fraction, quality, *fields))
        return tuple(out)

    return decode


def _check_data_frame(frame: bytes, stream_id: int, size: int) -> tuple[int, int]:
    """Check the shell of a data frame of this stream; return SOC and FRACSEC."""
    if len(frame) < MIN_FRAME_SIZE or frame[0] != SYNC_BYTE:
        check_frame(frame)  # raises with the precise reason
    _sync, type_version, frame_size, id_code, soc, fracsec = HEADER.unpack_from(frame)
    check_size(frame_size, len(frame))
    if type_version >> 4:
        raise FrameError("unknown_type", f"frame type `{type_version >> 4}` is not data")
    check_header_fields(type_version & 0x0F, id_code, fracsec)
    if id_code != stream_id:
        raise FrameError("unknown_id", f"frame of stream `{id_code}`, expected `{stream_id}`")
    if frame_size != size:
        raise FrameError(
            "size_mismatch", f"data frame of {frame_size} bytes, configuration says {size}"
        )
    check_crc(frame, frame_size)
    return soc, fracsec


def _block_width(pmu: PmuConfig) -> int:
    """Number of unpacked values in this PMU's block."""
    return 1 + 2 * len(pmu.phasor_units) + 2 + len(pmu.analog_units) + len(pmu.digital_units)


def _block_converter(pmu: PmuConfig) -> BlockConverter:
    """Turn the unpacked values of one block into Measurement fields (STAT ... DIGITAL)."""
    ph_end = 1 + 2 * len(pmu.phasor_units)
    an_end = ph_end + 2 + len(pmu.analog_units)
    dg_end = an_end + len(pmu.digital_units)
    phasors = _phasor_converter(pmu)
    freq = _freq_converter(pmu)
    rocof = _rocof_converter(pmu)
    analogs = _analog_converter(pmu)

    def convert(values: Sequence[Any], pos: int) -> tuple[Any, ...]:
        return (
            values[pos],
            phasors(values[pos + 1 : pos + ph_end]),
            freq(values[pos + ph_end]),
            rocof(values[pos + ph_end + 1]),
            analogs(values[pos + ph_end + 2 : pos + an_end]),
            values[pos + an_end : pos + dg_end],
        )

    return convert


def _phasor_converter(pmu: PmuConfig) -> Callable[[Sequence[Any]], tuple[Phasor | None, ...]]:
    factors = tuple(unit.factor for unit in pmu.phasor_units)
    if pmu.phasor_float and pmu.phasor_polar:
        return lambda raw: tuple(map(_from_float_polar, raw[0::2], raw[1::2]))
    if pmu.phasor_float:
        return lambda raw: tuple(map(_from_rectangular, raw[0::2], raw[1::2]))
    if pmu.phasor_polar:
        return lambda raw: tuple(map(_from_int_polar, raw[0::2], raw[1::2], factors))
    return lambda raw: tuple(map(_from_int_rectangular, raw[0::2], raw[1::2], factors))


def _from_float_polar(magnitude: float, angle: float) -> Phasor | None:
    if not (math.isfinite(magnitude) and math.isfinite(angle)):
        return None
    return Phasor(magnitude, angle)


def _from_rectangular(real: float, imag: float) -> Phasor | None:
    if not (math.isfinite(real) and math.isfinite(imag)):
        return None
    return Phasor(math.hypot(real, imag), math.atan2(imag, real))


def _from_int_polar(magnitude: int, angle: int, factor: float) -> Phasor | None:
    if magnitude == MISSING_UNSIGNED or angle == MISSING_INT:
        return None
    return Phasor(magnitude * factor, angle / 10_000)


def _from_int_rectangular(real: int, imag: int, factor: float) -> Phasor | None:
    if real == MISSING_INT or imag == MISSING_INT:
        return None
    return Phasor(math.hypot(real, imag) * factor, math.atan2(imag, real))


def _freq_converter(pmu: PmuConfig) -> Callable[[Number], float | None]:
    nominal = pmu.nominal_frequency
    if not pmu.freq_float:
        return lambda raw: None if raw == MISSING_INT else nominal + raw / 1000
    half = nominal / 2
    return lambda raw: None if not math.isfinite(raw) else raw if raw > half else nominal + raw


def _rocof_converter(pmu: PmuConfig) -> Callable[[Number], float | None]:
    if not pmu.freq_float:
        return lambda raw: None if raw == MISSING_INT else raw / 100
    return lambda raw: float(raw) if math.isfinite(raw) else None


def _analog_converter(pmu: PmuConfig) -> Callable[[Sequence[Any]], tuple[Number | None, ...]]:
    if pmu.analog_float:
        return lambda raw: tuple(v if math.isfinite(v) else None for v in raw)
    return lambda raw: tuple(None if v == MISSING_INT else v for v in raw)
