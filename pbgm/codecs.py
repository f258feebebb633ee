"""Payload codecs for the data bus: bytes <-> a JSON object, checked against a format.

Built in (registry `CODECS`, extended with `register_codec`):

- `json`: any JSON object (the edgeFLEX voltage-control topics carry nested objects
  such as `{"voltage_measurements": {"node_1": 1.01}}`).
- `json.edgeflex`: VILLASnode's format, one flat object per sample (scalar values
  only) with `created`, the origin time in integer milliseconds since the epoch.
- `time_value`: the field-trial shape `{"time": "<ISO 8601>", "value": <number>}`
  (other scalar keys such as a unit are kept).
- `sogno_v4`: SOGNO measurement format v4, the device form
  `{"device", "timestamp", "readings": [{"component", "measurand", "phase", "data"}]}`
  or the per-component output form (`component` at the top, not in the readings).

Decoding never trusts the payload: at most `MAX_PAYLOAD_BYTES`, strict UTF-8, no
NaN/Infinity (nor a number too large for a float, such as `1e999`, which Python's
`json` would read as infinity), no duplicate keys (`{"a": 1, "a": 2}`: which value
counts would depend on the reader; the REST API refuses them too), no lone
surrogates, bounded nesting. Anything wrong raises `InvalidInputError` with code
`malformed_payload` (the bus counts those as `malformed`). Encoding checks the same
format, refuses non-finite numbers and raises code `unencodable_payload`: nothing
non-finite leaves pbgm. Only the standard library is used: this is the pbgm core.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from pbgm.bus import BusMessage, Handler
from pbgm.errors import ConfigurationError, InvalidInputError, PbgmError
from pbgm.policy import compact_json, json_strings, parse_datetime

__all__ = [
    "CODECS",
    "MAX_PAYLOAD_BYTES",
    "SOGNO_MEASURANDS",
    "Codec",
    "decoding",
    "get_codec",
    "register_codec",
]

MAX_PAYLOAD_BYTES = 1 << 20
SOGNO_MEASURANDS = frozenset(
    {
        "voltmagnitude",
        "voltangle",
        "currmagnitude",
        "currangle",
        "activepower",
        "reactivepower",
        "apparentpower",
        "frequency",
    }
)
SOGNO_PHASES = frozenset({"A", "B", "C"})
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@runtime_checkable
class Codec(Protocol):
    """Turns a payload into a JSON object and back, enforcing one format."""

    def decode(self, payload: bytes) -> dict[str, Any]: ...

    def encode(self, data: Mapping[str, Any]) -> bytes: ...


def malformed(message: str) -> InvalidInputError:
    return InvalidInputError(message, code="malformed_payload")


def _unencodable(message: str) -> InvalidInputError:
    return InvalidInputError(message, code="unencodable_payload")


# --- JSON with hostile input in mind ----------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise malformed(f"`{name}` is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # the rare case: find the key named twice
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise malformed(f"duplicate key `{key}`")
            seen.add(key)
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan; a finite number gives 0.0
        raise malformed(f"number `{text[:40]}` is too large for a float")
    return value


_FLOAT_DIGITS = 309  # an integer of more digits than this cannot be a finite float


def _bounded_int(text: str) -> int:
    value = int(text)
    if len(text) >= _FLOAT_DIGITS and not math.isfinite(_to_float(value)):
        raise malformed(f"number `{text[:40]}...` is too large for a float")
    return value


def _to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


_DECODER = json.JSONDecoder(  # made once, not per payload
    parse_constant=_reject_constant,
    object_pairs_hook=_unique_keys,
    parse_float=_finite_float,
    parse_int=_bounded_int,
)


def load_object(payload: bytes) -> dict[str, Any]:
    """A JSON object from bytes, or `malformed_payload`."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise malformed("a payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise malformed(f"a payload is at most {MAX_PAYLOAD_BYTES} bytes")
    try:
        text = bytes(payload).decode("utf-8")
        data = _DECODER.decode(text)
    except InvalidInputError:
        raise
    except UnicodeDecodeError:
        raise malformed("a payload must be UTF-8") from None
    except (ValueError, RecursionError):
        raise malformed("a payload must be one JSON document") from None
    if not isinstance(data, dict):
        raise malformed("a payload must be a JSON object")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise malformed("a payload must not contain lone surrogates")
    return data


def _has_lone_surrogate(value: Any) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for s in json_strings(value) for c in s)


def dump_object(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; `unencodable_payload` for what JSON cannot carry, NaN and
    infinities included."""
    try:
        return compact_json(dict(data)).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise _unencodable(f"cannot encode the payload as JSON: {exc}") from None


_EXACT_SCALARS = frozenset({str, int, bool, type(None)})  # what JSON decodes to, float aside


def is_number(value: Any) -> bool:
    """An int or a finite float, not a bool."""
    if value.__class__ is float:  # the common case first
        return math.isfinite(value)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_scalar(value: Any) -> bool:
    if value.__class__ in _EXACT_SCALARS:
        return True
    return isinstance(value, str | bool) or is_number(value)


def _check_time(value: Any, key: str) -> None:
    if not isinstance(value, str):
        raise malformed(f"`{key}` must be an ISO 8601 date-time string")
    try:
        parse_datetime(value)
    except PbgmError:
        raise malformed(f"`{key}` must be an ISO 8601 date-time with a timezone") from None


# --- the formats -------------------------------------------------------------------------


class JsonObjectCodec:
    """Any JSON object."""

    name = "json"

    def decode(self, payload: bytes) -> dict[str, Any]:
        return load_object(payload)

    def encode(self, data: Mapping[str, Any]) -> bytes:
        return dump_object(data)


class _FormatCodec:
    """A JSON object checked against one format by `_checked` in both directions.

    A breach is `malformed_payload` when decoding and `unencodable_payload` when
    encoding, with the same message.
    """

    def decode(self, payload: bytes) -> dict[str, Any]:
        data = load_object(payload)
        try:
            return self._checked(data)
        except InvalidInputError as exc:
            raise malformed(exc.message) from None

    def encode(self, data: Mapping[str, Any]) -> bytes:
        try:
            return dump_object(self._checked(dict(data)))
        except InvalidInputError as exc:
            raise _unencodable(exc.message) from None

    def _checked(self, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class EdgeflexCodec(_FormatCodec):
    """VILLASnode `json.edgeflex`: flat scalars plus `created` in integer milliseconds."""

    name = "json.edgeflex"

    def _checked(self, data: dict[str, Any]) -> dict[str, Any]:
        created = data.get("created")
        if not is_number(created):
            raise malformed("`created` must be the origin time in milliseconds since the epoch")
        for key, value in data.items():
            if not isinstance(key, str) or not _is_scalar(value):
                raise malformed(f"signal `{key}` must have a scalar value (the format is flat)")
        data["created"] = int(data["created"])
        return data


class TimeValueCodec(_FormatCodec):
    """The field-trial shape `{"time": "<ISO 8601>", "value": <number>}`."""

    name = "time_value"

    def _checked(self, data: dict[str, Any]) -> dict[str, Any]:
        _check_time(data.get("time"), "time")
        if not is_number(data.get("value")):
            raise malformed("`value` must be a number")
        for key, value in data.items():
            if not _is_scalar(value):
                raise malformed(f"`{key}` must be a scalar")
        return data


class SognoV4Codec(_FormatCodec):
    """SOGNO measurement format v4 (device form or per-component output form)."""

    name = "sogno_v4"

    def _checked(self, data: dict[str, Any]) -> dict[str, Any]:
        by_device = "device" in data
        if by_device == ("component" in data):
            raise malformed("a SOGNO v4 message names either a `device` or a `component`")
        top = "device" if by_device else "component"
        if not isinstance(data[top], str) or not data[top]:
            raise malformed(f"`{top}` must be a non-empty string")
        _check_time(data.get("timestamp"), "timestamp")
        readings = data.get("readings")
        if not isinstance(readings, list):
            raise malformed("`readings` must be a list")
        for index, reading in enumerate(readings):
            self._check_reading(reading, index, needs_component=by_device)
        return data

    @staticmethod
    def _check_reading(reading: Any, index: int, *, needs_component: bool) -> None:
        where = f"`readings[{index}]`"
        if not isinstance(reading, dict):
            raise malformed(f"{where} must be an object")
        if needs_component and not (isinstance(reading.get("component"), str)):
            raise malformed(f"{where} needs a `component`")
        if reading.get("measurand") not in SOGNO_MEASURANDS:
            raise malformed(f"{where} has an unknown measurand `{reading.get('measurand')}`")
        if reading.get("phase") not in SOGNO_PHASES:
            raise malformed(f"{where} has phase `{reading.get('phase')}`; use `A`, `B` or `C`")
        if not is_number(reading.get("data")):
            raise malformed(f"{where} needs a number in `data`")


# --- the registry ------------------------------------------------------------------------

CODECS: dict[str, Codec] = {
    codec.name: codec
    for codec in (JsonObjectCodec(), EdgeflexCodec(), TimeValueCodec(), SognoV4Codec())
}


def register_codec(name: str, codec: Codec) -> None:
    """Add (or replace) a codec under `name`."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a codec name must be a non-empty string")
    if not isinstance(codec, Codec):
        raise ConfigurationError(f"codec `{name}` must have `decode` and `encode`")
    CODECS[name] = codec


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        known = ", ".join(f"`{n}`" for n in sorted(CODECS))
        raise ConfigurationError(
            f"unknown codec `{name}`; known: {known}", code="unknown_codec"
        ) from None


def decoding(codec: str | Codec, handler: Callable[[BusMessage, dict[str, Any]], None]) -> Handler:
    """A bus handler that decodes each payload first and hands `(message, data)` on.

    A malformed payload raises `malformed_payload`, which the bus logs and counts.
    """
    chosen = get_codec(codec) if isinstance(codec, str) else codec

    def handle(message: BusMessage) -> None:
        handler(message, chosen.decode(message.payload))

    return handle
