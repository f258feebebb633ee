"""The bus protocol and the in-process `MemoryBus`; `open_bus` and its factories."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from pbgm.bus import (
    Bus,
    BusClosedError,
    BusMessage,
    MemoryBus,
    open_bus,
)
from pbgm.codecs import decoding
from pbgm.errors import ConfigurationError, InvalidInputError
from pbgm.functions import topic_matches


class Inbox(list[BusMessage]):
    def __call__(self, message: BusMessage) -> None:
        self.append(message)


def test_memory_bus_is_a_bus() -> None:
    assert isinstance(MemoryBus(), Bus)


ROUTING = [
    ("exact topic", "a/b", "a/b", True),
    ("plus is one level", "a/+/c", "a/b/c", True),
    ("plus is not two levels", "a/+/c", "a/b/x/c", False),
    ("hash is the rest", "a/#", "a/b/c", True),
    ("hash includes the parent", "a/#", "a", True),
    ("leading slash is a level", "/voltage_control/#", "/voltage_control/measuremnts/pv", True),
    ("no leading slash, no match", "voltage_control/#", "/voltage_control/x", False),
    ("dollar topics skip wildcards", "#", "$SYS/broker", False),
    ("shared subscription matches its filter", "$share/g/a/+", "a/b", True),
]


@pytest.mark.parametrize(("case", "topic_filter", "topic", "delivered"), ROUTING)
def test_routing_follows_mqtt_filters(
    case: str, topic_filter: str, topic: str, delivered: bool
) -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe(topic_filter, inbox)
    bus.publish(topic, b"x")
    assert bool(inbox) is delivered
    if not topic_filter.startswith("$share/"):
        assert topic_matches(topic, topic_filter) is delivered  # same rules as conditions


def test_delivery_is_synchronous_and_in_subscription_order() -> None:
    bus, order = MemoryBus(), []
    bus.subscribe("a/#", lambda m: order.append("hash"))
    bus.subscribe("a/+", lambda m: order.append("plus"))
    bus.publish("a/b", b"1")
    assert order == ["hash", "plus"]


def test_subscribing_a_filter_again_replaces_its_handler() -> None:
    bus, first, second = MemoryBus(), Inbox(), Inbox()
    bus.subscribe("t", first)
    bus.subscribe("t", second)
    bus.publish("t", b"x")
    assert (len(first), len(second)) == (0, 1)


def test_the_delivered_qos_is_the_lower_of_both() -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe("t", inbox, qos=1)
    bus.publish("t", b"x", qos=2)
    bus.publish("t", b"y", qos=0)
    assert [m.qos for m in inbox] == [1, 0]


def test_retained_messages_reach_later_subscribers_until_cleared() -> None:
    bus = MemoryBus()
    bus.publish("limits/bess-01", b"v1", retain=True)
    bus.publish("limits/bess-01", b"v2", retain=True)
    early = Inbox()
    bus.subscribe("limits/+", early)
    assert [(m.payload, m.retain) for m in early] == [(b"v2", True)]
    bus.publish("limits/bess-01", b"", retain=True)
    late = Inbox()
    bus.subscribe("limits/#", late)
    assert late == []


def test_a_live_message_is_not_flagged_retained() -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe("t", inbox)
    bus.publish("t", b"x", retain=True)
    assert inbox[0].retain is False


def test_unsubscribe_stops_delivery_and_counts_the_unmatched() -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe("t", inbox)
    bus.unsubscribe("t")
    bus.unsubscribe("never-subscribed")
    bus.publish("t", b"x")
    assert inbox == []
    assert bus.stats()["unmatched"] == 1


def test_properties_are_delivered_with_user_properties_as_pairs() -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe("req", inbox)
    bus.publish(
        "req",
        b"{}",
        properties={"response_topic": "reply/1", "user_properties": {"authorization": "t"}},
    )
    assert dict(inbox[0].properties) == {
        "response_topic": "reply/1",
        "user_properties": (("authorization", "t"),),
    }


def test_correlation_data_given_as_text_travels_as_bytes() -> None:
    bus, inbox = MemoryBus(), Inbox()
    bus.subscribe("req", inbox)
    bus.publish("req", b"{}", properties={"correlation_data": "abc", "content_type": None})
    assert dict(inbox[0].properties) == {"correlation_data": b"abc"}


def test_handler_failures_are_counted_and_do_not_stop_delivery() -> None:
    bus, inbox = MemoryBus(), Inbox()

    def broken(message: BusMessage) -> None:
        raise RuntimeError("bug")

    bus.subscribe("t/#", broken)
    bus.subscribe("t/edgeflex", decoding("json.edgeflex", lambda m, d: inbox(m)))
    bus.publish("t/edgeflex", b"not json")
    bus.publish("t/edgeflex", b'{"v": 1, "created": 1}')
    stats = bus.stats()
    assert (stats["handler_errors"], stats["malformed"]) == (2, 1)
    assert [m.payload for m in inbox] == [b'{"v": 1, "created": 1}']


def test_a_handler_may_publish_and_subscribe() -> None:
    bus, replies = MemoryBus(), Inbox()

    def answer(message: BusMessage) -> None:
        bus.subscribe("reply", replies)
        bus.publish("reply", message.payload.upper())

    bus.subscribe("ask", answer)
    bus.publish("ask", b"hi")
    assert [m.payload for m in replies] == [b"HI"]


def test_concurrent_publishers_lose_nothing() -> None:
    bus, inbox = MemoryBus(), Inbox()
    lock = threading.Lock()

    def count(message: BusMessage) -> None:
        with lock:
            inbox.append(message)

    bus.subscribe("t/+", count)
    threads = [
        threading.Thread(target=lambda n=n: [bus.publish(f"t/{n}", b"x") for _ in range(200)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inbox) == 800
    assert bus.stats()["received"] == 800


BAD_INPUT = [
    ("empty topic", lambda b: b.publish("", b"x"), "invalid_topic"),
    ("wildcard in a topic name", lambda b: b.publish("a/+", b"x"), "invalid_topic"),
    ("NUL in a topic", lambda b: b.publish("a\0b", b"x"), "invalid_topic"),
    ("qos 3", lambda b: b.publish("a", b"x", qos=3), "invalid_qos"),
    ("qos True", lambda b: b.publish("a", b"x", qos=True), "invalid_qos"),
    ("unknown property", lambda b: b.publish("a", b"x", properties={"ttl": 1}),
     "invalid_message_property"),
    ("reply topic with a wildcard", lambda b: b.publish("a", b"x",
     properties={"response_topic": "r/#"}), "invalid_topic"),
    ("correlation data as a number", lambda b: b.publish("a", b"x",
     properties={"correlation_data": 7}), "invalid_message_property"),
    ("negative expiry", lambda b: b.publish("a", b"x",
     properties={"message_expiry_interval": -1}), "invalid_message_property"),
    ("user property value not text", lambda b: b.publish("a", b"x",
     properties={"user_properties": {"n": 1}}), "invalid_message_property"),
    ("user properties not pairs", lambda b: b.publish("a", b"x",
     properties={"user_properties": ["abc"]}), "invalid_message_property"),
    ("hash not last", lambda b: b.subscribe("a/#/b", print), "invalid_topic_filter"),
    ("partial plus", lambda b: b.subscribe("a/b+", print), "invalid_topic_filter"),
    ("handler not callable", lambda b: b.subscribe("a", "handler"), "invalid_handler"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "action", "code"), BAD_INPUT)
def test_bad_input_is_refused_with_a_code(case: str, action: Any, code: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        action(MemoryBus())
    assert raised.value.code == code


def test_a_closed_bus_refuses_work() -> None:
    bus = MemoryBus()
    bus.close()
    with pytest.raises(BusClosedError) as raised:
        bus.publish("t", b"x")
    assert raised.value.code == "bus_closed"
    with pytest.raises(BusClosedError):
        bus.subscribe("t", print)


def make_recording_bus(config: Mapping[str, Any]) -> MemoryBus:
    """A factory for `open_bus` tests: keeps the config it was given."""
    bus = MemoryBus()
    bus.config = dict(config)  # type: ignore[attr-defined]
    return bus


def test_open_bus_defaults_to_memory() -> None:
    assert isinstance(open_bus({}), MemoryBus)
    assert isinstance(open_bus({"kind": "memory"}), MemoryBus)


def test_open_bus_calls_a_named_factory_without_kind_and_factory() -> None:
    bus = open_bus(
        {"kind": "mqtt", "factory": "tests.test_bus:make_recording_bus", "host": "h", "port": 1}
    )
    assert bus.config == {"host": "h", "port": 1}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("case", "config", "says"),
    [
        ("not a mapping", ["memory"], "must be a mapping"),
        ("unknown kind", {"kind": "carrier-pigeon"}, "no bus implementation named"),
        ("factory without colon", {"factory": "tests.test_bus.make"}, "must read"),
        ("factory module missing", {"factory": "no_such_module:make"}, "cannot be imported"),
        ("factory attribute missing", {"factory": "tests.test_bus:nothing"}, "cannot be imported"),
        ("factory not callable", {"factory": "tests.test_bus:ROUTING"}, "not callable"),
    ],
)
def test_open_bus_explains_what_is_wrong(case: str, config: Any, says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        open_bus(config)
    assert says in raised.value.message
