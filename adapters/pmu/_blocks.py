"""C37.118.2 PMU blocks: the per-PMU part of a CFG-2 frame and its channel units.

A stream's configuration (`adapters.pmu._config.Config`) holds one `PmuConfig` per PMU
block; the data-frame decoder (`adapters.pmu._data`) reads each block by its FORMAT word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from adapters.pmu._frames import FrameError

PHUNIT_VOLT_PER_BIT = 1e-5
"""PHUNIT bits 23-0 give the integer phasor scale in 10^-5 V (or A) per bit."""


class PhasorUnit(NamedTuple):
    """PHUNIT: voltage or current, and the 24-bit scale in 10^-5 V or A per bit."""

    current: bool
    scale: int

    @property
    def factor(self) -> float:
        """Engineering units per bit of an integer phasor."""
        return self.scale * PHUNIT_VOLT_PER_BIT


class AnalogUnit(NamedTuple):
    """ANUNIT: kind (0 point-on-wave, 1 rms, 2 peak, 65-255 user) and the signed 24-bit scale.

    Kinds 3-64 are reserved by the standard and refused.
    """

    kind: int
    scale: int


ANALOG_KINDS = frozenset({0, 1, 2, *range(65, 256)})
"""ANUNIT kinds the standard defines (0-2) or leaves to the user (65-255)."""


class DigitalUnit(NamedTuple):
    """DIGUNIT: the normal-state mask and the valid-inputs mask of one digital word."""

    normal: int
    valid: int


@dataclass(frozen=True, slots=True)
class PmuConfig:
    """One PMU block of a CFG-2 frame (names stripped of their space/NUL padding)."""

    station: str
    id_code: int
    format: int
    phasor_names: tuple[str, ...]
    phasor_units: tuple[PhasorUnit, ...]
    analog_names: tuple[str, ...] = ()
    analog_units: tuple[AnalogUnit, ...] = ()
    digital_names: tuple[str, ...] = ()
    digital_units: tuple[DigitalUnit, ...] = ()
    nominal_frequency: int = 50
    cfg_count: int = 0

    def __post_init__(self) -> None:
        require(0 <= self.id_code <= 0xFFFF, f"pmu idcode `{self.id_code}` is not a 16-bit word")
        require(0 <= self.cfg_count <= 0xFFFF, f"cfg count `{self.cfg_count}` is not a 16-bit word")
        require(0 <= self.format <= 0xF, f"format word `0x{self.format:04x}`: bits 15-4 are unused")
        for unit in self.phasor_units:
            require(0 <= unit.scale <= 0xFFFFFF, f"phasor scale `{unit.scale}` out of range")
        for analog in self.analog_units:
            require(analog.kind in ANALOG_KINDS, f"analog unit type `{analog.kind}` is reserved")
            require(
                -0x800000 <= analog.scale <= 0x7FFFFF,
                f"analog scale `{analog.scale}` is not a signed 24-bit number",
            )
        for digital in self.digital_units:
            require(
                all(0 <= word <= 0xFFFF for word in digital),
                f"digital unit `{digital}`: its two masks are 16-bit words",
            )
        require(self.nominal_frequency in (50, 60), "nominal frequency must be 50 or 60 Hz")
        require(len(self.phasor_names) == len(self.phasor_units), "phasor names and units differ")
        require(len(self.analog_names) == len(self.analog_units), "analog names and units differ")
        require(
            len(self.digital_names) == 16 * len(self.digital_units),
            "a digital word needs 16 channel names",
        )

    @property
    def phasor_polar(self) -> bool:
        return bool(self.format & 0x1)

    @property
    def phasor_float(self) -> bool:
        return bool(self.format & 0x2)

    @property
    def analog_float(self) -> bool:
        return bool(self.format & 0x4)

    @property
    def freq_float(self) -> bool:
        return bool(self.format & 0x8)

    @property
    def block_format(self) -> str:
        """The `struct` layout of this PMU's block in a data frame (no byte-order prefix)."""
        phasor = ("ff" if self.phasor_float else "Hh" if self.phasor_polar else "hh") * len(
            self.phasor_units
        )
        freq = "ff" if self.freq_float else "hh"
        analog = ("f" if self.analog_float else "h") * len(self.analog_units)
        return "H" + phasor + freq + analog + "H" * len(self.digital_units)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise FrameError("bad_config", message)
