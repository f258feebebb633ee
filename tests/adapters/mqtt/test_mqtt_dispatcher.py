"""The hand-over from paho's network thread to the handler thread (`Dispatcher`), without a
broker: every message handled once and in order however the two threads meet, the
batches after which handlers' publishes go out, a full queue, and stopping."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from adapters.mqtt._queues import BATCH, Counters, Dispatcher, Throttle
from pbgm.bus import BusMessage, Subscription


class Recorder:
    """A handler that records payload numbers; it can hold the worker until released."""

    def __init__(self, hold_first: bool = False) -> None:
        self.numbers: list[int] = []
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, message: BusMessage) -> None:
        self.release.wait(10)
        self.numbers.append(int(message.payload))


def dispatcher(handler: Recorder, size: int = 100_000, **kwargs: object) -> Dispatcher:
    made = Dispatcher(Counters(), size, "test-dispatcher", **kwargs)  # type: ignore[arg-type]
    made.add(Subscription.make("t/#", handler, 1))
    made.start()
    return made


def message(number: int) -> BusMessage:
    return BusMessage("t/x", b"%d" % number)


def wait_until(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


@pytest.mark.parametrize(
    ("what_is_checked", "pause_every", "pause_s"),
    [
        ("a steady stream: the worker rarely waits", 0, 0.0),
        ("a trickle: the worker waits and is woken again and again", 7, 0.0002),
        ("bursts with idle gaps between them", 500, 0.005),
    ],
)
def test_every_message_is_handled_once_in_order(
    what_is_checked: str, pause_every: int, pause_s: float
) -> None:
    handler = Recorder()
    worker = dispatcher(handler)
    count = 5000
    for number in range(count):
        worker.offer(message(number))
        if pause_every and number % pause_every == 0:
            time.sleep(pause_s)
    assert wait_until(lambda: len(handler.numbers) >= count, timeout=3.0)
    worker.stop(5)
    assert handler.numbers == list(range(count))


def test_after_batch_runs_every_batch_and_when_the_queue_runs_empty() -> None:
    handler = Recorder(hold_first=True)
    seen: list[int] = []
    worker = dispatcher(handler, after_batch=lambda: seen.append(len(handler.numbers)))
    total = 2 * BATCH + 5
    for number in range(total):  # the first one holds the worker while the rest queue up
        worker.offer(message(number))
    handler.release.set()
    assert wait_until(lambda: len(seen) == 3)
    assert seen == [BATCH, 2 * BATCH, total]
    worker.stop(5)


def test_a_failing_after_batch_does_not_stop_the_worker() -> None:
    handler = Recorder()

    def broken() -> None:
        raise RuntimeError("a bug after the batch")

    worker = dispatcher(handler, after_batch=broken)
    for number in range(3):
        worker.offer(message(number))
        assert wait_until(lambda n=number: len(handler.numbers) == n + 1)
    worker.stop(5)
    assert handler.numbers == [0, 1, 2]


def test_a_full_queue_drops_the_newest_counts_each_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = Recorder(hold_first=True)
    counters = Counters()
    worker = Dispatcher(counters, 5, "test-dispatcher")
    worker.add(Subscription.make("t/#", handler, 1))
    worker.start()
    worker.offer(message(0))
    assert wait_until(lambda: not worker._items)  # the worker holds message 0
    with caplog.at_level(logging.DEBUG, logger="adapters.mqtt"):
        for number in range(1, 10):
            worker.offer(message(number))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert counters.snapshot()["dropped_inbound"] == 4
    assert len(warnings) == 1 and "inbound queue full" in warnings[0].getMessage()
    handler.release.set()
    worker.stop(5)
    assert handler.numbers == [0, 1, 2, 3, 4, 5]


def test_stop_handles_what_is_queued_then_ends_the_batch() -> None:
    handler = Recorder(hold_first=True)
    seen: list[int] = []
    worker = dispatcher(handler, after_batch=lambda: seen.append(len(handler.numbers)))
    for number in range(10):
        worker.offer(message(number))
    threading.Timer(0.05, handler.release.set).start()
    worker.stop(5)
    assert handler.numbers == list(range(10))
    assert seen[-1] == 10


def test_the_throttle_warns_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    throttle = Throttle()
    with caplog.at_level(logging.DEBUG, logger="adapters.mqtt"):
        for number in range(5):
            throttle.warn("dropped `%s`", number)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 4
    assert "more within" in caplog.records[0].getMessage()


def test_a_filter_gets_the_same_subscription_number_in_every_run() -> None:
    first, second = Dispatcher(Counters(), 10, "a"), Dispatcher(Counters(), 10, "b")
    filters = [f"site/{k}/#" for k in range(200)]
    numbers = [first.add(Subscription.make(f, print, 1)) for f in filters]
    assert numbers == [second.add(Subscription.make(f, print, 1)) for f in filters]
    assert len(set(numbers)) == len(filters)  # collisions get the next free number


def test_numbers_of_an_earlier_run_are_routed_by_filter_once_each() -> None:
    counters = Counters()
    made = Dispatcher(counters, 100, "test-dispatcher")
    recorder = Recorder()
    made.add(Subscription.make("t/#", recorder, 1))
    made.start()
    for number in range(3):
        made.offer(message(number), (123_456,))  # an identifier this run never gave
    assert wait_until(lambda: len(recorder.numbers) == 3)
    made.stop(5)
    assert recorder.numbers == [0, 1, 2]
    assert counters.snapshot()["routed_by_filter"] == 3
    assert counters.snapshot()["unmatched"] == 0


def test_a_message_before_its_subscription_is_held_then_handed_over() -> None:
    counters = Counters()
    made = Dispatcher(counters, 100, "test-dispatcher", hold_s=5.0)
    made.start()
    made.hold_from_now()
    made.offer(message(7))
    assert wait_until(lambda: made.held == 1)
    recorder = Recorder()
    made.add(Subscription.make("t/#", recorder, 1))
    assert wait_until(lambda: recorder.numbers == [7])
    made.stop(5)
    assert counters.snapshot()["held_early"] == 1
    assert counters.snapshot()["unmatched"] == 0
