"""Bus benchmark: the event service against a raw paho round trip, and policy propagation.

All on the local Mosquitto (127.0.0.1:1883, anonymous, started before the run), QoS 1
on every hop. One paho publisher and one paho receiver measure every path; only the
middle changes:

- `raw one hop`: publisher -> broker -> receiver (the broker's own round trip);
- `raw relay` (the floor): publisher -> broker -> a bare paho client that republishes
  each message -> broker -> receiver: the same two hops as the event service, with no
  decoding, no decision, no obligation;
- `MqttBus relay`: the same with `adapters.mqtt.MqttBus` in the middle (its handler
  thread republishing each message): what the adapter costs over raw paho;
- `event service`: publisher -> broker -> `adapters.mqtt.MqttBus` -> `pbgm.events.
  EventService` (json.edgeflex decode, request with RoCoF over its window, PDP decision,
  deny-biased PEP) -> `publish_notification` obligation -> broker -> receiver.

Each path is measured twice: latency at a steady 500 events/s (p50/p99 of publish ->
receive), and throughput with a burst published as fast as paho takes it (events/s from
the first publish to the last receipt). Measurements come from 100 PMUs at 50 samples/s
of simulated time, each message naming its number through device and `created`.

Propagation (`pbgm.loader`): time from a policy change committed through the admin API
(REST PUT + publish on a real HTTP server) to the loader's callback, by push (the API's
change notice over Mosquitto) and by poll (1 s refresh interval). It reuses the API and
loader test fixtures (`tests.api.conftest`, `tests.test_loader`).

Run: `.venv/bin/python -m benchmarks.bus [--quick]`; results in `benchmarks/results/bus.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
import secrets
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST, PORT = "127.0.0.1", 1883
RESULTS = Path(__file__).parent / "results" / "bus.json"
DEVICES = 100
PERIOD_MS = 20
BASE_MS = 1_700_000_000_000
STEADY_RATE = 500
WINDOW = 100


def paho_client(name: str) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{secrets.token_hex(3)}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.on_socket_open = _no_delay
    client.connect(HOST, PORT)
    client.loop_start()
    return client


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """Small messages go out at once (no Nagle): as `adapters.mqtt` does."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def sample(seq: int) -> tuple[str, bytes]:
    """Measurement `seq`: PMU `seq % DEVICES`, sample time from `seq // DEVICES`."""
    device, step = seq % DEVICES, seq // DEVICES
    created = BASE_MS + step * PERIOD_MS
    frequency = 50.0 - 0.002 * (step % 50)
    payload = (
        f'{{"frequency": {frequency:.4f}, "active_power": 1.5, "seq": {seq}, "created": {created}}}'
    )
    return f"bench/in/pmu{device}/ch0", payload.encode()


def seq_of_notification(payload: bytes) -> int:
    event = json.loads(payload)["event"]
    moment = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    step = round((moment.timestamp() * 1000 - BASE_MS) / PERIOD_MS)
    return step * DEVICES + int(event["device"].removeprefix("pmu"))


class Harness:
    """Publishes numbered measurements, times each one back on the output topic."""

    def __init__(self, out_topic: str, seq_of: Callable[[bytes], int]) -> None:
        self.seq_of = seq_of
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.last = 0.0
        self._done = threading.Condition()
        self.receiver = paho_client("receiver")
        self.receiver.on_message = self._on_message
        self.receiver.subscribe(out_topic, qos=1)
        self.publisher = paho_client("publisher")
        time.sleep(0.3)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.perf_counter()
        seq = self.seq_of(message.payload)
        with self._done:
            sent = self.sent.pop(seq, None)
            if sent is not None:
                self.latencies.append(now - sent)
                self.last = now
                self._done.notify_all()

    def run(self, first: int, count: int, rate: float | None) -> dict[str, float]:
        """Send `count` messages, paced at `rate`/s, or (None) as fast as the path
        answers with at most `WINDOW` messages on their way (a closed loop: an open one
        measures the broker's queue limits, not the path)."""
        self.latencies, started = [], time.perf_counter()
        for seq in range(first, first + count):
            if rate:
                delay = started + (seq - first) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            topic, payload = sample(seq)
            with self._done:
                if not rate:
                    self._done.wait_for(lambda: len(self.sent) < WINDOW, timeout=10)
                self.sent[seq] = time.perf_counter()
            self.publisher.publish(topic, payload, qos=1)
        with self._done:
            self._done.wait_for(lambda: len(self.latencies) >= count, timeout=60)
            received, last = len(self.latencies), self.last
        return summary(self.latencies, count, received, last - started)

    def close(self) -> None:
        stop(self.publisher)
        stop(self.receiver)


def summary(latencies: list[float], sent: int, received: int, elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "sent": sent,
        "received": received,
        "events_per_s": round(received / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 3),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "mean_ms": round(1000 * statistics.fmean(ordered), 3),
    }


def measure(harness: Harness, steady: int, burst: int) -> dict[str, Any]:
    harness.run(10_000_000, 200, STEADY_RATE)  # warm-up
    return {
        "steady": harness.run(0, steady, STEADY_RATE),
        "burst": harness.run(steady, burst, None),
    }


# --- the middles ------------------------------------------------------------------------


def _use_port(port: int) -> None:
    global PORT
    PORT = port


def _relay_main(port: int, ready: Any, finished: Any, results: Any) -> None:
    _use_port(port)
    relay = paho_client("relay")
    relay.on_message = lambda c, u, m: c.publish("bench/out/raw", m.payload, qos=1)
    relay.subscribe("bench/in/+/ch0", qos=1)
    time.sleep(0.3)
    ready.set()
    finished.wait()
    stop(relay)
    results.put({})


def _bus_relay_main(port: int, ready: Any, finished: Any, results: Any) -> None:
    """The adapter alone: `MqttBus` handler thread republishing each message."""
    _use_port(port)
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus({"host": HOST, "port": PORT, "client_id": "bench-bus-relay"})
    bus.subscribe("bench/in/+/ch0", lambda m: bus.publish("bench/out/bus", m.payload), qos=1)
    time.sleep(0.3)
    ready.set()
    finished.wait()
    counters = {"bus": bus.stats()}
    bus.close()
    results.put(counters)


def _bench_policy() -> dict[str, Any]:
    from pbgm.testing import permit, policy_document

    notify = {"id": "publish_notification", "attributes": {"topic": "bench/out/events"}}
    return policy_document(
        "bench-notify-every-sample",
        policy_type="service_trigger",
        policy_group="bench",
        rules=[
            permit(
                "notify",
                target={"action": {"id": "publish"}, "resource": {"kind": "measurement"}},
                condition={"apply": "greater-than", "args": [{"attr": "resource.frequency"}, 45]},
                obligations=[notify],
            )
        ],
        content={
            "event": {
                "topics": ["bench/never"],
                "conditions": [{"variable": "x", "operator": "greater_than", "threshold": 1}],
            },
            "actions": [{"kind": "publish_notification", "topic": "bench/never"}],
            "cooldown_s": 0,
        },
    )


def _events_main(port: int, ready: Any, finished: Any, results: Any) -> None:
    _use_port(port)
    from adapters.mqtt import open_mqtt_bus
    from pbgm.events import EventService, EventServiceConfig
    from pbgm.testing import memory_store

    bus = open_mqtt_bus({"host": HOST, "port": PORT, "client_id": "bench-events"})
    subscription = {"topic": "bench/in/+/ch0", "kind": "measurement", "device_level": 2}
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [subscription], "policy_group": "bench", "refresh_ms": 60_000}
    )
    service = EventService(config, bus=bus, store=memory_store(policies=[_bench_policy()]))
    with service:
        time.sleep(0.3)
        ready.set()
        finished.wait()
        counters = {"events": service.stats(), "bus": bus.stats()}
    bus.close()
    results.put(counters)


@contextmanager
def middle(main: Callable[[int, Any, Any, Any], None]) -> Iterator[dict[str, Any]]:
    """Run a middle in its own process (its own GIL, as in production)."""
    context = multiprocessing.get_context("spawn")
    ready, finished, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=main, args=(PORT, ready, finished, results), daemon=True)
    process.start()
    if not ready.wait(60):
        process.terminate()
        raise RuntimeError("the middle process did not start")
    counters: dict[str, Any] = {}
    try:
        yield counters
    finally:
        finished.set()
        counters.update(results.get(timeout=60))
        process.join(30)


# --- propagation ------------------------------------------------------------------------


def propagation(pushes: int, polls: int) -> dict[str, Any]:
    """Admin change -> loader callback, by push over Mosquitto and by a 1 s poll."""
    import tempfile

    from adapters.mqtt import open_mqtt_bus
    from pbgm.api._notify import install_change_notifications
    from pbgm.keys import KeyRing
    from tests.api.conftest import SECRET, Server, make_world
    from tests.test_loader import BESS, admin_update, make_loader

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        KeyRing(root / "keys").generate()
        server = Server()
        world = make_world(server, root / "keys")
        topic = f"bench/changes/{secrets.token_hex(3)}"
        api_bus = open_mqtt_bus({"host": HOST, "port": PORT, "client_id": "bench-api"})
        loader_bus = open_mqtt_bus({"host": HOST, "port": PORT, "client_id": "bench-loader"})
        install_change_notifications(world.app, api_bus, world.store, topic=topic)
        for name in ("push", "poll"):
            (root / name).mkdir()
            (root / name / "secret").write_text(SECRET)
        pushed, by_push = make_loader(
            world, root / "push", BESS, bus=loader_bus, refresh_interval_s=3600,
            notifications={"topic": topic},
        )  # fmt: skip
        polled, by_poll = make_loader(world, root / "poll", BESS, refresh_interval_s=1)
        push_s: list[float] = []
        poll_s: list[float] = []
        try:
            with pushed, polled:
                version = 1
                by_push.wait_for(lambda item: item.version == 1)
                by_poll.wait_for(lambda item: item.version == 1)
                time.sleep(0.3)
                for k in range(max(pushes, polls)):
                    version += 1
                    started = time.perf_counter()
                    admin_update(world, 1.05 + 0.001 * k)
                    by_push.wait_for(lambda item, v=version: item.version == v)
                    push_s.append(time.perf_counter() - started)
                    if k < polls:
                        by_poll.wait_for(lambda item, v=version: item.version == v)
                        poll_s.append(time.perf_counter() - started)
        finally:
            api_bus.close()
            loader_bus.close()
            server.close()
    return {"push": _seconds(push_s), "poll": _seconds(poll_s)}


def _seconds(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "samples": len(ordered),
        "p50_s": round(ordered[len(ordered) // 2], 4),
        "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
        "max_s": round(ordered[-1], 4),
    }


# --- the run ----------------------------------------------------------------------------


@contextmanager
def own_broker() -> Iterator[None]:
    """A private mosquitto on a free port with `set_tcp_nodelay true`: without it the
    broker holds small messages back (Nagle) for up to tens of milliseconds on every
    two-hop path, which hides what the middles cost."""
    import subprocess
    import tempfile

    from tests.mqtt_broker import free_port, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        )
        process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        _use_port(port)
        time.sleep(0.5)
        try:
            yield
        finally:
            process.terminate()
            process.wait(10)


def run(quick: bool, broker: str) -> dict[str, Any]:
    steady, burst = (1000, 3000) if quick else (2500, 10000)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or "?"},
        "settings": {
            "broker": f"{HOST}:{PORT} ({broker})",
            "qos": 1,
            "steady_rate": STEADY_RATE,
            "steady": steady,
            "burst": burst,
            "burst_window": WINDOW,
        },
    }
    one_hop = Harness("bench/in/+/ch0", _seq_of_sample)
    results["raw one hop"] = measure(one_hop, steady, burst)
    one_hop.close()
    with middle(_relay_main):
        harness = Harness("bench/out/raw", _seq_of_sample)
        results["raw relay"] = measure(harness, steady, burst)
        harness.close()
    with middle(_bus_relay_main):
        harness = Harness("bench/out/bus", _seq_of_sample)
        results["MqttBus relay"] = measure(harness, steady, burst)
        harness.close()
    with middle(_events_main) as stats:
        harness = Harness("bench/out/events", seq_of_notification)
        results["event service"] = measure(harness, steady, burst)
        harness.close()
    results["event service counters"] = stats
    floor, ours = results["raw relay"], results["event service"]
    adapter = results["MqttBus relay"]
    results["ratios"] = {
        "p50 MqttBus relay / raw relay (steady)": round(
            adapter["steady"]["p50_ms"] / floor["steady"]["p50_ms"], 2
        ),
        "p50 event service / raw relay (steady)": round(
            ours["steady"]["p50_ms"] / floor["steady"]["p50_ms"], 2
        ),
        "events/s event service / raw relay (burst)": round(
            ours["burst"]["events_per_s"] / floor["burst"]["events_per_s"], 2
        ),
    }
    results["propagation"] = propagation(*((5, 2) if quick else (20, 5)))
    return results


def _seq_of_sample(payload: bytes) -> int:
    return int(json.loads(payload)["seq"])


def print_table(results: dict[str, Any]) -> None:
    print(f"{'path':<16}{'mode':<8}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'lost':>6}")
    for path in ("raw one hop", "raw relay", "MqttBus relay", "event service"):
        for mode in ("steady", "burst"):
            row = results[path][mode]
            lost = row["sent"] - row["received"]
            print(
                f"{path:<16}{mode:<8}{row['events_per_s']:>10.0f}{row['p50_ms']:>9.2f}"
                f"{row['p99_ms']:>9.2f}{lost:>6}"
            )
    for name, value in results["ratios"].items():
        print(f"{name}: {value}")
    for how, row in results["propagation"].items():
        print(f"propagation by {how}: p50 {row['p50_s']:.3f} s, p99 {row['p99_s']:.3f} s "
              f"({row['samples']} changes)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and changes")
    parser.add_argument(
        "--broker",
        choices=("local", "own"),
        default="local",
        help="local: the running broker on 127.0.0.1:1883 (default); own: a private "
        "mosquitto with TCP_NODELAY on a free port",
    )
    arguments = parser.parse_args()
    if arguments.broker == "own":
        with own_broker():
            results = run(arguments.quick, "own, set_tcp_nodelay true")
    else:
        results = run(arguments.quick, "local")
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    target = RESULTS if arguments.broker == "local" else RESULTS.with_name("bus-own-broker.json")
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {target}")


if __name__ == "__main__":
    main()
