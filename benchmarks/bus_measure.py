"""One path of the bus benchmark at one QoS: its processes and its three measurements.

A `Session` starts the counter, the middle (if the path has one) and the generator, and
keeps them for all of the path's runs (warm-up, latency, throughput, drain), so that no
measurement pays for starting a process, its imports or its connection. `latency` paces
the generator, `throughput` lets it run as fast as the path takes the messages (or, for a
drain, stops the middle while they are published); the middle's CPU per event, by thread,
comes from its process's clocks.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from benchmarks.bus_load import SPAWN, _counter_main, _generator_main
from benchmarks.bus_middles import MIDDLES

STEADY_RATE = 500
WINDOW = 1000


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
