"""C37.118.2 frames from an independent implementation: the `synchrophasor` package (pypmu).

pypmu 1.0.0a0 parses frames with `collections.Sequence`, which Python 3.10 removed; the
shim below restores the alias before the import (docs/domain.md §5.3). It lives here, in
the tests, never in `adapters`. pypmu's classes are TCP-only, so tests build frames with
`synchrophasor.frame` and send them with a plain UDP socket.
"""

from __future__ import annotations

import collections
import collections.abc
import socket
import time

if not hasattr(collections, "Sequence"):  # Python >= 3.10 shim for pypmu
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]

from synchrophasor.frame import (  # after the shim
    CommandFrame,
    CommonFrame,
    ConfigFrame2,
    DataFrame,
    HeaderFrame,
)
from synchrophasor.utils import crc16xmodem

__all__ = [
    "CommandFrame",
    "CommonFrame",
    "ConfigFrame2",
    "DataFrame",
    "HeaderFrame",
    "channel_names",
    "fix_crc",
    "make_config",
    "recv_until",
]

SOC = 1_700_000_000
OK_STAT = ("ok", True, "timestamp", False, False, False, 0, "<10", 0)


def channel_names(phasors: int, analogs: int, digitals: int, tag: str = "") -> list[str]:
    """CHNAM entries: phasors, analogs, then 16 bit names per digital word."""
    return (
        [f"{tag}PH{i + 1}" for i in range(phasors)]
        + [f"{tag}AN{i + 1}" for i in range(analogs)]
        + [f"{tag}D{w + 1}B{b}" for w in range(digitals) for b in range(16)]
    )


def make_config(
    *,
    id_code: int = 7734,
    station: str = "Station A",
    fmt: tuple[bool, bool, bool, bool] = (True, True, True, False),
    phasors: int = 3,
    analogs: int = 1,
    digitals: int = 1,
    ph_units: list[tuple[int, str]] | None = None,
    an_units: list[tuple[int, str]] | None = None,
    fnom: int = 50,
    time_base: int = 1_000_000,
    data_rate: int = 50,
    cfg_count: int = 1,
) -> ConfigFrame2:
    """A single-PMU CFG-2; `fmt` = (polar, float phasors, float analogs, float FREQ)."""
    return ConfigFrame2(
        id_code,
        time_base,
        1,
        station,
        id_code,
        fmt,
        phasors,
        analogs,
        digitals,
        channel_names(phasors, analogs, digitals),
        ph_units if ph_units is not None else [(1000, "v")] * phasors,
        an_units if an_units is not None else [(1, "pow")] * analogs,
        [(0x0000, 0xFFFF)] * digitals,
        fnom,
        cfg_count,
        data_rate,
        soc=SOC,
        frasec=(0,),
    )


def fix_crc(frame: bytes | bytearray) -> bytes:
    """Set FRAMESIZE to the length and recompute CHK (with pypmu's CRC, not ours)."""
    out = bytearray(frame)
    out[2:4] = len(out).to_bytes(2, "big")
    out[-2:] = crc16xmodem(bytes(out[:-2]), 0xFFFF).to_bytes(2, "big")
    return bytes(out)


def recv_until(poll, count: int, timeout: float = 5.0) -> list:
    """Call `poll(timeout)` until `count` items came back or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    got: list = []
    while len(got) < count and time.monotonic() < deadline:
        got.extend(poll(0.1))
    return got


def udp_sender() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
