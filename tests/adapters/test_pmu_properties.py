"""Properties of the C37.118.2 parser: it reads back what pypmu wrote, and junk never crashes it."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.pmu import (
    FrameError,
    StreamDecoder,
    parse_config,
    parse_data,
    parse_frame,
    to_edgeflex,
)
from tests.adapters.pmu_peer import (
    OK_STAT,
    SOC,
    ConfigFrame2,
    DataFrame,
    channel_names,
    fix_crc,
    make_config,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _two_pmu_config() -> ConfigFrame2:
    return ConfigFrame2(
        100,
        1_000_000,
        2,
        ["North", "South"],
        [1001, 1002],
        [(True, True, True, True), (False, False, False, False)],
        [2, 1],
        [1, 0],
        [0, 1],
        [channel_names(2, 1, 0), channel_names(1, 0, 1)],
        [[(1000, "v")] * 2, [(2000, "i")]],
        [[(1, "pow")], []],
        [[], [(0, 0xFFFF)]],
        [50, 60],
        [3, 4],
        25,
        soc=SOC,
    )


SINGLE = make_config(fmt=(False, False, False, False))
MULTI = _two_pmu_config()
CONFIGS = {
    c.id_code: c
    for c in (parse_config(SINGLE.convert2bytes()), parse_config(MULTI.convert2bytes()))
}
VALID_FRAMES = [
    SINGLE.convert2bytes(),
    MULTI.convert2bytes(),
    DataFrame(7734, OK_STAT, [(100, -5)] * 3, -25, 40, [12], [3], SINGLE, soc=SOC).convert2bytes(),
    DataFrame(
        100,
        [OK_STAT, OK_STAT],
        [[(230.0, 0.5), (231.0, -0.5)], [(1000, 0)]],
        [0.1, -30],
        [0.5, -7],
        [[42.0], []],
        [[], [0x8001]],
        MULTI,
        soc=SOC,
    ).convert2bytes(),
]


def _assert_only_typed_errors(frame: bytes) -> None:
    """parse_frame returns or raises FrameError; the decoder counts it and never raises."""
    try:
        parse_frame(frame, CONFIGS)
    except FrameError as error:
        assert error.reason in StreamDecoder().counters.as_dict()
    decoder = StreamDecoder(CONFIGS.values())
    decoder.feed(frame)
    c = decoder.counters
    assert c.internal_error == 0
    assert c.frames == 1 == c.configs + c.data_frames + c.ignored + c.dropped


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_parser(frame):
    _assert_only_typed_errors(frame)


@SETTINGS
@given(
    frame_type=st.integers(0, 15),
    id_code=st.sampled_from([7734, 100, 1]),
    body=st.binary(max_size=400),
)
def test_random_payloads_with_a_valid_shell_never_crash_the_parser(frame_type, id_code, body):
    header = bytes([0xAA, frame_type << 4 | 1]) + bytes(2) + id_code.to_bytes(2, "big")
    _assert_only_typed_errors(fix_crc(header + body + bytes(2)))


@SETTINGS
@given(
    frame=st.sampled_from(VALID_FRAMES),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 2000),
    reframe=st.booleans(),
)
def test_mutated_valid_frames_never_crash_the_parser(frame, edits, cut, reframe):
    mutated = bytearray(frame)
    for pos, value in edits:
        mutated[pos % len(mutated)] = value
    mutated = mutated[: max(cut, 2)] if cut < len(mutated) else mutated
    _assert_only_typed_errors(fix_crc(mutated) if reframe else bytes(mutated))


f32 = {"width": 32, "allow_nan": False, "allow_infinity": False}


@st.composite
def pmu_frames(draw):
    """A random single-PMU configuration, a data frame of it, and what it should decode to."""
    polar, ph_float, an_float, fr_float = draw(st.tuples(*[st.booleans()] * 4))
    nph, nan, ndg = draw(st.integers(0, 4)), draw(st.integers(0, 2)), draw(st.integers(0, 2))
    fnom = draw(st.sampled_from([50, 60]))
    time_base = draw(st.integers(1, 0xFFFFFF))
    scales = draw(st.lists(st.integers(0, 0xFFFFFF), min_size=nph, max_size=nph))
    if ph_float:
        first = st.floats(0, 1e5, **f32) if polar else st.floats(-1e5, 1e5, **f32)
        second = st.floats(-3.0, 3.0, **f32) if polar else st.floats(-1e5, 1e5, **f32)
    else:
        first = (
            st.integers(0, 65535).filter(lambda v: v != 0x8000)
            if polar
            else st.integers(-32767, 32767)
        )  # 0x8000 marks missing data (see the missing-data property below)
        second = st.integers(-31416, 31416) if polar else st.integers(-32767, 32767)
    phasors = draw(st.lists(st.tuples(first, second), min_size=nph, max_size=nph))
    freq = draw(st.floats(-24, 24, **f32) if fr_float else st.integers(-32767, 32767))
    dfreq = draw(st.floats(-100, 100, **f32) if fr_float else st.integers(-32767, 32767))
    analog_value = st.floats(-1e6, 1e6, **f32) if an_float else st.integers(-32767, 32767)
    analogs = draw(st.lists(analog_value, min_size=nan, max_size=nan))
    digitals = draw(st.lists(st.integers(0, 0xFFFF), min_size=ndg, max_size=ndg))
    fraction = draw(st.integers(0, min(time_base - 1, 0x7FFFFF)))
    cfg = make_config(
        fmt=(polar, ph_float, an_float, fr_float),
        phasors=nph,
        analogs=nan,
        digitals=ndg,
        ph_units=[(s, "v") for s in scales],
        fnom=fnom,
        time_base=time_base,
    )
    frame = DataFrame(
        7734, 0, phasors, freq, dfreq, analogs, digitals, cfg, soc=SOC, frasec=(fraction,)
    )
    expected = {
        "phasors": [
            _expected_phasor(p, s, polar, ph_float) for p, s in zip(phasors, scales, strict=True)
        ],
        "frequency": fnom + (freq if fr_float else freq / 1000),
        "rocof": dfreq if fr_float else dfreq / 100,
        "analogs": tuple(analogs),
        "digitals": tuple(digitals),
        "time": SOC + fraction / time_base,
    }
    expected["format"] = (polar, ph_float, an_float, fr_float)
    return cfg.convert2bytes(), frame.convert2bytes(), expected


def _expected_phasor(p, scale, polar, is_float):
    factor = 1.0 if is_float else scale * 1e-5
    if polar:
        return (p[0] * factor, p[1] if is_float else p[1] / 10_000)
    return (math.hypot(p[0], p[1]) * factor, math.atan2(p[1], p[0]))


@SETTINGS
@given(pmu_frames())
def test_data_frames_read_back_the_values_pypmu_encoded(case):
    cfg_frame, data_frame, expected = case
    (m,) = parse_data(data_frame, parse_config(cfg_frame))
    assert [tuple(p) for p in m.phasors] == [
        pytest.approx(e, rel=1e-9, abs=1e-9) for e in expected["phasors"]
    ]
    assert m.frequency == pytest.approx(expected["frequency"], rel=1e-12)
    assert m.rocof == pytest.approx(expected["rocof"], rel=1e-12)
    assert (m.analogs, m.digitals) == (expected["analogs"], expected["digitals"])
    assert m.time == pytest.approx(expected["time"], rel=1e-15)


def _mark_missing(frame: bytes, fmt: tuple[bool, ...], counts: tuple[int, int], marks) -> bytes:
    """Write the standard's missing-data marker into the chosen values of a data frame.

    `marks` = (phasor indices, word of each phasor (0 or 1), freq?, dfreq?, analog indices).
    """
    _polar, ph_float, an_float, fr_float = fmt
    nph, _analogs = counts
    ph_word, fr_word = (4 if ph_float else 2), (4 if fr_float else 2)
    an_word = 4 if an_float else 2
    phasor_at = 16
    freq_at = phasor_at + 2 * ph_word * nph
    analog_at = freq_at + 2 * fr_word
    out = bytearray(frame)

    def put(pos: int, is_float: bool) -> None:
        out[pos : pos + (4 if is_float else 2)] = (
            struct.pack(">f", math.nan) if is_float else b"\x80\x00"
        )

    phasors, words, freq, dfreq, analogs = marks
    for index, word in zip(phasors, words, strict=False):
        put(phasor_at + (2 * index + word) * ph_word, ph_float)
    if freq:
        put(freq_at, fr_float)
    if dfreq:
        put(freq_at + fr_word, fr_float)
    for index in analogs:
        put(analog_at + index * an_word, an_float)
    return fix_crc(out)


@SETTINGS
@given(case=pmu_frames(), data=st.data())
def test_values_marked_missing_read_as_none_and_the_others_unchanged(case, data):
    cfg_frame, data_frame, expected = case
    nph, nan = len(expected["phasors"]), len(expected["analogs"])
    phasors = data.draw(st.sets(st.integers(0, max(nph - 1, 0))) if nph else st.just(set()))
    words = data.draw(st.lists(st.integers(0, 1), min_size=len(phasors), max_size=len(phasors)))
    freq, dfreq = data.draw(st.booleans()), data.draw(st.booleans())
    analogs = data.draw(st.sets(st.integers(0, max(nan - 1, 0))) if nan else st.just(set()))
    frame = _mark_missing(
        data_frame, expected["format"], (nph, nan), (sorted(phasors), words, freq, dfreq, analogs)
    )
    (m,) = parse_data(frame, parse_config(cfg_frame))
    for k, phasor in enumerate(m.phasors):
        if k in phasors:
            assert phasor is None
        else:
            assert tuple(phasor) == pytest.approx(expected["phasors"][k], rel=1e-9, abs=1e-9)
    assert (m.frequency is None) == freq and (m.rocof is None) == dfreq
    if not freq:
        assert m.frequency == pytest.approx(expected["frequency"], rel=1e-12)
    for k, value in enumerate(m.analogs):
        assert value is None if k in analogs else value == expected["analogs"][k]
    payload = to_edgeflex(m)
    json.dumps(payload, allow_nan=False)  # valid JSON: no NaN slips through
    assert sum(v is None for v in payload.values()) == 2 * len(phasors) + freq + dfreq + len(
        analogs
    )
