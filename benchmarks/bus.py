"""Bus benchmark: the event service beside the best raw paho relay, and policy propagation.

Every path runs in its own processes (each with its own GIL, as in production): a load
generator (paho) publishes numbered measurements, the middle under test handles them,
and a counting subscriber (paho) receives the output. The paths:

- `raw one hop`: generator -> broker -> counter (the broker's own round trip);
- `raw relay` (the floor): generator -> broker -> a bare paho client republishing each
  message from its `on_message` -> broker -> counter: the same two hops as the event
  service, with no decoding, no decision, no obligation;
- `MqttBus relay`: the same with `adapters.mqtt.MqttBus` in the middle (its handler thread
  republishing): what the adapter costs over raw paho;
- `event service`: generator -> broker -> `MqttBus` -> `pbgm.events.EventService`
  (json.edgeflex decode, request with RoCoF and power step over their windows, PDP
  decision, deny-biased PEP) -> `publish_notification` obligation -> broker -> counter.

Every paho client here uses paho's fastest settings (no in-flight window of its own,
TCP_NODELAY); every hop uses the same QoS, 0 or 1. Each path and QoS is measured:

- throughput, generator running: `burst` messages published as fast as the path takes
  them, at most `WINDOW` on their way (the generator reads the counter's count from
  shared memory, so no queue grows without bound); events/s from the first publish to
  the last arrival. On a small machine the generator and the counter take CPU from the
  middle, so also:
- drain: the middle process is stopped (SIGSTOP) while `burst` messages are published,
  then resumed; events/s from its resumption to the last arrival, with the generator
  idle. The middle's CPU time per event, by thread, is measured here; 1e6 / its total
  is the events per CPU-second, what the process would do with a core to itself;
- latency: 500 events/s for `steady` messages, p50/p99 of publish -> receipt
  (`perf_counter` is the system's monotonic clock, shared by the processes).

Rounds are interleaved (all paths, then all paths again) so a change in the machine's
load shows in every path alike. The split of the event service (µs per message: paho's
network thread and the handler thread from their CPU clocks in the drain; within the
handler, decode, request, decision, obligation and the publish call, timed in process
with the thread's CPU clock) says where the time goes.

Broker: by default (`--broker own`) a private mosquitto on a free port with its best
settings for this load: `set_tcp_nodelay true` (the default `false` lets Nagle hold back
small messages, ~15 ms per two-hop path) and no in-flight or queue limits of its own;
`--broker local` uses the running one on 127.0.0.1:1883 as it is configured (a default
mosquitto keeps at most 1000 QoS 1 messages for a stopped client: the rest of a drain's
burst is dropped and shows as lost).

Propagation (`pbgm.loader`): time from a policy change committed through the admin API
(REST PUT + publish on a real HTTP server) to the loader's callback, by push (the API's
change notice over MQTT) and by poll (1 s refresh interval), reusing the API and loader
test fixtures (`tests.api.conftest`, `tests.test_loader`).

Run: `.venv/bin/python -m benchmarks.bus [--quick] [--broker own|local] [--source DIR]`;
results in `benchmarks/results/bus.json` (`bus-local-broker.json` for `--broker local`).
`--source DIR` imports `pbgm` and `adapters` of the middles from another source tree,
to compare two versions on the same machine state.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
RESULTS = Path(__file__).parent / "results" / "bus.json"
DEVICES = 100
PERIOD_MS = 20
BASE_MS = 1_700_000_000_000
STEADY_RATE = 500
WINDOW = 1000
PATHS = ("raw one hop", "raw relay", "MqttBus relay", "event service")
BUS_QUEUES = {"inbound_queue_size": 1_000_000, "queue_size": 1_000_000}  # a whole burst waits
SPAWN = multiprocessing.get_context("spawn")


def paho_client(name: str, port: int) -> mqtt.Client:
    """A connected paho client with its network thread, at paho's fastest settings."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{secrets.token_hex(3)}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(0)  # no window: paho scans it on every PUBACK
    client.max_queued_messages_set(0)
    client.on_socket_open = _no_delay
    client.connect(HOST, port)
    client.loop_start()
    return client


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
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


def seq_of_sample(payload: bytes) -> int:
    return int(json.loads(payload)["seq"])


def seq_of_notification(payload: bytes) -> int:
    event = json.loads(payload)["event"]
    moment = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    step = round((moment.timestamp() * 1000 - BASE_MS) / PERIOD_MS)
    return step * DEVICES + int(event["device"].removeprefix("pmu"))


# --- the load generator and the counter (processes of their own) -------------------------


def _generator_main(port: int, qos: int, jobs: Any, done: Any, counted: Any) -> None:
    """Publishes the jobs' messages: paced at `rate`/s, or as fast as the path takes
    them with at most `window` not yet counted."""
    client = paho_client("generator", port)
    while (job := jobs.get()) is not None:
        first, count, rate, window = job
        sent = [0.0] * count
        started = time.perf_counter()
        for k in range(count):
            if rate:
                delay = started + k / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            else:
                while k - counted.value >= window:
                    time.sleep(0.0002)
            topic, payload = sample(first + k)
            sent[k] = time.perf_counter()
            client.publish(topic, payload, qos=qos)
        done.put(sent if rate else sent[:1])
    stop(client)


def _counter_main(port: int, topic: str, qos: int, jobs: Any, done: Any, counted: Any) -> None:
    """Counts arrivals in shared memory; keeps (time, payload) of each for latency jobs,
    else the time of every hundredth."""
    client = paho_client("counter", port)
    state: dict[str, Any] = {"keep": False, "marks": [], "kept": [], "step": 1}

    def on_message(c: Any, u: Any, message: Any) -> None:
        n = counted.value = counted.value + 1
        now = time.perf_counter()
        if state["keep"]:
            state["kept"].append((now, message.payload))
        elif n % state["step"] == 0:
            state["marks"].append((n, now))
        state["last"] = (n, now)

    client.on_message = on_message
    client.subscribe(topic, qos=qos)
    time.sleep(0.3)
    done.put("ready")
    while (job := jobs.get()) is not None:
        count, keep = job
        state.update(keep=keep, marks=[], kept=[], step=max(1, count // 100), last=(0, 0.0))
        done.put("armed")
        _wait_for_count(counted, count)
        done.put({"marks": state["marks"], "kept": state["kept"], "last": state["last"]})
    stop(client)


def _wait_for_count(counted: Any, count: int, idle_s: float = 5.0) -> None:
    """Until `count` arrived, or nothing arrived for `idle_s` (messages lost)."""
    seen, since = -1, time.perf_counter()
    while counted.value < count and time.perf_counter() - since < idle_s:
        if counted.value != seen:
            seen, since = counted.value, time.perf_counter()
        time.sleep(0.01)


# --- the middles (each in its own process) -------------------------------------------------


def _use_source(source: str | None) -> None:
    if source:
        sys.path.insert(0, source)


def _raw_relay_main(port: int, qos: int, source: str | None, ready: Any, finished: Any) -> None:
    relay = paho_client("relay", port)
    relay.on_message = lambda c, u, m: c.publish("bench/out/raw", m.payload, qos=qos)
    relay.subscribe("bench/in/+/ch0", qos=qos)
    time.sleep(0.3)
    ready.put(_thread_ids())
    finished.get()
    stop(relay)
    ready.put({})


def _bus_relay_main(port: int, qos: int, source: str | None, ready: Any, finished: Any) -> None:
    """The adapter alone: `MqttBus` handler thread republishing each message."""
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus({**BUS_QUEUES, "host": HOST, "port": port, "client_id": "bench-relay"})
    bus.subscribe("bench/in/+/ch0", lambda m: bus.publish("bench/out/bus", m.payload, qos=qos))
    time.sleep(0.3)
    ready.put(_thread_ids())
    finished.get()
    counters = {"bus": bus.stats()}
    bus.close()
    ready.put(counters)


def bench_policy(qos: int = 1) -> dict[str, Any]:
    """A `service_trigger` policy that notifies on every measurement above 45 Hz."""
    from pbgm.testing import permit, policy_document

    notify = {"id": "publish_notification", "attributes": {"topic": "bench/out/events", "qos": qos}}
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


def event_service(bus: Any, qos: int) -> Any:
    """The event service of the benchmark on `bus`, not started."""
    from pbgm.events import EventService, EventServiceConfig
    from pbgm.testing import memory_store

    subscription = {
        "topic": "bench/in/+/ch0", "kind": "measurement", "device_level": 2, "qos": qos,
    }  # fmt: skip
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [subscription], "policy_group": "bench", "refresh_ms": 60_000}
    )
    return EventService(config, bus=bus, store=memory_store(policies=[bench_policy(qos)]))


def _events_main(port: int, qos: int, source: str | None, ready: Any, finished: Any) -> None:
    _use_source(source)
    from adapters.mqtt import open_mqtt_bus

    bus = open_mqtt_bus({**BUS_QUEUES, "host": HOST, "port": port, "client_id": "bench-events"})
    with event_service(bus, qos) as service:
        time.sleep(0.3)
        ready.put(_thread_ids())
        finished.get()
        counters = {"events": service.stats(), "bus": bus.stats()}
    bus.close()
    ready.put(counters)


def _thread_ids() -> dict[str, int]:
    import threading

    return {t.name: t.native_id for t in threading.enumerate() if t.native_id is not None}


MIDDLES: dict[str, tuple[Callable[..., None] | None, str, Callable[[bytes], int]]] = {
    "raw one hop": (None, "bench/in/+/ch0", seq_of_sample),
    "raw relay": (_raw_relay_main, "bench/out/raw", seq_of_sample),
    "MqttBus relay": (_bus_relay_main, "bench/out/bus", seq_of_sample),
    "event service": (_events_main, "bench/out/events", seq_of_notification),
}


# --- one path at one QoS ---------------------------------------------------------------


class Session:
    """The processes of one path at one QoS: counter, middle (if any), generator."""

    def __init__(self, path: str, qos: int, port: int, source: str | None) -> None:
        main, topic, self.seq_of = MIDDLES[path]
        self.next_seq = 0
        self.counted = SPAWN.Value("q", 0, lock=False)
        self._counter_jobs, self._counted_done = SPAWN.Queue(), SPAWN.Queue()
        self._generator_jobs, self._sent = SPAWN.Queue(), SPAWN.Queue()
        self._ready, self._finished = SPAWN.Queue(), SPAWN.Queue()
        counter_args = (port, topic, qos, self._counter_jobs, self._counted_done, self.counted)
        self._processes = [SPAWN.Process(target=_counter_main, args=counter_args, daemon=True)]
        self._processes[0].start()
        self._counted_done.get(timeout=60)
        self.threads: dict[str, int] = {}
        self.middle: psutil.Process | None = None
        if main is not None:
            process = SPAWN.Process(
                target=main, args=(port, qos, source, self._ready, self._finished), daemon=True
            )
            process.start()
            self._processes.append(process)
            self.threads = self._ready.get(timeout=60)
            self.middle = psutil.Process(process.pid)
        generator_args = (port, qos, self._generator_jobs, self._sent, self.counted)
        generator = SPAWN.Process(target=_generator_main, args=generator_args, daemon=True)
        generator.start()
        self._processes.append(generator)

    def run(
        self, count: int, rate: float | None, window: int = WINDOW, *, drain: bool = False
    ) -> tuple[int, list[float], Any]:
        """Publish the next `count` messages (sample times go on from the last run):
        (the first one's number, send times, what the counter saw). `drain`: the middle
        is stopped while they are published, and the send time is when it resumes."""
        first, self.next_seq = self.next_seq, self.next_seq + count
        self.counted.value = 0
        self._counter_jobs.put((count, bool(rate)))
        self._counted_done.get(timeout=60)
        if drain and self.middle is not None:
            self.middle.suspend()
        self._generator_jobs.put((first, count, rate, window))
        sent = self._sent.get(timeout=600)
        if drain and self.middle is not None:
            time.sleep(0.5)  # what the broker still holds reaches the stopped middle's socket
            sent = [time.perf_counter()]
            self.middle.resume()
        return first, sent, self._counted_done.get(timeout=600)

    def cpu(self) -> dict[str, float]:
        """CPU seconds of the middle's threads so far, by thread name, and `process`."""
        if self.middle is None:
            return {}
        by_id = {t.id: t.user_time + t.system_time for t in self.middle.threads()}
        out = {name: by_id.get(tid, 0.0) for name, tid in self.threads.items()}
        times = self.middle.cpu_times()
        out["process"] = times.user + times.system
        return out

    def close(self) -> dict[str, Any]:
        counters: dict[str, Any] = {}
        self._counter_jobs.put(None)
        self._generator_jobs.put(None)
        if self.middle is not None:
            self._finished.put(None)
            counters = self._ready.get(timeout=30)
        for process in self._processes:
            process.join(30)
        return counters


def latency(session: Session, count: int) -> dict[str, Any]:
    first, sent, seen = session.run(count, STEADY_RATE)
    delays = []
    for received_at, payload in seen["kept"]:
        k = session.seq_of(payload) - first
        if 0 <= k < count:
            delays.append(received_at - sent[k])
    ordered = sorted(delays) or [float("nan")]
    return {
        "sent": count,
        "received": len(delays),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 3),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def throughput(session: Session, count: int, *, drain: bool = False) -> dict[str, Any]:
    """Events/s from the first publish (for a drain: the middle's resumption) to the last
    arrival, also between the 10th and 90th percentile of arrivals; and the middle's CPU
    per event by thread."""
    before = session.cpu()
    window = count + 1 if drain else WINDOW
    _, sent, seen = session.run(count, None, window, drain=drain)
    after = session.cpu()
    received, last = seen["last"]
    marks = seen["marks"] or [(received, last)]
    low, high = marks[len(marks) // 10], marks[min(len(marks) - 1, len(marks) * 9 // 10)]
    sustained = (high[0] - low[0]) / (high[1] - low[1]) if high[1] > low[1] else 0.0
    out: dict[str, Any] = {
        "sent": count,
        "received": received,
        "events_per_s": round(received / (last - sent[0]), 1) if last > sent[0] else 0.0,
        "events_per_s_10_to_90_percent": round(sustained, 1),
    }
    if after:
        per_event = {k: 1e6 * (after[k] - before.get(k, 0.0)) / max(received, 1) for k in after}
        out["cpu_us_per_event"] = {k: round(v, 1) for k, v in per_event.items()}
        out["events_per_cpu_s"] = round(1e6 / per_event["process"], 1)
    return out


def measure_path(
    path: str, qos: int, port: int, source: str | None, steady: int, burst: int
) -> dict[str, Any]:
    session = Session(path, qos, port, source)
    try:
        session.run(300, STEADY_RATE)  # warm-up
        out = {"steady": latency(session, steady), "burst": throughput(session, burst)}
        if session.middle is not None:
            out["drain"] = throughput(session, burst, drain=True)
    finally:
        counters = session.close()
    if counters:
        out["counters"] = counters
    return out


# --- the split of the event service's handler thread, in process --------------------------


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


# --- propagation ------------------------------------------------------------------------


def propagation(port: int, pushes: int, polls: int) -> dict[str, Any]:
    """Admin change -> loader callback, by push over MQTT and by a 1 s poll."""
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
        api_bus = open_mqtt_bus({"host": HOST, "port": port, "client_id": "bench-api"})
        loader_bus = open_mqtt_bus({"host": HOST, "port": port, "client_id": "bench-loader"})
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

OWN_BROKER_CONFIG = (
    "listener {port} 127.0.0.1\n"
    "allow_anonymous true\n"
    "set_tcp_nodelay true\n"
    "max_inflight_messages 0\n"
    "persistence false\n"
)


@contextmanager
def own_broker() -> Iterator[int]:
    """A private mosquitto on a free port with `OWN_BROKER_CONFIG`; yields its port."""
    from tests.mqtt_broker import free_port, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "mosquitto.conf"
        config.write_text(OWN_BROKER_CONFIG.format(port=port))
        process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            yield port
        finally:
            process.terminate()
            process.wait(10)


def run(quick: bool, broker: str, port: int, source: str | None, rounds: int) -> dict[str, Any]:
    steady, burst = (1000, 5000) if quick else (2500, 20000)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": psutil.cpu_count(),
            "load_average": [round(x, 2) for x in psutil.getloadavg()],
        },
        "settings": {
            "broker": f"{HOST}:{port} ({broker})",
            "steady_rate": STEADY_RATE,
            "steady": steady,
            "burst": burst,
            "burst_window": WINDOW,
            "rounds": rounds,
            "source": source or "this tree",
        },
        "rounds": [],
    }
    for _ in range(rounds):
        results["rounds"].append(
            {
                path: {
                    f"qos{q}": measure_path(path, q, port, source, steady, burst) for q in (0, 1)
                }
                for path in PATHS
            }
        )
    results["summary"] = summarise(results["rounds"])
    results["event service split (us per event)"] = {
        **split(port, source, 2000 if quick else 5000),
        **network_share(results["rounds"]),
    }
    results["propagation"] = propagation(port, *((5, 2) if quick else (20, 5)))
    return results


def network_share(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """The event service's CPU per event by thread in the QoS 1 drains, mean of the rounds."""
    labels = {"paho-mqtt-client": "paho network thread", "pbgm-mqtt": "handler thread"}
    per_label: dict[str, list[float]] = {}
    for one in rounds:
        for name, us in one["event service"]["qos1"]["drain"]["cpu_us_per_event"].items():
            label = next((v for k, v in labels.items() if name.startswith(k)), name)
            per_label.setdefault(f"{label} (QoS 1 drain, CPU)", []).append(us)
    return {label: round(statistics.fmean(v), 1) for label, v in per_label.items()}


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per path and QoS: the rounds' values side by side, and the ratios to the floor."""
    rows: dict[str, Any] = {}
    for path in PATHS:
        for qos in ("qos0", "qos1"):
            runs = [one[path][qos] for one in rounds]
            rows[f"{path} {qos}"] = {
                "events_per_s": [r["burst"]["events_per_s"] for r in runs],
                "drain_events_per_s": [r.get("drain", {}).get("events_per_s") for r in runs],
                "events_per_cpu_s": [r.get("drain", {}).get("events_per_cpu_s") for r in runs],
                "p50_ms": [r["steady"]["p50_ms"] for r in runs],
                "p99_ms": [r["steady"]["p99_ms"] for r in runs],
                "lost": [sum(m["sent"] - m["received"] for k, m in r.items() if k != "counters")
                         for r in runs],
            }  # fmt: skip
    rows["ratios"] = {qos: _ratios(rows, qos) for qos in ("qos0", "qos1")}
    return rows


def _ratios(rows: dict[str, Any], qos: str) -> dict[str, float]:
    ours, floor = rows[f"event service {qos}"], rows[f"raw relay {qos}"]

    def ratio(key: str) -> float:
        return round(statistics.fmean(ours[key]) / statistics.fmean(floor[key]), 2)

    return {
        "events/s event service / raw relay (generator running)": ratio("events_per_s"),
        "events/s event service / raw relay (drain)": ratio("drain_events_per_s"),
        "events per CPU-s event service / raw relay": ratio("events_per_cpu_s"),
        "p50 event service / raw relay (steady)": ratio("p50_ms"),
    }


def print_table(results: dict[str, Any]) -> None:
    summary = results["summary"]
    columns = ("events/s", "drain ev/s", "per CPU-s", "p50 ms", "p99 ms")
    print(f"{'path':<22}" + "".join(f"{c:>15}" for c in columns) + f"{'lost':>6}")
    for path in PATHS:
        for qos in ("qos0", "qos1"):
            row = summary[f"{path} {qos}"]
            cells = (
                _pair(row["events_per_s"], 0),
                _pair(row["drain_events_per_s"], 0),
                _pair(row["events_per_cpu_s"], 0),
                _pair(row["p50_ms"], 2),
                _pair(row["p99_ms"], 2),
            )
            print(f"{path + ' ' + qos:<22}" + "".join(f"{c:>15}" for c in cells)
                  + f"{sum(row['lost']):>6}")  # fmt: skip
    for qos, ratios in summary["ratios"].items():
        for name, value in ratios.items():
            print(f"{qos}: {name}: {value}")
    print("event service, us per event:")
    for name, value in results["event service split (us per event)"].items():
        print(f"  {name}: {value}")
    for how, row in results["propagation"].items():
        print(f"propagation by {how}: p50 {row['p50_s']:.3f} s, p99 {row['p99_s']:.3f} s "
              f"({row['samples']} changes)")  # fmt: skip


def _pair(values: list[Any], digits: int) -> str:
    return " / ".join("-" if v is None else f"{v:.{digits}f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and changes")
    parser.add_argument(
        "--broker",
        choices=("own", "local"),
        default="own",
        help="own: a private mosquitto with its best settings on a free port (default); "
        "local: the running broker on 127.0.0.1:1883 as configured",
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--source", help="import pbgm and adapters of the middles from this source tree"
    )
    arguments = parser.parse_args()
    source = str(Path(arguments.source).resolve()) if arguments.source else None
    if arguments.broker == "own":
        with own_broker() as port:
            results = run(arguments.quick, "own", port, source, arguments.rounds)
        target = RESULTS
    else:
        results = run(arguments.quick, "local, as configured", 1883, source, arguments.rounds)
        target = RESULTS.with_name("bus-local-broker.json")
    print_table(results)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {target}")


if __name__ == "__main__":
    main()
