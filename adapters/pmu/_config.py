"""C37.118.2 configuration (CFG-2): what a data stream carries and how it is encoded.

A CFG-2 frame describes one data stream (the header IDCODE) made of one or more PMU
blocks, each with its own station name, IDCODE, FORMAT word and channel lists. Data
frames cannot be read without it, so a `Config` also compiles, once, the decoder of its
data frames (`Config.decode_data`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.pmu._blocks import (
    AnalogUnit,
    DigitalUnit,
    PhasorUnit,
    PmuConfig,
    require,
)
from adapters.pmu._data import Measurement, compile_decoder
from adapters.pmu._frames import (
    CRC_SIZE,
    HEADER_SIZE,
    VERSIONS,
    FrameError,
    FrameType,
    check_fraction,
    check_frame,
    stream_id_problem,
)

NAME_SIZE = 16
MAX_FRAME_SIZE = 0xFFFF


@dataclass(frozen=True, slots=True)
class Config:
    """A stream's configuration: the header IDCODE, TIME_BASE, the PMU blocks, DATA_RATE.

    `data_size` is the exact size of the stream's data frames; `decode_data` reads one.
    """

    id_code: int
    time_base: int
    pmus: tuple[PmuConfig, ...]
    data_rate: int = 0
    version: int = 1
    data_size: int = field(init=False, compare=False)
    _decode: Callable[[Any], tuple[Measurement, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """The rules of the fields a CFG-2 frame restricts, for a configuration read from
        one (`parse_config`) and for one made in code alike."""
        problem = stream_id_problem(self.id_code)
        require(problem is None, str(problem))
        require(self.version in VERSIONS, f"version `{self.version}` is neither 1 nor 2")
        require(0 < self.time_base <= 0xFFFFFF, f"time base `{self.time_base}` out of range")
        require(
            -0x7FFF <= self.data_rate <= 0x7FFF,
            f"data rate `{self.data_rate}` is outside -32767..32767",
        )
        require(len(self.pmus) > 0, "a configuration needs at least one pmu")
        layout = struct.Struct(">" + "".join(p.block_format for p in self.pmus))
        size = HEADER_SIZE + layout.size + CRC_SIZE
        require(size <= MAX_FRAME_SIZE, f"data frames of {size} bytes do not fit a frame")
        object.__setattr__(self, "data_size", size)
        object.__setattr__(
            self, "_decode", compile_decoder(self.id_code, self.time_base, self.pmus, size, layout)
        )

    def decode_data(self, frame: bytes) -> tuple[Measurement, ...]:
        """One `Measurement` per PMU block of a data frame of this stream.

        Checks SYNC, type, size and CRC; raises `FrameError` on a frame that does not fit.
        """
        return self._decode(frame)


def parse_config(frame: bytes) -> Config:
    """Read a CFG-2 frame (CFG-1 has the same layout and is read the same way).

    Raises `FrameError`: framing reasons from `check_frame`, `bad_config` for a frame of
    another type or a payload that does not add up.
    """
    header = check_frame(frame)
    if header.frame_type not in (FrameType.CFG1, FrameType.CFG2):
        raise FrameError("bad_config", f"frame type `{header.frame_type}` is not a configuration")
    reader = _Reader(frame, HEADER_SIZE, header.size - CRC_SIZE)
    (time_base,) = reader.unpack(">I")
    require(not time_base >> 24, "time base flags (bits 31-24) are reserved and must be 0")
    if time_base:  # zero is refused with the configuration below
        check_fraction(header.fraction, time_base)
    (num_pmu,) = reader.unpack(">H")
    pmus = tuple(_read_pmu(reader) for _ in range(num_pmu))
    (data_rate,) = reader.unpack(">h")  # -32768 is refused by `Config`
    if reader.pos != reader.end:
        raise FrameError(
            "bad_config", f"{reader.end - reader.pos} unexpected bytes in configuration"
        )
    return Config(header.id_code, time_base, pmus, data_rate, header.version)


def _read_pmu(reader: _Reader) -> PmuConfig:
    station = reader.name()
    id_code, fmt, phnmr, annmr, dgnmr = reader.unpack(">5H")
    names = [reader.name() for _ in range(phnmr + annmr + 16 * dgnmr)]
    phunits = [reader.unpack(">I")[0] for _ in range(phnmr)]
    anunits = [reader.unpack(">I")[0] for _ in range(annmr)]
    digunits = [reader.unpack(">HH") for _ in range(dgnmr)]
    fnom, cfg_count = reader.unpack(">HH")
    require(not fnom & 0xFFFE, f"nominal frequency word `0x{fnom:04x}`: bits 15-1 are reserved")
    for unit in phunits:
        require(unit >> 24 in (0, 1), f"phasor unit type `{unit >> 24}` is neither 0 (V) nor 1 (A)")
    return PmuConfig(
        station=station,
        id_code=id_code,
        format=fmt,
        phasor_names=tuple(names[:phnmr]),
        phasor_units=tuple(PhasorUnit(bool(u >> 24), u & 0xFFFFFF) for u in phunits),
        analog_names=tuple(names[phnmr : phnmr + annmr]),
        analog_units=tuple(AnalogUnit(u >> 24, _signed24(u & 0xFFFFFF)) for u in anunits),
        digital_names=tuple(names[phnmr + annmr :]),
        digital_units=tuple(DigitalUnit(n, v) for n, v in digunits),
        nominal_frequency=50 if fnom & 0x1 else 60,
        cfg_count=cfg_count,
    )


def _signed24(value: int) -> int:
    return value - 0x1000000 if value & 0x800000 else value


class _Reader:
    """A bounds-checked cursor over the configuration payload."""

    def __init__(self, frame: bytes, pos: int, end: int) -> None:
        self.frame, self.pos, self.end = frame, pos, end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise FrameError("bad_config", "configuration ends in the middle of a field")
        start, self.pos = self.pos, self.pos + n
        return self.frame[start : self.pos]

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def name(self) -> str:
        return self.take(NAME_SIZE).decode("ascii", errors="replace").strip(" \x00")
