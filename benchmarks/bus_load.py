"""The load of the bus benchmark: numbered measurements, a generator and a counter.

The generator publishes the measurements and the counter receives what comes out of the
path under test, each in a process of its own (its own GIL, as in production), so that
neither takes the middle's interpreter. Both are bare paho clients at paho's fastest
settings: what they cost is the same for every path. A message's number is recovered
from its payload (`seq_of_sample`, `seq_of_notification`), which is how the latency of
each message is matched to its send time.
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
import socket
import time
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
DEVICES = 100
PERIOD_MS = 20
BASE_MS = 1_700_000_000_000
SPAWN = multiprocessing.get_context("spawn")


Endpoint = int | dict[str, Any]
"""A broker port, or `{"port": ..., "credentials": {role: (username, password)}}` for a
broker that authenticates every client (`benchmarks.bus_enforcement`)."""


def port_of(endpoint: Endpoint) -> int:
    return endpoint if isinstance(endpoint, int) else int(endpoint["port"])


def credentials(endpoint: Endpoint, role: str) -> tuple[str, str] | None:
    """The username and password of `role` at `endpoint`, if it authenticates clients."""
    if isinstance(endpoint, int):
        return None
    found = endpoint.get("credentials", {}).get(role)
    return (str(found[0]), str(found[1])) if found else None


def bus_settings(endpoint: Endpoint, role: str) -> dict[str, Any]:
    """The `adapters.mqtt` settings that reach `endpoint` as `role`."""
    settings: dict[str, Any] = {"host": HOST, "port": port_of(endpoint)}
    found = credentials(endpoint, role)
    if found is not None:
        settings.update(username=found[0], password=found[1])
    return settings


def paho_client(name: str, endpoint: Endpoint) -> mqtt.Client:
    """A connected paho client with its network thread, at paho's fastest settings;
    `name` is its role (its credentials, when the endpoint has them)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{secrets.token_hex(3)}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(0)  # no window: paho scans it on every PUBACK
    client.max_queued_messages_set(0)
    client.on_socket_open = _no_delay
    found = credentials(endpoint, name)
    if found is not None:
        client.username_pw_set(*found)
    client.connect(HOST, port_of(endpoint))
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


def _generator_main(port: Endpoint, qos: int, jobs: Any, done: Any, counted: Any) -> None:
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


def _counter_main(port: Endpoint, topic: str, qos: int, jobs: Any, done: Any, counted: Any) -> None:
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
