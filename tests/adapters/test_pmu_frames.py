"""C37.118.2 parsing, checked against frames built by pypmu (`synchrophasor`)."""

from __future__ import annotations

import json
import math
import struct

import pytest

from adapters.pmu import (
    AnalogUnit,
    Config,
    DigitalUnit,
    FrameError,
    PhasorUnit,
    PmuConfig,
    StreamDecoder,
    check_frame,
    crc_ccitt,
    parse_config,
    parse_data,
    parse_frame,
    to_edgeflex,
)
from tests.adapters.pmu_peer import (
    OK_STAT,
    SOC,
    CommandFrame,
    ConfigFrame2,
    DataFrame,
    HeaderFrame,
    channel_names,
    crc16xmodem,
    fix_crc,
    make_config,
)

approx = pytest.approx


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("the standard check value", b"123456789"),
        ("an empty input", b""),
        ("a header-sized input", bytes(range(14))),
        ("all ones", b"\xff" * 100),
    ],
)
def test_crc_is_crc_ccitt_false_as_pypmu_computes_it(what, data):
    assert crc_ccitt(data) == crc16xmodem(data, 0xFFFF)


def test_crc_check_value():
    assert crc_ccitt(b"123456789") == 0x29B1


def test_cfg2_fields_are_read_as_pypmu_wrote_them():
    cfg = make_config(
        fmt=(False, False, True, False),
        ph_units=[(915527, "v"), (45776, "i")],
        phasors=2,
        analogs=2,
        an_units=[(1, "pow"), (-20, "rms")],
        digitals=2,
        fnom=60,
        time_base=100_000,
        data_rate=-5,
        cfg_count=7,
    )
    config = parse_config(cfg.convert2bytes())
    (pmu,) = config.pmus
    assert (config.id_code, config.time_base, config.data_rate, config.version) == (
        7734,
        100_000,
        -5,
        1,
    )
    assert (pmu.station, pmu.id_code, pmu.nominal_frequency, pmu.cfg_count) == (
        "Station A",
        7734,
        60,
        7,
    )
    assert (pmu.phasor_polar, pmu.phasor_float, pmu.analog_float, pmu.freq_float) == (
        False,
        False,
        True,
        False,
    )
    names = channel_names(2, 2, 2)
    assert pmu.phasor_names == tuple(names[:2])
    assert pmu.analog_names == tuple(names[2:4])
    assert pmu.digital_names == tuple(names[4:])
    assert pmu.phasor_units == (PhasorUnit(False, 915527), PhasorUnit(True, 45776))
    assert pmu.analog_units == (AnalogUnit(0, 1), AnalogUnit(1, -20))
    assert pmu.digital_units == (DigitalUnit(0, 0xFFFF),) * 2
    assert config.data_size == len(
        DataFrame(
            7734, OK_STAT, [(1, 1)] * 2, 0, 0, [1.0, 2.0], [0, 0], cfg, soc=SOC
        ).convert2bytes()
    )


# what | (polar, float phasors, float analogs, float FREQ) | phasors sent | expected (V, rad)
PHASOR_CASES = [
    (
        "polar float phasors are taken as sent",
        (True, True, True, False),
        [(230.0, 0.0), (230.0, -2.0944), (10.5, 2.0944)],
        [(230.0, 0.0), (230.0, -2.0944), (10.5, 2.0944)],
    ),
    (
        "rectangular float phasors become magnitude and angle",
        (False, True, False, False),
        [(162.5, 162.5), (0.0, -230.0), (-1.0, 0.0)],
        [(math.hypot(162.5, 162.5), math.pi / 4), (230.0, -math.pi / 2), (1.0, math.pi)],
    ),
    (
        "polar integer phasors scale by PHUNIT (1e-5 V/bit) and angles by 1e-4 rad",
        (True, False, False, False),
        [(23000, 0), (23000, -20944), (65535, 31416)],
        [(230.0, 0.0), (230.0, -2.0944), (655.35, 3.1416)],
    ),
    (
        "rectangular integer phasors scale both parts by PHUNIT",
        (False, False, True, True),
        [(16263, 16263), (0, -23000), (-32767, 0)],
        [(math.hypot(162.63, 162.63), math.pi / 4), (230.0, -math.pi / 2), (327.67, math.pi)],
    ),
]


@pytest.mark.parametrize(("what", "fmt", "sent", "expected"), PHASOR_CASES)
def test_data_frame_phasors(what, fmt, sent, expected):
    cfg = make_config(fmt=fmt, phasors=3, ph_units=[(1000, "v")] * 3)
    config = parse_config(cfg.convert2bytes())
    analog = [1.5] if fmt[2] else [-1234]
    frame = DataFrame(7734, OK_STAT, sent, 0, 0, analog, [0x3C12], cfg, soc=SOC)
    (m,) = parse_data(frame.convert2bytes(), config)
    assert [tuple(p) for p in m.phasors] == [approx(e, rel=1e-6, abs=1e-9) for e in expected]
    assert m.analogs == approx(tuple(analog))
    assert m.digitals == (0x3C12,)
    peer = frame.get_phasors()  # pypmu's own conversion to polar engineering units
    assert [p.magnitude for p in m.phasors] == approx([p[0] for p in peer], rel=1e-6)


@pytest.mark.parametrize(
    ("what", "fmt", "fnom", "freq", "dfreq", "frequency", "rocof"),
    [
        (
            "integer FREQ is mHz off nominal, DFREQ is ROCOF x 100",
            False,
            50,
            -25,
            -50,
            49.975,
            -0.5,
        ),
        ("integer FREQ on a 60 Hz system", False, 60, 1234, 321, 61.234, 3.21),
        (
            "float FREQ below half nominal is the deviation in Hz",
            True,
            50,
            0.125,
            -0.42,
            50.125,
            -0.42,
        ),
        ("float FREQ on a 60 Hz system", True, 60, -1.5, 0.25, 58.5, 0.25),
    ],
)
def test_data_frame_frequency_and_rocof(what, fmt, fnom, freq, dfreq, frequency, rocof):
    cfg = make_config(fmt=(True, True, True, fmt), fnom=fnom)
    config = parse_config(cfg.convert2bytes())
    frame = DataFrame(7734, OK_STAT, [(1.0, 0.0)] * 3, freq, dfreq, [0.0], [0], cfg, soc=SOC)
    (m,) = parse_data(frame.convert2bytes(), config)
    assert m.frequency == approx(frequency, abs=1e-6)
    assert m.rocof == approx(rocof, abs=1e-6)
    assert m.frequency_deviation == approx(frequency - fnom, abs=1e-6)


def test_float_freq_above_half_nominal_is_the_absolute_frequency():
    """C37.118.2-2011 sends the actual frequency; pypmu cannot, so the bytes are patched."""
    cfg = make_config(fmt=(True, True, True, True), phasors=1, analogs=0, digitals=0)
    config = parse_config(cfg.convert2bytes())
    raw = bytearray(DataFrame(7734, OK_STAT, [(1.0, 0.0)], 0.0, 0.0, [], [], cfg).convert2bytes())
    raw[24:28] = struct.pack(">f", 49.95)
    (m,) = parse_data(fix_crc(raw), config)
    assert m.frequency == approx(49.95, abs=1e-5)


def test_stat_time_and_time_quality():
    cfg = make_config(time_base=1000)
    config = parse_config(cfg.convert2bytes())
    # test mode, unsynchronised, triggered, config change, time quality 3, unlocked 1, reason 2
    # (an int: pypmu's tuple form shifts the 2-bit data error field one bit too far)
    stat = 0x8000 | 0x2000 | 0x0800 | 0x0400 | 3 << 6 | 1 << 4 | 2
    frame = DataFrame(
        7734,
        stat,
        [(1.0, 0.0)] * 3,
        0,
        0,
        [0.0],
        [0],
        cfg,
        soc=SOC,
        frasec=(250, "+", True, False, 7),
    )
    (m,) = parse_data(frame.convert2bytes(), config)
    assert (m.data_error, m.synchronised, m.triggered, m.config_changed) == (2, False, True, True)
    assert m.stat == stat
    assert m.time == approx(SOC + 0.25)
    assert (m.soc, m.fraction) == (SOC, 250)
    assert m.time_quality & 0x0F == 7
    assert m.time_quality & 0x20  # leap second occurred


def _two_pmu_config() -> ConfigFrame2:
    return ConfigFrame2(
        100,
        1_000_000,
        2,
        ["North", "South"],
        [1001, 1002],
        [(True, True, True, False), (False, False, False, False)],
        [2, 1],
        [1, 0],
        [0, 1],
        [channel_names(2, 1, 0, "N"), channel_names(1, 0, 1, "S")],
        [[(1000, "v")] * 2, [(2000, "i")]],
        [[(1, "pow")], []],
        [[], [(0, 0xFFFF)]],
        [50, 60],
        [3, 4],
        25,
        soc=SOC,
        frasec=(0,),
    )


def test_several_pmus_in_one_stream():
    cfg = _two_pmu_config()
    config = parse_config(cfg.convert2bytes())
    assert [p.station for p in config.pmus] == ["North", "South"]
    assert [p.id_code for p in config.pmus] == [1001, 1002]
    frame = DataFrame(
        100,
        [OK_STAT, OK_STAT],
        [[(230.0, 0.5), (231.0, -0.5)], [(1000, 0)]],
        [12, -30],
        [5, -7],
        [[42.0], []],
        [[], [0x8001]],
        cfg,
        soc=SOC,
        frasec=(500_000,),
    )
    north, south = parse_data(frame.convert2bytes(), config)
    assert (north.stream_id, north.pmu.id_code, south.pmu.id_code) == (100, 1001, 1002)
    assert [tuple(p) for p in north.phasors] == [approx((230.0, 0.5)), approx((231.0, -0.5))]
    assert (north.frequency, north.rocof, north.analogs) == (approx(50.012), 0.05, (42.0,))
    assert [tuple(p) for p in south.phasors] == [approx((20.0, 0.0))]
    assert (south.frequency, south.rocof, south.digitals) == (approx(59.97), -0.07, (0x8001,))
    assert north.time == south.time == approx(SOC + 0.5)


def test_edgeflex_payload_names_and_values():
    cfg = make_config(station="edgePMU3", phasors=1, analogs=1, digitals=1)
    config = parse_config(cfg.convert2bytes())
    frame = DataFrame(
        7734,
        OK_STAT,
        [(234.47, 0.25)],
        -25,
        -50,
        [float("nan")],
        [7],
        cfg,
        soc=SOC,
        frasec=(123_456,),
    )
    (m,) = parse_data(frame.convert2bytes(), config)
    payload = to_edgeflex(m)
    assert payload == {
        "edgePMU3 PH1 amplitude": approx(234.47),
        "edgePMU3 PH1 angle": approx(0.25),
        "edgePMU3 AN1": None,  # the PMU sent NaN: missing, published as null
        "edgePMU3 digital 1": 7,
        "edgePMU3 frequency": approx(49.975),
        "edgePMU3 rocof": -0.5,
        "created": SOC * 1000 + 123,
    }
    assert set(to_edgeflex(m, prefix="ch1")) == {k.replace("edgePMU3", "ch1") for k in payload}
    assert "frequency" in to_edgeflex(m, prefix="")


def test_header_and_command_frames_are_ignored():
    decoder = StreamDecoder()
    assert decoder.feed(CommandFrame(7734, "start", soc=SOC).convert2bytes()) == ()
    assert decoder.feed(HeaderFrame(7734, "hello", soc=SOC).convert2bytes()) == ()
    assert (decoder.counters.ignored, decoder.counters.dropped) == (2, 0)


def test_cfg2_on_the_wire_is_learned_and_replaced():
    decoder = StreamDecoder()
    first, second = make_config(phasors=3), make_config(phasors=1, cfg_count=2)
    decoder.feed(first.convert2bytes())
    decoder.feed(second.convert2bytes())
    assert decoder.configs[7734].pmus[0].cfg_count == 2
    data = DataFrame(7734, OK_STAT, [(5.0, 0.0)], 0, 0, [0.0], [0], second, soc=SOC)
    (m,) = decoder.feed(data.convert2bytes())
    assert m.phasors == ((5.0, 0.0),)
    assert decoder.counters.configs == 2


def _good_data(cfg: ConfigFrame2) -> bytes:
    return DataFrame(
        7734, OK_STAT, [(1.0, 0.0)] * 3, 0, 0, [0.0], [0], cfg, soc=SOC
    ).convert2bytes()


def _flip_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def _with_type(frame: bytes, frame_type: int) -> bytes:
    return fix_crc(frame[:1] + bytes([frame_type << 4 | 1]) + frame[2:])


def _other_stream(frame: bytes) -> bytes:
    return fix_crc(frame[:4] + (4242).to_bytes(2, "big") + frame[6:])


def _short_cfg(cfg: ConfigFrame2) -> bytes:
    raw = bytearray(cfg.convert2bytes())
    raw[18:20] = (2).to_bytes(2, "big")  # NUM_PMU says two, only one follows
    return fix_crc(raw)


def _wrong_layout(_cfg: ConfigFrame2) -> bytes:
    other = make_config(phasors=2)
    return DataFrame(
        7734, OK_STAT, [(1.0, 0.0)] * 2, 0, 0, [0.0], [0], other, soc=SOC
    ).convert2bytes()


BAD_FRAMES = [
    ("a flipped CRC byte", lambda c: _flip_crc(_good_data(c)), "bad_crc"),
    ("a frame cut short by one byte", lambda c: _good_data(c)[:-1], "truncated"),
    ("a datagram shorter than a header", lambda c: _good_data(c)[:9], "truncated"),
    ("an empty datagram", lambda c: b"", "truncated"),
    ("a wrong SYNC byte", lambda c: b"\xab" + _good_data(c)[1:], "bad_sync"),
    ("trailing bytes after the frame", lambda c: _good_data(c) + b"\0", "size_mismatch"),
    ("an undefined frame type", lambda c: _with_type(_good_data(c), 7), "unknown_type"),
    ("data of a stream without configuration", lambda c: _other_stream(_good_data(c)), "no_config"),
    ("data not matching the configured layout", _wrong_layout, "size_mismatch"),
    ("a configuration shorter than it claims", _short_cfg, "bad_config"),
]


@pytest.mark.parametrize(("what", "make_bad", "reason"), BAD_FRAMES)
def test_bad_frames_are_dropped_counted_and_do_not_stop_the_stream(what, make_bad, reason):
    cfg = make_config()
    decoder = StreamDecoder([parse_config(cfg.convert2bytes())])
    assert decoder.feed(make_bad(cfg)) == ()
    assert len(decoder.feed(_good_data(cfg))) == 1
    counts = decoder.counters.as_dict()
    assert counts[reason] == 1
    assert (decoder.counters.dropped, counts["measurements"], counts["frames"]) == (1, 1, 2)


def test_data_before_any_configuration_then_after_it():
    cfg = make_config()
    decoder = StreamDecoder()
    assert decoder.feed(_good_data(cfg)) == ()
    decoder.feed(cfg.convert2bytes())
    assert len(decoder.feed(_good_data(cfg))) == 1
    assert (decoder.counters.no_config, decoder.counters.measurements) == (1, 1)


def test_streams_outside_the_allowlist_are_unknown_even_with_a_cfg2():
    cfg = make_config(id_code=4242)
    decoder = StreamDecoder(id_codes=[7734])
    decoder.feed(cfg.convert2bytes())
    data = DataFrame(4242, OK_STAT, [(1.0, 0.0)] * 3, 0, 0, [0.0], [0], cfg, soc=SOC)
    decoder.feed(data.convert2bytes())
    assert decoder.counters.unknown_id == 2
    assert 4242 not in decoder.configs


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("a data frame read as a configuration", lambda d, c: parse_config(d)),
        ("a configuration read as data", lambda d, c: parse_data(c, parse_config(c))),
        ("data checked for another stream", lambda d, c: parse_frame(d, {}, id_codes=[1])),
    ],
)
def test_misuse_raises_the_typed_error(what, call):
    cfg = make_config()
    with pytest.raises(FrameError) as info:
        call(_good_data(cfg), cfg.convert2bytes())
    assert info.value.code == "invalid_pmu_frame"
    assert info.value.message == info.value.message.lower().rstrip(".")


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("a zero time base", {"time_base": 0}),
        ("no pmu at all", {"pmus": ()}),
        # the rules a CFG-2 frame's reader applies, for a configuration made in code too
        ("the reserved idcode 0", {"id_code": 0}),
        ("the reserved idcode 65535", {"id_code": 0xFFFF}),
        ("an idcode beyond 16 bits", {"id_code": 70_000}),
        ("a negative idcode", {"id_code": -1}),
        ("version 3", {"version": 3}),
        ("data rate -32768", {"data_rate": -0x8000}),
        ("data rate beyond 16 bits", {"data_rate": 40_000}),
    ],
)
def test_a_hand_built_config_is_checked(what, kwargs):
    pmu = PmuConfig("A", 1, 0, ("V",), (PhasorUnit(False, 1000),))
    args = {"id_code": 1, "time_base": 1000, "pmus": (pmu,)} | kwargs
    with pytest.raises(FrameError) as info:
        Config(**args)
    assert info.value.reason == "bad_config"
    assert info.value.message


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("a pmu idcode beyond 16 bits", {"id_code": 0x10000}),
        ("a negative cfg count", {"cfg_count": -1}),
        ("a cfg count beyond 16 bits", {"cfg_count": 0x10000}),
        ("an analog scale beyond 24 bits", {"analog_units": (AnalogUnit(1, 0x800000),)}),
        ("an analog scale below -2^23", {"analog_units": (AnalogUnit(1, -0x800001),)}),
        ("a digital mask beyond 16 bits", {"digital_units": (DigitalUnit(0x10000, 0),)}),
        ("a negative digital mask", {"digital_units": (DigitalUnit(0, -1),)}),
    ],
)
def test_a_hand_built_pmu_block_is_checked(what, kwargs):
    names = {
        "analog_units": ("analog_names", ("A",)),
        "digital_units": ("digital_names", 16 * ("D",)),
    }
    args = {"station": "A", "id_code": 1, "format": 0, "phasor_names": ("V",)}
    args |= {"phasor_units": (PhasorUnit(False, 1000),)} | kwargs
    for given, (name, value) in names.items():
        if given in kwargs:
            args[name] = value
    with pytest.raises(FrameError) as info:
        PmuConfig(**args)
    assert info.value.reason == "bad_config" and info.value.message


def test_a_hand_built_config_at_the_edges_of_its_fields_is_taken():
    pmu = PmuConfig(
        "A", 0xFFFF, 0, ("V",), (PhasorUnit(False, 0xFFFFFF),),
        analog_names=("A", "B"), analog_units=(AnalogUnit(1, -0x800000), AnalogUnit(2, 0x7FFFFF)),
        digital_names=16 * ("D",), digital_units=(DigitalUnit(0xFFFF, 0),), cfg_count=0xFFFF,
    )  # fmt: skip
    for id_code, version, rate in ((1, 1, -0x7FFF), (0xFFFE, 2, 0x7FFF)):
        config = Config(id_code, 0xFFFFFF, (pmu,), rate, version)
        assert (config.id_code, config.version, config.data_rate) == (id_code, version, rate)


def test_check_frame_reads_the_common_header():
    header = check_frame(make_config().convert2bytes())
    assert (header.frame_type, header.version, header.id_code, header.soc) == (3, 1, 7734, SOC)


def test_new_streams_beyond_the_limit_are_refused_known_ones_still_update():
    decoder = StreamDecoder(max_streams=1)
    decoder.feed(make_config(id_code=1).convert2bytes())
    decoder.feed(make_config(id_code=2).convert2bytes())
    decoder.feed(make_config(id_code=1, cfg_count=9).convert2bytes())
    assert list(decoder.configs) == [1]
    assert decoder.configs[1].pmus[0].cfg_count == 9
    assert (decoder.counters.configs, decoder.counters.unknown_id) == (2, 1)


# --- missing data and the fields the standard restricts --------------------------------


def _words(frame: bytes, at: int, raw: bytes) -> bytes:
    """Overwrite bytes from offset `at` and re-frame (pypmu refuses to encode these)."""
    out = bytearray(frame)
    out[at : at + len(raw)] = raw
    return fix_crc(out)


MISSING_INT = b"\x80\x00"
# integer layout of make_config(fmt=..., phasors=2, analogs=1, digitals=1): STAT at 14,
# phasor words at 16, 18, 20, 22, FREQ 24, DFREQ 26, ANALOG 28, DIGITAL 30
MISSING_CASES = [
    ("rectangular integer phasor, real word 0x8000", (False, False, False, False), 16,
     MISSING_INT, "phasor"),
    ("rectangular integer phasor, imaginary word 0x8000", (False, False, False, False), 18,
     MISSING_INT, "phasor"),
    ("polar integer phasor, magnitude 0x8000", (True, False, False, False), 16, MISSING_INT,
     "phasor"),
    ("polar integer phasor, angle 0x8000", (True, False, False, False), 18, MISSING_INT,
     "phasor"),
    ("integer FREQ 0x8000", (True, False, False, False), 24, MISSING_INT, "frequency"),
    ("integer DFREQ 0x8000", (True, False, False, False), 26, MISSING_INT, "rocof"),
    ("integer analog 0x8000", (True, False, False, False), 28, MISSING_INT, "analog"),
    ("float phasor NaN", (True, True, False, False), 16, struct.pack(">f", math.nan), "phasor"),
    ("float FREQ NaN", (True, False, False, True), 24, struct.pack(">f", math.nan), "frequency"),
    ("float DFREQ infinite", (True, False, False, True), 28, struct.pack(">f", math.inf),
     "rocof"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "fmt", "at", "raw", "field"), MISSING_CASES)
def test_values_the_pmu_marks_missing_are_none_never_numbers(what, fmt, at, raw, field):
    cfg = make_config(fmt=fmt, phasors=2, analogs=1, digitals=1, station="edgePMU3")
    phasor = (1000.0, 0.1) if fmt[1] else (1000, 100)
    sent = DataFrame(7734, OK_STAT, [phasor] * 2, -25, -50, [12], [0x8000], cfg, soc=SOC)
    (m,) = parse_data(_words(sent.convert2bytes(), at, raw), parse_config(cfg.convert2bytes()))
    got = {"phasor": m.phasors[0], "frequency": m.frequency, "rocof": m.rocof,
           "analog": m.analogs[0]}  # fmt: skip
    assert got.pop(field) is None
    assert None not in got.values() and m.phasors[1] is not None
    assert m.digitals == (0x8000,)  # digital words have no missing marker: all bits are data
    payload = json.loads(json.dumps(to_edgeflex(m), allow_nan=False))
    names = {"phasor": "edgePMU3 PH1 amplitude", "frequency": "edgePMU3 frequency",
             "rocof": "edgePMU3 rocof", "analog": "edgePMU3 AN1"}  # fmt: skip
    assert payload[names[field]] is None
    assert m.frequency_deviation is None if field == "frequency" else m.frequency_deviation


def _data(frasec: int = 0, time_base: int = 1_000_000) -> tuple[ConfigFrame2, bytes]:
    cfg = make_config(time_base=time_base)
    frame = DataFrame(7734, OK_STAT, [(1.0, 0.0)] * 3, 0, 0, [0.0], [0], cfg, soc=SOC)
    raw = frame.convert2bytes()
    return cfg, _words(raw, 10, frasec.to_bytes(4, "big"))


def _sync(frame: bytes, version: int) -> bytes:
    return _words(frame, 1, bytes([frame[1] & 0xF0 | version]))


def _version(version: int) -> tuple[ConfigFrame2, bytes]:
    cfg, frame = _data()
    return cfg, _sync(frame, version)


RESTRICTED_DATA = [
    ("fraction equal to TIME_BASE", lambda: _data(1_000_000), "bad_time"),
    ("fraction 1.5 million with a time base of 1 million", lambda: _data(1_500_000),
     "bad_time"),
    ("fraction above a small time base", lambda: _data(150, time_base=100), "bad_time"),
    ("version 0", lambda: _version(0), "bad_version"),
    ("version 3", lambda: _version(3), "bad_version"),
    ("FRACSEC reserved bit 31 set", lambda: _data(0x80000000), "bad_header"),
    ("undefined time quality code 12", lambda: _data(0x0C000000), "bad_header"),
    ("undefined time quality code 14", lambda: _data(0x0E000000), "bad_header"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "make", "reason"), RESTRICTED_DATA)
def test_data_frames_breaking_a_restricted_field_are_refused(what, make, reason):
    cfg, frame = make()
    config = parse_config(cfg.convert2bytes())
    with pytest.raises(FrameError) as info:
        parse_data(frame, config)
    assert info.value.reason == reason and info.value.message
    decoder = StreamDecoder([config])
    assert decoder.feed(frame) == ()
    assert getattr(decoder.counters, reason) == 1 and decoder.counters.dropped == 1


def test_the_last_fraction_below_time_base_and_every_defined_time_quality_pass():
    cfg, frame = _data(999_999)
    config = parse_config(cfg.convert2bytes())
    (m,) = parse_data(frame, config)
    assert m.time == approx(SOC + 0.999999)
    for quality in (*range(12), 15):
        flags = 0x70 | quality  # leap-second flags may be set
        assert parse_data(_data(flags << 24 | 5)[1], config)[0].time_quality == flags
    assert parse_data(_sync(frame, 2), config)  # C37.118.2-2011


@pytest.mark.parametrize("id_code", [0, 0xFFFF])
def test_reserved_idcodes_are_refused(id_code):
    frame = _words(make_config().convert2bytes(), 4, id_code.to_bytes(2, "big"))
    with pytest.raises(FrameError) as info:
        check_frame(frame)
    assert info.value.reason == "bad_header"
    cfg, data = _data()
    config = parse_config(cfg.convert2bytes())
    with pytest.raises(FrameError) as info:
        parse_frame(_words(data, 4, id_code.to_bytes(2, "big")), {id_code: config})
    assert info.value.reason == "bad_header"


def _cfg_word(at: int, raw: bytes) -> bytes:
    return _words(make_config(phasors=1, analogs=1, digitals=1).convert2bytes(), at, raw)


# CFG-2 of make_config(phasors=1, analogs=1, digitals=1): TIME_BASE at 14, NUM_PMU 18,
# STN 20, IDCODE 36, FORMAT 38, PHNMR 40, ANNMR 42, DGNMR 44, 18 names from 46, PHUNIT 334,
# ANUNIT 338, DIGUNIT 342, FNOM 346, CFGCNT 348, DATA_RATE 350
RESTRICTED_CONFIG = [
    ("TIME_BASE flag bits set", _cfg_word(14, b"\x01"), "bad_config"),
    ("FORMAT unused bits set", _cfg_word(38, b"\x00\x13"), "bad_config"),
    ("PHUNIT type 2 (neither volt nor ampere)", _cfg_word(334, b"\x02"), "bad_config"),
    ("ANUNIT type 3 (reserved)", _cfg_word(338, b"\x03"), "bad_config"),
    ("ANUNIT type 64 (reserved)", _cfg_word(338, b"\x40"), "bad_config"),
    ("FNOM reserved bits set", _cfg_word(346, b"\x00\x03"), "bad_config"),
    ("DATA_RATE -32768", _cfg_word(350, b"\x80\x00"), "bad_config"),
    ("FRACSEC at TIME_BASE", _cfg_word(10, (1_000_000).to_bytes(4, "big")), "bad_time"),
    ("version 5", _sync(make_config().convert2bytes(), 5), "bad_version"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "frame", "reason"), RESTRICTED_CONFIG)
def test_configurations_breaking_a_restricted_field_are_refused(what, frame, reason):
    with pytest.raises(FrameError) as info:
        parse_config(frame)
    assert info.value.reason == reason and info.value.message
    decoder = StreamDecoder()
    decoder.feed(frame)
    assert getattr(decoder.counters, reason) == 1 and not decoder.configs


def test_user_defined_analog_types_and_current_phasors_are_accepted():
    config = parse_config(_words(_cfg_word(338, b"\x41"), 334, b"\x01"))
    assert config.pmus[0].analog_units[0].kind == 65
    assert config.pmus[0].phasor_units[0].current
