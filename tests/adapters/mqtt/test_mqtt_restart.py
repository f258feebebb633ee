"""The broker restarts in the middle of a QoS 1 stream: nothing is lost.

A publisher sends N numbered messages at a steady pace; after a third of them the broker
is stopped (SIGTERM: mosquitto saves its sessions) and after two thirds started again.
The subscriber has a persistent session. Every number must arrive; QoS 1 is "at least
once", so a message whose acknowledgement was cut by the restart may come twice, and
duplicates are allowed (and reported in the assertion message).
"""

from __future__ import annotations

import threading
import time

import pytest

from pbgm.bus import BusMessage
from tests.adapters.mqtt.conftest import MakeBus
from tests.mqtt_broker import Broker

N = 500

pytestmark = pytest.mark.mosquitto


class Numbers:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self._changed = threading.Condition()

    def __call__(self, message: BusMessage) -> None:
        with self._changed:
            self.seen.append(int(message.payload))
            self._changed.notify_all()

    def wait_all(self, count: int, timeout: float) -> set[int]:
        with self._changed:
            self._changed.wait_for(lambda: len(set(self.seen)) >= count, timeout)
            return set(self.seen)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_no_message_is_lost_across_a_broker_restart(
    own_broker: Broker, make_bus: MakeBus, protocol: str
) -> None:
    topic = f"stream/{protocol}"
    common = {"protocol": protocol, "persistent_session": True, "max_delay": 0.3}
    subscriber = make_bus(own_broker.bus_config(user="bob", client_id=f"sub-{protocol}", **common))
    numbers = Numbers()
    subscriber.subscribe(topic, numbers, qos=1)
    publisher = make_bus(own_broker.bus_config(client_id=f"pub-{protocol}", **common))
    time.sleep(0.2)  # the SUBACK
    queued_while_down = 0
    for number in range(N):
        if number == N // 3:
            own_broker.stop()
        if number == 2 * N // 3:
            queued_while_down = publisher.stats()["queued"]
            own_broker.start()
        publisher.publish(topic, b"%d" % number, qos=1)
        time.sleep(0.002)
    got = numbers.wait_all(N, timeout=20)
    missing = sorted(set(range(N)) - got)
    duplicates = len(numbers.seen) - len(got)
    assert missing == [], f"{len(missing)} lost, {duplicates} duplicates"
    assert queued_while_down > N // 4  # the stream really ran into the outage
    for bus in (subscriber, publisher):
        stats = bus.stats()
        assert stats["reconnects"] >= 1
        assert stats["dropped_full_queue"] == 0
    # the subscription is alive after the restart: a new message still arrives
    publisher.publish(topic, b"%d" % N, qos=1)
    assert N in numbers.wait_all(N + 1, timeout=5)
