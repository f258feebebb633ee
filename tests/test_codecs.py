"""Payload codecs: the edgeFLEX, field-trial and SOGNO v4 formats, hostile payloads,
the registry, and round trips."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbgm.codecs import CODECS, MAX_PAYLOAD_BYTES, Codec, get_codec, register_codec
from pbgm.errors import ConfigurationError, InvalidInputError

SOGNO_DEVICE = {
    "device": "device1",
    "timestamp": "2020-05-20T10:27:57.980802+00:00",
    "readings": [
        {"component": "BUS1", "measurand": "voltmagnitude", "phase": "A", "data": 123},
        {"component": "BUS2", "measurand": "frequency", "phase": "B", "data": 49.98},
    ],
}
SOGNO_COMPONENT = {
    "component": "6a5f9b6e-uuid",
    "timestamp": "2020-05-20T10:27:57+00:00",
    "readings": [{"measurand": "activepower", "phase": "C", "data": -12.5}],
}

VALID = [
    ("edgeFLEX sample", "json.edgeflex",
     b'{"voltage": 231.2, "frequency": 49.98, "created": 1674041340000}',
     {"voltage": 231.2, "frequency": 49.98, "created": 1674041340000}),
    ("edgeFLEX float created becomes integer ms", "json.edgeflex",
     b'{"v": 1, "created": 1674041340000.0}', {"v": 1, "created": 1674041340000}),
    ("field-trial PMU amplitude", "time_value",
     b'{"time": "2023-01-18T11:29:00Z", "value": 234.4702}',
     {"time": "2023-01-18T11:29:00Z", "value": 234.4702}),
    ("field-trial value with a unit", "time_value",
     b'{"time": "2023-01-18T11:37:00+01:00", "value": 0.8, "unit": "kW"}',
     {"time": "2023-01-18T11:37:00+01:00", "value": 0.8, "unit": "kW"}),
    ("SOGNO v4 device form", "sogno_v4", json.dumps(SOGNO_DEVICE).encode(), SOGNO_DEVICE),
    ("SOGNO v4 component form", "sogno_v4", json.dumps(SOGNO_COMPONENT).encode(),
     SOGNO_COMPONENT),
    ("covee nested voltages", "json",
     b'{"voltage_measurements": {"node_1": 1.01}}', {"voltage_measurements": {"node_1": 1.01}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "codec", "payload", "expected"), VALID)
def test_valid_payloads_decode(case: str, codec: str, payload: bytes, expected: Any) -> None:
    assert get_codec(codec).decode(payload) == expected


MALFORMED = [
    ("not JSON", "json", b"{oops", "one JSON document"),
    ("not UTF-8", "json", b'{"a": "\xff"}', "UTF-8"),
    ("an array", "json", b"[1, 2]", "JSON object"),
    ("NaN", "json", b'{"a": NaN}', "not a JSON number"),
    ("Infinity", "json", b'{"a": -Infinity}', "not a JSON number"),
    ("lone surrogate", "json", b'{"a": "\\ud800"}', "lone surrogates"),
    ("deep nesting", "json", b"[" * 100_000 + b"]" * 100_000, "one JSON document"),
    ("edgeFLEX without created", "json.edgeflex", b'{"v": 1}', "`created`"),
    ("edgeFLEX created as text", "json.edgeflex", b'{"v": 1, "created": "now"}', "`created`"),
    ("edgeFLEX created as bool", "json.edgeflex", b'{"v": 1, "created": true}', "`created`"),
    ("edgeFLEX nested value", "json.edgeflex", b'{"v": {"x": 1}, "created": 1}', "flat"),
    ("time_value without time", "time_value", b'{"value": 1}', "`time`"),
    ("time_value naive time", "time_value", b'{"time": "2023-01-18T11:29:00", "value": 1}',
     "timezone"),
    ("time_value text value", "time_value", b'{"time": "2023-01-18T11:29:00Z", "value": "1"}',
     "`value`"),
    ("time_value bool value", "time_value", b'{"time": "2023-01-18T11:29:00Z", "value": true}',
     "`value`"),
    ("SOGNO neither device nor component", "sogno_v4",
     b'{"timestamp": "2020-05-20T10:27:57Z", "readings": []}', "either"),
    ("SOGNO unknown measurand", "sogno_v4",
     json.dumps({**SOGNO_DEVICE, "readings": [{**SOGNO_DEVICE["readings"][0],
                                               "measurand": "temperature"}]}).encode(),
     "unknown measurand `temperature`"),
    ("SOGNO phase D", "sogno_v4",
     json.dumps({**SOGNO_DEVICE, "readings": [{**SOGNO_DEVICE["readings"][0],
                                               "phase": "D"}]}).encode(), "phase `D`"),
    ("SOGNO reading without component", "sogno_v4",
     json.dumps({**SOGNO_DEVICE, "readings": [{"measurand": "frequency", "phase": "A",
                                               "data": 50}]}).encode(), "`component`"),
    ("SOGNO data as text", "sogno_v4",
     json.dumps({**SOGNO_COMPONENT, "readings": [{"measurand": "frequency", "phase": "A",
                                                  "data": "50"}]}).encode(), "`data`"),
    ("SOGNO readings not a list", "sogno_v4",
     json.dumps({**SOGNO_COMPONENT, "readings": {}}).encode(), "`readings`"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "codec", "payload", "says"), MALFORMED)
def test_malformed_payloads_raise_malformed_payload(
    case: str, codec: str, payload: bytes, says: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        get_codec(codec).decode(payload)
    assert raised.value.code == "malformed_payload"
    assert says in raised.value.message


def test_an_oversized_payload_is_refused_before_parsing() -> None:
    payload = b'{"a": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(InvalidInputError) as raised:
        get_codec("json").decode(payload)
    assert "at most" in raised.value.message


def test_valid_surrogate_pairs_are_kept() -> None:
    assert get_codec("json").decode(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


@pytest.mark.parametrize(
    ("case", "codec", "data"),
    [
        ("edgeFLEX without created", "json.edgeflex", {"v": 1}),
        ("edgeFLEX nested", "json.edgeflex", {"v": [1], "created": 1}),
        ("time_value without value", "time_value", {"time": "2023-01-18T11:29:00Z"}),
        ("NaN", "json", {"a": float("nan")}),
        ("not JSON-able", "json", {"a": object()}),
        ("SOGNO without timestamp", "sogno_v4", {"device": "d", "readings": []}),
    ],
)
def test_encoding_checks_the_format(case: str, codec: str, data: Mapping[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as raised:
        get_codec(codec).encode(data)
    assert raised.value.code == "unencodable_payload"


def test_the_registry_has_the_built_in_formats() -> None:
    assert {"json", "json.edgeflex", "time_value", "sogno_v4"} <= set(CODECS)


def test_an_unknown_codec_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as raised:
        get_codec("json.reserve")
    assert raised.value.code == "unknown_codec"
    assert "`json.edgeflex`" in raised.value.message


class CsvCodec:
    """A toy codec: `name,value` lines."""

    def decode(self, payload: bytes) -> dict[str, Any]:
        return {k: float(v) for k, v in (line.split(",") for line in payload.decode().split())}

    def encode(self, data: Mapping[str, Any]) -> bytes:
        return "\n".join(f"{k},{v}" for k, v in data.items()).encode()


def test_a_codec_can_be_plugged_in() -> None:
    register_codec("test.csv", CsvCodec())
    try:
        codec = get_codec("test.csv")
        assert isinstance(codec, Codec)
        assert codec.decode(codec.encode({"p": 1.5, "q": -2.0})) == {"p": 1.5, "q": -2.0}
    finally:
        del CODECS["test.csv"]


def test_a_codec_without_the_methods_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        register_codec("broken", object())  # type: ignore[arg-type]


# --- round trips ------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
scalars = st.none() | st.booleans() | finite | st.text(max_size=20)
signal_names = st.text(min_size=1, max_size=12).filter(lambda k: k != "created")


@settings(max_examples=150, deadline=None)
@given(
    signals=st.dictionaries(signal_names, scalars, max_size=8),
    created=st.integers(0, 2**42),
)
def test_edgeflex_round_trips(signals: dict[str, Any], created: int) -> None:
    codec = get_codec("json.edgeflex")
    sample = {**signals, "created": created}
    assert codec.decode(codec.encode(sample)) == sample


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(timezones=st.timezones()),
    value=finite,
)
def test_time_value_round_trips(moment: Any, value: float) -> None:
    codec = get_codec("time_value")
    sample = {"time": moment.isoformat(), "value": value}
    assert codec.decode(codec.encode(sample)) == sample


@settings(max_examples=100, deadline=None)
@given(
    readings=st.lists(
        st.fixed_dictionaries(
            {
                "component": st.text(min_size=1, max_size=8),
                "measurand": st.sampled_from(sorted(["voltmagnitude", "frequency", "activepower"])),
                "phase": st.sampled_from(["A", "B", "C"]),
                "data": finite,
            }
        ),
        max_size=5,
    )
)
def test_sogno_v4_round_trips(readings: list[dict[str, Any]]) -> None:
    codec = get_codec("sogno_v4")
    message = {"device": "pmu-7", "timestamp": "2024-03-01T12:00:00+00:00", "readings": readings}
    assert codec.decode(codec.encode(message)) == message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_malformed(payload: bytes) -> None:
    for codec in CODECS.values():
        try:
            decoded = codec.decode(payload)
        except InvalidInputError as exc:
            assert exc.code == "malformed_payload"
        else:
            assert isinstance(decoded, dict)


HOSTILE_NUMBERS_AND_KEYS = [
    ("a duplicate key", b'{"a": 1, "a": 2}', "duplicate key `a`"),
    ("a duplicate key nested", b'{"x": {"b": 1, "b": 1}}', "duplicate key `b`"),
    ("a float that overflows", b'{"a": 1e999}', "too large for a float"),
    ("an overflowing float in a list", b'{"a": [1, -1e400]}', "too large for a float"),
    ("an integer beyond any float", b'{"a": ' + b"9" * 400 + b"}", "too large for a float"),
]


@pytest.mark.parametrize("codec", ["json", "json.edgeflex", "time_value", "sogno_v4"])
@pytest.mark.parametrize(("case", "payload", "says"), HOSTILE_NUMBERS_AND_KEYS)
def test_every_codec_refuses_duplicate_keys_and_non_finite_numbers(
    codec: str, case: str, payload: bytes, says: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        get_codec(codec).decode(payload)
    assert raised.value.code == "malformed_payload"
    assert says in raised.value.message


def test_the_largest_finite_numbers_still_decode() -> None:
    data = get_codec("json").decode(b'{"a": -1e308, "b": 1.7976931348623157e308}')
    assert data == {"a": -1e308, "b": 1.7976931348623157e308}


@pytest.mark.parametrize("codec", ["json", "json.edgeflex"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_no_codec_encodes_a_non_finite_number(codec: str, value: float) -> None:
    with pytest.raises(InvalidInputError) as raised:
        get_codec(codec).encode({"a": value, "created": 1})
    assert raised.value.code == "unencodable_payload"
