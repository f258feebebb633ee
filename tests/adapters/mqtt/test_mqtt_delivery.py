"""Messages through a real Mosquitto (TLS and password): QoS, protocols, properties,
handler isolation, malformed payloads, unknown topics and the bounded publish queue."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from adapters.mqtt import MqttBus
from pbgm.bus import BusMessage, BusQueueFullError
from pbgm.codecs import decoding
from tests.adapters.mqtt.conftest import MakeBus
from tests.mqtt_broker import Broker

_topics = itertools.count()

pytestmark = pytest.mark.mosquitto


def fresh_topic(name: str = "t") -> str:
    """A topic no other test uses (the session broker is shared)."""
    return f"test/{name}/{next(_topics)}/{time.monotonic_ns()}"


class Inbox:
    """Collects messages on the handler thread; waits for a count."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self._changed = threading.Condition()

    def __call__(self, message: BusMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[BusMessage]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def subscribed(bus: MqttBus, topic_filter: str, handler: Any, qos: int = 1) -> None:
    """Subscribe and wait for the SUBACK round trip (a publish after it is matched)."""
    bus.subscribe(topic_filter, handler, qos=qos)
    probe = Inbox()
    marker = f"{fresh_topic('probe')}"
    bus.subscribe(marker, probe, qos=1)
    bus.publish(marker, b"x", qos=1)
    assert probe.wait_for(1)
    bus.unsubscribe(marker)


PROTOCOLS = ["5", "3.1.1"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_each_qos_is_delivered_over_each_protocol(
    broker: Broker, make_bus: MakeBus, protocol: str, qos: int
) -> None:
    sender = make_bus(broker.bus_config(protocol=protocol))
    receiver = make_bus(broker.bus_config(user="bob", protocol=protocol))
    topic, inbox = fresh_topic("qos"), Inbox()
    subscribed(receiver, topic, inbox, qos=2)
    for number in range(20):
        sender.publish(topic, b"%d" % number, qos=qos)
    got = inbox.wait_for(20)
    assert [m.payload for m in got] == [b"%d" % n for n in range(20)]
    assert {m.qos for m in got} == {qos}
    assert {m.topic for m in got} == {topic}


def test_the_subscribed_qos_caps_the_delivered_qos(broker: Broker, make_bus: MakeBus) -> None:
    bus = make_bus(broker.bus_config())
    topic, inbox = fresh_topic("cap"), Inbox()
    subscribed(bus, topic, inbox, qos=0)
    bus.publish(topic, b"m", qos=2)
    assert [m.qos for m in inbox.wait_for(1)] == [0]


def test_mqtt5_properties_travel_and_mqtt311_drops_them(broker: Broker, make_bus: MakeBus) -> None:
    properties = {
        "response_topic": "reply/42",
        "correlation_data": b"\x00\x01",
        "content_type": "application/json",
        "user_properties": {"authorization": "Bearer abc"},
    }
    for protocol, expected in (("5", properties), ("3.1.1", {})):
        bus = make_bus(broker.bus_config(protocol=protocol))
        topic, inbox = fresh_topic("props"), Inbox()
        subscribed(bus, topic, inbox)
        bus.publish(topic, b"{}", properties=properties)
        received = dict(inbox.wait_for(1)[0].properties)
        if expected:
            expected = {**expected, "user_properties": (("authorization", "Bearer abc"),)}
        assert received == expected, protocol


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_overlapping_filters_give_each_handler_one_copy(
    broker: Broker, make_bus: MakeBus, protocol: str
) -> None:
    bus = make_bus(broker.bus_config(protocol=protocol))
    base = fresh_topic("wild")
    plus, hash_, exact, last = Inbox(), Inbox(), Inbox(), Inbox()
    subscribed(bus, f"{base}/+/voltage", plus)
    subscribed(bus, f"{base}/#", hash_)
    subscribed(bus, f"{base}/n1/voltage", exact)
    subscribed(bus, f"{base}/end", last)
    bus.publish(f"{base}/n1/voltage", b"1")
    bus.publish(f"{base}/n2/voltage", b"2")
    bus.publish(f"{base}/n2/current", b"3")
    bus.publish(f"{base}/end", b"end")
    last.wait_for(1)
    assert [m.payload for m in hash_.wait_for(4)] == [b"1", b"2", b"3", b"end"]
    assert [m.payload for m in plus.messages] == [b"1", b"2"]
    assert [m.payload for m in exact.messages] == [b"1"]


def test_retained_messages_reach_a_later_subscriber(broker: Broker, make_bus: MakeBus) -> None:
    bus = make_bus(broker.bus_config())
    topic, inbox = fresh_topic("retained"), Inbox()
    bus.publish(topic, b"limits v3", retain=True)
    subscribed(bus, topic, inbox)
    got = inbox.wait_for(1)
    assert got[0].payload == b"limits v3"
    assert got[0].retain is True
    bus.publish(topic, b"", retain=True)  # clear it for the other tests


def test_unsubscribe_stops_delivery(broker: Broker, make_bus: MakeBus) -> None:
    bus = make_bus(broker.bus_config())
    topic, inbox = fresh_topic("unsub"), Inbox()
    subscribed(bus, topic, inbox)
    bus.publish(topic, b"before")
    inbox.wait_for(1)
    bus.unsubscribe(topic)
    probe_topic, probe = fresh_topic("after"), Inbox()
    subscribed(bus, probe_topic, probe)
    bus.publish(topic, b"after")
    bus.publish(probe_topic, b"probe")
    probe.wait_for(1)
    assert [m.payload for m in inbox.messages] == [b"before"]


def test_malformed_payloads_and_failing_handlers_are_counted_and_the_bus_goes_on(
    broker: Broker, make_bus: MakeBus
) -> None:
    bus = make_bus(broker.bus_config())
    base = fresh_topic("bad")
    good: list[dict[str, Any]] = []

    def explode(message: BusMessage) -> None:
        raise RuntimeError("handler bug")

    subscribed(bus, f"{base}/edgeflex", decoding("json.edgeflex", lambda m, d: good.append(d)))
    subscribed(bus, f"{base}/boom", explode)
    for payload in (b"not json", b'{"v": 1}', b"[1]", b"\xff\xfe", b'{"v": 1, "created": 5}'):
        bus.publish(f"{base}/edgeflex", payload)
    bus.publish(f"{base}/boom", b"{}")
    bus.publish(f"{base}/edgeflex", b'{"v": 2, "created": 6}')
    assert wait_until(lambda: len(good) == 2)
    stats = bus.stats()
    assert (stats["malformed"], stats["handler_errors"]) == (4, 1)
    assert good == [{"v": 1, "created": 5}, {"v": 2, "created": 6}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_message_no_handler_wants_is_counted(
    broker: Broker, make_bus: MakeBus, protocol: str
) -> None:
    # A persistent session keeps the subscriptions of an earlier run; the new run did
    # not ask for them, so their messages reach the client with no handler to take them.
    base, client_id = fresh_topic("unknown"), f"unknown-{protocol}-{time.monotonic_ns()}"
    config = broker.bus_config(
        protocol=protocol, client_id=client_id, persistent_session=True, hold_unmatched_s=0.3
    )
    earlier = make_bus(config)
    subscribed(earlier, f"{base}/#", Inbox())
    earlier.close()
    later = make_bus(config)
    inbox, known = Inbox(), fresh_topic("known")
    subscribed(later, known, inbox)
    later.publish(f"{base}/stray", b"1")
    later.publish(known, b"2")
    assert [m.payload for m in inbox.wait_for(1)] == [b"2"]
    # held for a subscription made within the window, then dropped and counted
    deadline = time.monotonic() + 5
    while later.stats()["unmatched"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert later.stats()["unmatched"] == 1
    assert later.stats()["held"] == 0
    assert later.connected


def test_a_slow_handler_does_not_block_the_network_loop(broker: Broker, make_bus: MakeBus) -> None:
    # acknowledged on receipt: by default (`ack_after_handling`) the broker would hold the
    # rest back until the blocked handler acknowledged, which is flow control, not a block
    bus = make_bus(broker.bus_config(keepalive=5, ack_after_handling=False))
    topic, release, inbox = fresh_topic("slow"), threading.Event(), Inbox()

    def slow(message: BusMessage) -> None:
        release.wait(10)
        inbox(message)

    subscribed(bus, topic, slow)
    for number in range(50):
        bus.publish(topic, b"%d" % number)
    # every message arrives from the broker while the handler is still blocked
    assert wait_until(lambda: bus.stats()["received"] >= 51)
    assert inbox.messages == []
    release.set()
    assert len(inbox.wait_for(50)) == 50


QUEUE_CASES = [
    ("drop the oldest keeps the newest", "drop_oldest", list(range(3, 8)), 3),
    ("drop the newest keeps the first", "drop_newest", list(range(0, 5)), 3),
    ("raise refuses the sixth", "raise", list(range(0, 5)), 3),
]


@pytest.mark.parametrize(("case", "policy", "delivered", "dropped"), QUEUE_CASES)
def test_publishing_while_disconnected_is_bounded_by_the_queue(
    broker: Broker, make_bus: MakeBus, case: str, policy: str, delivered: list[int], dropped: int
) -> None:
    receiver = make_bus(broker.bus_config(user="bob"))
    topic, inbox = fresh_topic("queue"), Inbox()
    subscribed(receiver, topic, inbox)
    sender = make_bus(broker.bus_config(queue_size=5, queue_policy=policy), connect=False)
    refused = 0
    for number in range(8):
        try:
            sender.publish(topic, b"%d" % number)
        except BusQueueFullError:
            refused += 1
    stats = sender.stats()
    assert (stats["queued"], stats["dropped_full_queue"]) == (5, dropped)
    assert refused == (dropped if policy == "raise" else 0)
    sender.connect(timeout=5)
    got = inbox.wait_for(5)
    time.sleep(0.1)
    assert [int(m.payload) for m in inbox.messages] == delivered
    assert len(got) == 5
    assert sender.stats()["queued"] == 0


@pytest.mark.parametrize("qos", [0, 1])
def test_what_handlers_publish_goes_out_complete_and_in_order(
    broker: Broker, make_bus: MakeBus, qos: int
) -> None:
    """Handlers' publishes are handed to paho after each batch of received messages."""
    relay, sender = make_bus(broker.bus_config()), make_bus(broker.bus_config(user="bob"))
    receiver = make_bus(broker.bus_config(user="bob"))
    source, target, inbox = fresh_topic("burst-in"), fresh_topic("burst-out"), Inbox()
    subscribed(receiver, target, inbox, qos=qos)
    subscribed(relay, source, lambda m: relay.publish(target, m.payload, qos=qos), qos=qos)
    count = 2000
    for number in range(count):
        sender.publish(source, b"%d" % number, qos=1)
    got = inbox.wait_for(count, timeout=30)
    assert [int(m.payload) for m in got] == list(range(count))
    assert relay.stats()["published"] >= count


def test_close_sends_what_a_handler_published_before_it(broker: Broker, make_bus: MakeBus) -> None:
    bus, receiver = make_bus(broker.bus_config()), make_bus(broker.bus_config(user="bob"))
    source, target, inbox = fresh_topic("close-in"), fresh_topic("close-out"), Inbox()
    subscribed(receiver, target, inbox)
    published, release = threading.Event(), threading.Event()

    def publish_then_hold(message: BusMessage) -> None:
        bus.publish(target, message.payload)
        published.set()
        release.wait(10)  # the batch is not over: the publish waits in the bus

    subscribed(bus, source, publish_then_hold)
    bus.publish(source, b"last words")
    assert published.wait(5)
    threading.Timer(0.2, release.set).start()
    bus.close(timeout=5)
    assert [m.payload for m in inbox.wait_for(1)] == [b"last words"]
