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
from typing import Any

from pbgm.errors import InvalidInputError

SYNC_BYTE = 0xAA
HEADER_SIZE = 14
CRC_SIZE = 2
MIN_FRAME_SIZE = HEADER_SIZE + CRC_SIZE

HEADER = struct.Struct(">BBHHII")
"""SYNC byte, type/version byte, FRAMESIZE, IDCODE, SOC, FRACSEC."""

VERSIONS = frozenset({1, 2})
"""SYNC version numbers: 1 = IEEE C37.118-2005, 2 = IEEE C37.118.2-2011."""

RESERVED_ID_CODES = frozenset({0, 0xFFFF})
"""IDCODE 0 and 65535 are reserved; streams are numbered 1-65534."""

TIME_QUALITY_UNDEFINED = frozenset({0xC, 0xD, 0xE})
"""FRACSEC message time quality codes the standard leaves undefined (0-11 and 15 are)."""

FRACSEC_RESERVED_BIT = 0x80000000
"""FRACSEC bit 31 is reserved and must be 0."""

REASONS = (
    "bad_sync",
    "truncated",
    "size_mismatch",
    "bad_crc",
    "unknown_type",
    "bad_version",
    "bad_header",
    "bad_time",
    "unknown_id",
    "no_config",
    "bad_config",
)
"""Why a frame is dropped; each reason is also a receiver counter.

`bad_sync` first byte not 0xAA; `truncated` fewer bytes than FRAMESIZE (or than a
header); `size_mismatch` more bytes than FRAMESIZE, or a data frame whose size is not
the one its configuration implies; `bad_crc` CHK mismatch; `unknown_type` frame type
6-15 (or the reserved SYNC bit 7 set); `bad_version` a version other than 1 (2005) or
2 (2011); `bad_header` a reserved IDCODE (0, 65535), FRACSEC's reserved bit 31 set or
an undefined message time quality code (12-14); `bad_time` a FRACSEC fraction at or
above the stream's TIME_BASE (it would read as a later second); `unknown_id` a stream
outside the allow-list or beyond the stream limit; `no_config` data before the
stream's CFG-2; `bad_config` a CFG-2 that does not add up or sets a field the standard
restricts (reserved bits, unit types).
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
    """Check SYNC, FRAMESIZE against the datagram length, the CRC, the frame type, the
    version and the restricted header fields; return the header.

    Raises `FrameError` with reason `bad_sync`, `truncated`, `size_mismatch`, `bad_crc`,
    `unknown_type`, `bad_version` or `bad_header`. The FRACSEC fraction is checked
    against TIME_BASE where the stream's TIME_BASE is known (`check_fraction`).
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
    check_header_fields(type_version & 0x0F, id_code, fracsec)
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


def check_header_fields(version: int, id_code: int, fracsec: int) -> None:
    """The header fields the standard restricts: version, IDCODE, FRACSEC flags."""
    if version not in VERSIONS:
        raise FrameError(
            "bad_version", f"version `{version}` is neither 1 (C37.118-2005) nor 2 (C37.118.2-2011)"
        )
    if id_code in RESERVED_ID_CODES:
        raise FrameError("bad_header", f"idcode `{id_code}` is reserved (streams are 1-65534)")
    if fracsec & FRACSEC_RESERVED_BIT:
        raise FrameError("bad_header", "fracsec reserved bit 31 is set")
    quality = (fracsec >> 24) & 0x0F
    if quality in TIME_QUALITY_UNDEFINED:
        raise FrameError("bad_header", f"message time quality code `{quality}` is undefined")


def stream_id_problem(id_code: Any) -> str | None:
    """What is wrong with `id_code` as a stream's IDCODE (a whole number 1-65534: 0 and
    65535 are reserved); None when nothing is. A configuration or an allowlist naming
    another number would never match a frame."""
    if type(id_code) is not int or not 0 < id_code < 0xFFFF:
        return f"idcode `{id_code!r}` is not a stream id (1-65534; 0 and 65535 are reserved)"
    return None


def check_fraction(fraction: int, time_base: int) -> None:
    """FRACSEC's fraction counts TIME_BASE units within the second: it must stay below it."""
    if fraction >= time_base:
        raise FrameError(
            "bad_time",
            f"fracsec fraction `{fraction}` is not below the time base `{time_base}`",
        )


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
