"""Where the event service's time goes, per message: the split of its handler thread.

The throughput of a path says how fast it is, not why. The handler's parts (decode,
request, decision, obligation) and `MqttBus.publish` are timed in a process of their own
with the calling thread's CPU clock; paho's network thread and the handler thread as a
whole come from the CPU clocks of the event service's QoS 1 drains (`network_share`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.bus_load import HOST, SPAWN, sample
from benchmarks.bus_middles import BUS_QUEUES, _use_source, event_service


def _timed(target: Any, name: str, totals: dict[str, int]) -> None:
    """Replace `target.<name>` (on the instance) by a wrapper adding the CPU time of the
    calling thread to totals (wall time would count the waits for the GIL that paho's
    network thread holds)."""
    inner = getattr(target, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[name] += time.thread_time_ns() - started

    setattr(target, name, timed)


class NullBus:
    """A bus that drops what is published: the handler's own cost, without the network."""

    def publish(self, topic: str, payload: bytes, **options: Any) -> None:
        pass

    def subscribe(self, topic_filter: str, handler: Any, **options: Any) -> None:
        pass

    def unsubscribe(self, topic_filter: str) -> None:
        pass

    def close(self) -> None:
        pass


def _split_main(port: int, source: str | None, count: int, results: Any) -> None:
    """CPU µs per message: the handler's parts with `handle` called on this thread over a
    `NullBus`, and `MqttBus.publish` (through paho) called back to back, as the handler
    thread does after each batch. Each timed part costs two reads of the thread's CPU
    clock (well under a µs) more than it would."""
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus
    from pbgm.bus import BusMessage
    from pbgm.codecs import get_codec

    service = event_service(NullBus(), 1)
    messages = [BusMessage(*sample(seq), 1) for seq in range(2 * count)]
    for message in messages[:count]:  # warm-up, and compiles the policy group
        service.handle(message)
    totals = dict.fromkeys(("handle", "decode", "enforce", "decide", "publish"), 0)
    _timed(get_codec("json.edgeflex"), "decode", totals)
    _timed(service.enforcer, "enforce", totals)
    _timed(service.policies.decider("bench"), "decide", totals)
    _timed(service, "handle", totals)
    for message in messages[count:]:
        service.handle(message)
    bus = open_mqtt_bus({**BUS_QUEUES, "host": HOST, "port": port, "client_id": "bench-split"})
    payload = b'{"event":{"kind":"measurement","topic":"bench/in/pmu7/ch0","time":"2023-11-14T22:13:20Z","device":"pmu7","subject":"pmu7","policy_ids":["bench-notify-every-sample"],"rocof":-0.1,"delta_p":0.0}}'  # noqa: E501
    _timed(bus, "publish", totals)
    for k in range(count):
        bus.publish("bench/split", payload, qos=1)
        if k % 32 == 31:
            time.sleep(0.001)  # the next batch: paho's network thread sends meanwhile
    bus.close()
    us = {k: v / count / 1000 for k, v in totals.items()}
    parts = {
        "decode": us["decode"],
        "request": us["handle"] - us["decode"] - us["enforce"],
        "decide": us["decide"],
        "obligation": us["enforce"] - us["decide"],
        "handler, in process": us["handle"],
        "publish (MqttBus and paho, caller's side)": us["publish"],
    }
    results.put({k: round(v, 1) for k, v in parts.items()})


def split(port: int, source: str | None, count: int) -> dict[str, float]:
    results = SPAWN.Queue()
    process = SPAWN.Process(target=_split_main, args=(port, source, count, results), daemon=True)
    process.start()
    out: dict[str, float] = results.get(timeout=300)
    process.join(30)
    return out


def network_share(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The event service's CPU per event by thread in the QoS 1 drains, mean of the rounds."""
    labels = {"paho-mqtt-client": "paho network thread", "pbgm-mqtt": "handler thread"}
    per_label: dict[str, list[float]] = {}
    for one in rounds:
        for name, us in one["event service"]["qos1"]["drain"]["cpu_us_per_event"].items():
            label = next((v for k, v in labels.items() if name.startswith(k)), name)
            per_label.setdefault(f"{label} (QoS 1 drain, CPU)", []).append(us)
    return {label: round(statistics.fmean(v), 1) for label, v in per_label.items()}
