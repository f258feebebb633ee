"""Restarts in the middle of a QoS 1 stream: how many messages are lost.

A publisher (`adapters.mqtt.MqttBus`, persistent session) sends `count` numbered
messages at `rate`/s; a subscriber with a persistent session writes each number it
handles to a file. A third of the way in, the broker or the subscriber's process is
stopped, and two thirds of the way in started again; then the stream ends and
whatever is still on its way is waited for. Lost = sent and never handled; duplicates
are allowed (QoS 1 is at least once) and reported. In the broker scenarios the
subscriber is frozen (SIGSTOP) for the outage and thawed a second after the broker is
back, so the publisher's backlog always reaches the broker first: only the
subscriber's session, restored from the broker's database, can keep it.

- broker, SIGTERM: mosquitto saves its sessions as it exits (`persistence true`);
- broker, kill -9, `autosave_on_changes true` with `autosave_interval 1`: the database is
  written after every change, so a crash loses nothing that was acknowledged;
- broker, kill -9, the default 30-minute autosave: what a crash costs without that;
- subscriber, SIGTERM: the service closes its bus (its queue handled first);
- subscriber, kill -9: messages in its handler queue were not acknowledged
  (`ack_after_handling`), so its session delivers them again.

The broker keeps `max_queued_messages` (here 100,000) per absent client: size it for
the rate times the longest absence (docs/bus.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.bus_load import HOST

ROOT = Path(__file__).resolve().parents[1]
BROKER_CONFIG = (
    "user {user}\n"  # as root mosquitto would become `mosquitto`, unable to save here
    "listener {port} 127.0.0.1\n"
    "allow_anonymous true\n"
    "set_tcp_nodelay true\n"
    "persistence true\n"
    "persistence_location {directory}/\n"
    "max_queued_messages 100000\n"
    "{extra}"
)
SUBSCRIBER = """
import logging, signal, sys, threading
from adapters.mqtt import open_mqtt_bus
logging.getLogger("adapters.mqtt").setLevel(logging.ERROR)
config, topic, out = eval(sys.argv[1]), sys.argv[2], open(sys.argv[3], "a")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
def handle(message):
    out.write(message.payload.decode() + "\\n")
    out.flush()
bus = open_mqtt_bus(config)
bus.subscribe(topic, handle, qos=1)
print("subscribed", flush=True)
stop.wait()
bus.close()
"""
SCENARIOS = {
    "broker restart, SIGTERM": ("broker", signal.SIGTERM, ""),
    "broker kill -9, autosave on every change": (
        "broker", signal.SIGKILL, "autosave_on_changes true\nautosave_interval 1\n",
    ),
    "broker kill -9, default autosave (30 min)": ("broker", signal.SIGKILL, ""),
    "service restart, SIGTERM": ("service", signal.SIGTERM, ""),
    "service kill -9": ("service", signal.SIGKILL, ""),
}  # fmt: skip


class _Broker:
    def __init__(self, directory: Path, extra: str) -> None:
        from tests.mqtt_broker import free_port, mosquitto_binary

        binary = mosquitto_binary()
        if binary is None:
            raise SystemExit("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary, self.port = binary, free_port()
        self.config = directory / "mosquitto.conf"
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.config.write_text(
            BROKER_CONFIG.format(user=user, port=self.port, directory=directory, extra=extra)
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import socket

        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(how)
            self.process.wait(10)
            self.process = None


class _Subscriber:
    def __init__(self, config: dict[str, Any], topic: str, out: Path) -> None:
        self.args = [sys.executable, "-c", SUBSCRIBER, repr(config), topic, str(out)]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "subscribed"

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(how)
            self.process.wait(30)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def freeze(self, frozen: bool) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def restart(scenario: str, count: int, rate: float) -> dict[str, Any]:
    """One scenario of `SCENARIOS`: sent, handled, lost, duplicates, outage seconds."""
    from adapters.mqtt import open_mqtt_bus

    target, how, extra = SCENARIOS[scenario]
    with _scratch() as directory:
        broker = _Broker(directory, extra)
        topic, out = f"bench/restart/{time.monotonic_ns()}", directory / "handled.txt"
        session = {"host": HOST, "port": broker.port, "persistent_session": True,
                   "min_delay": 0.05, "max_delay": 0.5, "queue_size": count}  # fmt: skip
        subscriber = _Subscriber({**session, "client_id": "bench-restart-sub"}, topic, out)
        publisher = None
        try:
            broker.start()
            subscriber.start()
            publisher = open_mqtt_bus({**session, "client_id": "bench-restart-pub"})
            stopped = broker if target == "broker" else subscriber
            frozen = subscriber if target == "broker" else None
            outage = _stream(publisher, topic, count, rate, stopped, how, frozen)
            handled = _wait_handled(out, count)
        finally:
            subscriber.stop()
            if publisher is not None:
                publisher.close()
            broker.stop()
    numbers = [int(line) for line in handled]
    return {
        "sent": count,
        "handled": len(set(numbers)),
        "lost": count - len(set(numbers) & set(range(count))),
        "duplicates": len(numbers) - len(set(numbers)),
        "outage_s": round(outage, 2),
        "rate_per_s": rate,
    }


def _stream(publisher: Any, topic: str, count: int, rate: float, stopped: Any,
            how: int, frozen: _Subscriber | None) -> float:  # fmt: skip
    started = time.perf_counter()
    down_at = up_at = 0.0
    for number in range(count):
        if number == count // 3:
            if frozen is not None:
                frozen.freeze(True)
            stopped.stop(how)
            down_at = time.perf_counter()
        if number == 2 * count // 3:
            stopped.start()
            up_at = time.perf_counter()
        if frozen is not None and number == min(2 * count // 3 + int(rate), count - 1):
            frozen.freeze(False)  # a second after the broker is back
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        publisher.publish(topic, b"%d" % number, qos=1)
    return up_at - down_at


def _wait_handled(out: Path, count: int, idle_s: float = 10.0) -> list[str]:
    seen, since = -1, time.monotonic()
    while True:
        lines = out.read_text().split() if out.exists() else []
        if len(set(lines)) >= count or time.monotonic() - since > idle_s:
            return lines
        if len(lines) != seen:
            seen, since = len(lines), time.monotonic()
        time.sleep(0.05)


def restarts(count: int = 3000, rate: float = 300.0) -> dict[str, Any]:
    import logging

    logging.getLogger("adapters.mqtt").setLevel(logging.ERROR)  # the outage is expected
    return {name: restart(name, count, rate) for name in SCENARIOS}


def print_restarts(results: dict[str, Any]) -> None:
    print("restarts at QoS 1 (persistent sessions):")
    for name, row in results.items():
        print(f"  {name}: {row['lost']} lost of {row['sent']} ({row['duplicates']} duplicates, "
              f"outage {row['outage_s']} s at {row['rate_per_s']:.0f}/s)")  # fmt: skip


if __name__ == "__main__":
    import json

    found = restarts()
    print_restarts(found)
    print(json.dumps(found, indent=2))
