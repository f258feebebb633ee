"""The PMU service: frames built by pypmu over a real UDP socket, published on a bus."""

from __future__ import annotations

import json
import threading
import time

import pytest

from adapters.services.pmu import PmuService, topic_for
from pbgm.bus import MemoryBus
from pbgm.errors import ConfigurationError
from tests.adapters.pmu_peer import OK_STAT, SOC, DataFrame, fix_crc, make_config, udp_sender


def data_frame(cfg, k: int) -> bytes:
    phasors = [(230.0 + k, 0.1), (231.0, -2.0944), (229.0, 2.0944)]
    frame = DataFrame(7734, OK_STAT, phasors, -25, -50, [1.0], [k], cfg, soc=SOC + k, frasec=(0,))
    return frame.convert2bytes()


@pytest.fixture
def bus():
    bus = MemoryBus()
    yield bus
    bus.close()


@pytest.fixture
def running(bus):
    """A PMU service on a free UDP port, run in a thread, stopped afterwards."""
    service = PmuService(bus, {"port": 0, "topic": "/edgeflex/{station}/{id_code}"})
    service.start()
    thread = threading.Thread(target=service.run)
    thread.start()
    yield service
    service.stop()
    thread.join(5)
    assert not thread.is_alive()


def collect(bus, topic_filter: str) -> list:
    got: list = []
    bus.subscribe(topic_filter, lambda m: got.append((m.topic, json.loads(m.payload))))
    return got


def wait_for(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_measurements_are_published_as_json_edgeflex(bus, running):
    got = collect(bus, "/edgeflex/#")
    cfg = make_config(station="edgePMU3")
    with udp_sender() as sock:
        sock.sendto(cfg.convert2bytes(), running.address)
        time.sleep(0.1)  # the configuration first: UDP keeps no order across a wait
        for k in range(3):
            sock.sendto(data_frame(cfg, k), running.address)
        wait_for(lambda: len(got) == 3)
    topic, first = got[0]
    assert topic == "/edgeflex/edgePMU3/7734"
    assert first["edgePMU3 PH1 amplitude"] == pytest.approx(230.0)
    assert first["edgePMU3 frequency"] == pytest.approx(49.975)
    assert first["edgePMU3 rocof"] == pytest.approx(-0.5)
    assert [payload["created"] for _, payload in got] == [(SOC + k) * 1000 for k in range(3)]
    assert running.state()["published"] == 3


def test_missing_values_reach_the_bus_as_null_never_as_numbers(bus, running):
    got = collect(bus, "/edgeflex/#")
    cfg = make_config(station="edgePMU3", fmt=(True, False, False, False))
    frame = bytearray(DataFrame(7734, OK_STAT, [(23000, 0)] * 3, -25, -50, [1], [0], cfg,
                                soc=SOC).convert2bytes())  # fmt: skip
    frame[28:30] = b"\x80\x00"  # FREQ after STAT and three 4-byte phasors: missing
    with udp_sender() as sock:
        sock.sendto(cfg.convert2bytes(), running.address)
        time.sleep(0.1)
        sock.sendto(fix_crc(frame), running.address)
        wait_for(lambda: len(got) == 1)
    _, payload = got[0]
    assert payload["edgePMU3 frequency"] is None
    assert payload["edgePMU3 rocof"] == pytest.approx(-0.5)


def test_bad_frames_are_counted_and_the_service_keeps_running(bus, running):
    got = collect(bus, "/edgeflex/#")
    cfg = make_config(station="edgePMU3")
    with udp_sender() as sock:
        sock.sendto(cfg.convert2bytes(), running.address)
        good = data_frame(cfg, 1)
        sock.sendto(good[:-2] + bytes([good[-2] ^ 0xFF, good[-1]]), running.address)  # bad CRC
        sock.sendto(b"\x00" * 20, running.address)
        time.sleep(0.1)
        sock.sendto(good, running.address)
        wait_for(lambda: len(got) == 1)
    state = running.state()
    assert (state["bad_crc"], state["bad_sync"], state["published"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("what", "station", "topic"),
    [
        ("a plain name", "edgePMU3", "/edgeflex/edgePMU3"),
        ("a wildcard cannot widen the topic", "a+b#", "/edgeflex/a_b_"),
        ("a slash cannot add a level", "../x/y", "/edgeflex/.._x_y"),
    ],
)
def test_the_station_name_cannot_choose_another_topic(what, station, topic):
    from adapters.pmu import parse_config

    measurement_config = parse_config(make_config(station=station).convert2bytes())
    frame = data_frame(make_config(station=station), 0)
    measurement = measurement_config.decode_data(frame)[0]
    assert topic_for("/edgeflex/{station}", measurement) == topic, what


def test_bad_configuration_is_reported(bus):
    with pytest.raises(ConfigurationError):
        PmuService(bus, {"port": 0, "topic": "/edgeflex/{nope}"})
    with pytest.raises(ConfigurationError):
        PmuService(bus, {"port": 0, "id_codes": "7734"})


@pytest.mark.parametrize(
    ("what", "config", "says"),
    [
        ("a wildcard in the topic", {"topic": "/edgeflex/+/{station}"}, "`pmu.topic`"),
        ("a topic ending in #", {"topic": "/edgeflex/{station}/#"}, "`pmu.topic`"),
        ("an empty topic", {"topic": ""}, "`pmu.topic`"),
        ("a topic that is not text", {"topic": 7}, "`pmu.topic`"),
        ("the reserved stream id 0", {"id_codes": [0]}, "`pmu.id_codes`"),
        ("the reserved stream id 65535", {"id_codes": [65535]}, "`pmu.id_codes`"),
        ("a stream id beyond 16 bits", {"id_codes": [70_000]}, "`pmu.id_codes`"),
        ("a stream id that is a boolean", {"id_codes": [True]}, "`pmu.id_codes`"),
        ("a prefix that is not text", {"prefix": ["pmu"]}, "`pmu.prefix`"),
        ("qos 3", {"qos": 3}, "`pmu.qos`"),
    ],
)
def test_settings_that_would_fail_or_never_match_are_refused_at_start(bus, what, config, says):
    """The old service took these: a wildcard topic failed at every publish (counted),
    a stream id no frame can carry refused every stream, a list prefix failed per frame."""
    with pytest.raises(ConfigurationError) as raised:
        PmuService(bus, {"port": 0} | config)
    assert says in raised.value.message, what


def test_good_settings_at_their_edges_are_taken(bus):
    config = {"port": 0, "id_codes": [1, 65534], "topic": "/pmu/{id_code}/{station}"}
    service = PmuService(bus, config | {"prefix": "feeder3"})
    try:
        assert service.template == "/pmu/{id_code}/{station}" and service.prefix == "feeder3"
    finally:
        service.receiver.close()
