"""The UDP receiver, fed by pypmu-built frames over a real socket on 127.0.0.1."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from adapters.pmu import PmuReceiver, parse_config
from pbgm.errors import ConfigurationError
from tests.adapters.pmu_peer import (
    OK_STAT,
    SOC,
    DataFrame,
    fix_crc,
    make_config,
    recv_until,
    udp_sender,
)


@pytest.fixture
def sender():
    sock = udp_sender()
    yield sock
    sock.close()


@pytest.fixture
def receiver():
    with PmuReceiver("127.0.0.1", 0, poll_interval=0.05) as rx:
        yield rx


def _data(cfg, k: int) -> bytes:
    phasors = [(230.0 + k, 0.1 * k), (231.0, -2.0944), (229.0, 2.0944)]
    frame = DataFrame(7734, OK_STAT, phasors, -k, 2 * k, [float(k)], [k], cfg, soc=SOC + k)
    return frame.convert2bytes()


def test_cfg2_then_data_over_udp(receiver, sender):
    cfg = make_config()
    sender.sendto(cfg.convert2bytes(), receiver.address)
    assert recv_until(receiver.poll, 1, timeout=0.3) == []  # a CFG-2 yields no measurement
    for k in range(5):
        sender.sendto(_data(cfg, k), receiver.address)
    got = recv_until(receiver.poll, 5)
    assert [m.soc for m in got] == [SOC + k for k in range(5)]
    assert [m.phasors[0].magnitude for m in got] == pytest.approx([230.0 + k for k in range(5)])
    assert [m.frequency for m in got] == pytest.approx([50 - k / 1000 for k in range(5)])
    assert [m.rocof for m in got] == pytest.approx([2 * k / 100 for k in range(5)])
    assert [m.digitals for m in got] == [(k,) for k in range(5)]
    assert (receiver.counters.configs, receiver.counters.measurements) == (1, 5)


def test_configuration_given_at_construction(sender):
    cfg = make_config(fmt=(False, False, False, False), ph_units=[(2000, "i")] * 3)
    config = parse_config(cfg.convert2bytes())
    with PmuReceiver("127.0.0.1", 0, configs=[config]) as rx:
        frame = DataFrame(7734, OK_STAT, [(500, 0)] * 3, 10, 0, [7], [1], cfg, soc=SOC)
        sender.sendto(frame.convert2bytes(), rx.address)
        (m,) = recv_until(rx.poll, 1)
    assert (m.phasors[0].magnitude, m.frequency, m.analogs) == (10.0, 50.01, (7,))


def test_bad_datagrams_are_counted_and_good_ones_still_arrive(receiver, sender):
    cfg = make_config()
    good = _data(cfg, 1)
    bad = [
        good[:-1] + bytes([good[-1] ^ 0xFF]),  # flipped CRC
        good[:20],  # truncated
        fix_crc(good[:4] + (99).to_bytes(2, "big") + good[6:]),  # unknown stream
        good,  # data before the configuration
    ]
    for datagram in [*bad, cfg.convert2bytes(), good]:
        sender.sendto(datagram, receiver.address)
    (m,) = recv_until(receiver.poll, 1)
    counts = receiver.counters.as_dict()
    assert m.soc == SOC + 1
    assert (counts["bad_crc"], counts["truncated"], counts["no_config"]) == (1, 1, 2)
    assert receiver.counters.dropped == 4


def test_random_datagrams_never_stop_the_receiver(receiver, sender):
    cfg = make_config()
    sender.sendto(cfg.convert2bytes(), receiver.address)
    rng = random.Random(37118)
    good = _data(cfg, 3)
    for _ in range(200):
        junk = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            junk[rng.randrange(len(junk))] = rng.randrange(256)
        datagram = fix_crc(junk) if rng.random() < 0.5 else bytes(junk)
        sender.sendto(datagram[: rng.randint(0, len(datagram))], receiver.address)
    sender.sendto(good, receiver.address)
    deadline = time.monotonic() + 5
    while receiver.counters.frames < 202 and time.monotonic() < deadline:
        receiver.poll(0.1)
    counts = receiver.counters
    assert counts.frames == 202
    assert counts.frames == counts.configs + counts.data_frames + counts.ignored + counts.dropped
    assert counts.internal_error == 0


def test_callback_gets_measurements_and_its_errors_are_contained(sender):
    cfg = make_config()
    seen = []

    def callback(m):
        seen.append(m.soc)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    with PmuReceiver("127.0.0.1", 0, on_measurement=callback) as rx:
        sender.sendto(cfg.convert2bytes(), rx.address)
        for k in range(3):
            sender.sendto(_data(cfg, k), rx.address)
        returned = recv_until(rx.poll, 3)
    assert seen == [m.soc for m in returned] == [SOC, SOC + 1, SOC + 2]
    assert rx.counters.callback_error == 1


def test_serve_in_a_thread_stops_at_once_on_close(sender):
    cfg = make_config()
    seen = []
    rx = PmuReceiver("127.0.0.1", 0, on_measurement=seen.append, poll_interval=30.0)
    thread = threading.Thread(target=rx.serve)
    thread.start()
    sender.sendto(cfg.convert2bytes(), rx.address)
    sender.sendto(_data(cfg, 0), rx.address)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    rx.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0  # woken, not waiting out the 30 s poll
    assert len(seen) == 1
    assert rx.poll(0.1) == []


def test_measurements_iterator_ends_after_close(receiver, sender):
    cfg = make_config()
    sender.sendto(cfg.convert2bytes(), receiver.address)
    for k in range(3):
        sender.sendto(_data(cfg, k), receiver.address)
    got = []
    for m in receiver.measurements():
        got.append(m.soc)
        if len(got) == 3:
            receiver.close()
    assert got == [SOC, SOC + 1, SOC + 2]


def test_close_releases_the_port():
    with PmuReceiver("127.0.0.1", 0) as rx:
        address = rx.address
    assert rx.closed
    rx.close()  # idempotent
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        again.bind(address)
    finally:
        again.close()


def test_a_port_in_use_is_a_configuration_error(receiver):
    host, port = receiver.address
    with pytest.raises(ConfigurationError) as info:
        PmuReceiver(host, port)
    assert f"`{host}:{port}`" in info.value.message


@pytest.mark.parametrize(
    ("what", "kwargs", "says"),
    [
        ("a reserved stream id", {"id_codes": [0]}, "`id_codes`"),
        ("a stream id beyond 16 bits", {"id_codes": [7734, 70_000]}, "`id_codes`"),
        ("no stream allowed to be learnt", {"max_streams": 0}, "`max_streams`"),
        ("a poll interval of zero (a busy loop)", {"poll_interval": 0}, "`poll_interval`"),
        ("a negative poll interval", {"poll_interval": -1.0}, "`poll_interval`"),
        ("an infinite poll interval", {"poll_interval": float("inf")}, "`poll_interval`"),
    ],
)
def test_a_receiver_made_with_bad_settings_is_refused(what, kwargs, says):
    with pytest.raises(ConfigurationError) as raised:
        PmuReceiver("127.0.0.1", 0, **kwargs)
    assert says in raised.value.message, what
