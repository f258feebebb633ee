"""IEEE C37.118.2 framing: the common header, the CRC and the typed parse error.

Every C37.118.2 frame starts with the same 14 bytes (SYNC, FRAMESIZE, IDCODE, SOC,
FRACSEC) and ends with a CRC-CCITT checksum; the payload in between depends on the frame
type. This module checks that shell once, so the configuration and data decoders only
deal with their payload. All numbers on the wire are big-endian.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

from pbgm.errors import InvalidInputError

SYNC_BYTE = 0xAA
HEADER_SIZE = 14
CRC_SIZE = 2
MIN_FRAME_SIZE = HEADER_SIZE + CRC_SIZE

HEADER = struct.Struct(">BBHHII")
"""SYNC byte, type/version byte, FRAMESIZE, IDCODE, SOC, FRACSEC."""

REASONS = (
    "bad_sync",
    "truncated",
    "size_mismatch",
    "bad_crc",
    "unknown_type",
    "unknown_id",
    "no_config",
    "bad_config",
)
"""Why a frame is dropped; each reason is also a receiver counter.

`bad_sync` first byte not 0xAA; `truncated` fewer bytes than FRAMESIZE (or than a
header); `size_mismatch` more bytes than FRAMESIZE, or a data frame whose size is not
the one its configuration implies; `bad_crc` CHK mismatch; `unknown_type` frame type
6-15; `unknown_id` a stream outside the allow-list or beyond the stream limit;
`no_config` data before the stream's CFG-2; `bad_config` a CFG-2 that does not add up.
"""


class FrameType(IntEnum):
    """Frame types, the high nibble of the second SYNC byte."""

    DATA = 0
    HEADER = 1
    CFG1 = 2
    CFG2 = 3
    COMMAND = 4
    CFG3 = 5


class FrameError(InvalidInputError):
    """A frame that cannot be used; `reason` says why (one of `REASONS`)."""

    code = "invalid_pmu_frame"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The common header of a checked frame.

    `fraction` is FRACSEC bits 23-0 (count of TIME_BASE units since `soc`);
    `time_quality` is FRACSEC bits 31-24 (leap-second flags and message time quality).
    """

    frame_type: int
    version: int
    size: int
    id_code: int
    soc: int
    fraction: int
    time_quality: int


def crc_ccitt(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), the C37.118.2 CHK word."""
    return binascii.crc_hqx(data, 0xFFFF)


def check_frame(frame: bytes) -> FrameHeader:
    """Check SYNC, FRAMESIZE against the datagram length and the CRC; return the header.

    Raises `FrameError` with reason `bad_sync`, `truncated`, `size_mismatch`, `bad_crc`
    or `unknown_type`.
    """
    length = len(frame)
    if length == 0:
        raise FrameError("truncated", "empty frame")
    if frame[0] != SYNC_BYTE:
        raise FrameError("bad_sync", f"frame starts with `0x{frame[0]:02x}`, not `0xaa`")
    if length < MIN_FRAME_SIZE:
        raise FrameError("truncated", f"frame of {length} bytes is shorter than a header")
    _sync, type_version, size, id_code, soc, fracsec = HEADER.unpack_from(frame)
    check_size(size, length)
    check_crc(frame, size)
    frame_type = type_version >> 4
    if frame_type not in _KNOWN_TYPES:
        raise FrameError("unknown_type", f"unknown frame type `{frame_type}`")
    return FrameHeader(
        frame_type=frame_type,
        version=type_version & 0x0F,
        size=size,
        id_code=id_code,
        soc=soc,
        fraction=fracsec & 0xFFFFFF,
        time_quality=fracsec >> 24,
    )


_KNOWN_TYPES = frozenset(int(t) for t in FrameType)


def check_size(size: int, length: int) -> None:
    """FRAMESIZE must equal the datagram length: one frame per datagram."""
    if size > length:
        raise FrameError("truncated", f"frame says {size} bytes but {length} arrived")
    if size != length or size < MIN_FRAME_SIZE:
        raise FrameError("size_mismatch", f"frame says {size} bytes but {length} arrived")


def check_crc(frame: bytes, size: int) -> None:
    """The last two bytes must be the CRC of everything before them."""
    expected = crc_ccitt(frame[: size - CRC_SIZE])
    found = (frame[size - 2] << 8) | frame[size - 1]
    if found != expected:
        raise FrameError("bad_crc", f"checksum `0x{found:04x}` does not match `0x{expected:04x}`")
