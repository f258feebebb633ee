"""A UDP receiver of C37.118.2 frames.

Over UDP a PMU (or PDC) just streams frames, one per datagram. The receiver binds a
socket, waits on a selector (no busy loop), feeds every datagram to a `StreamDecoder`
and hands each `Measurement` to a callback and/or back to the caller. No exception
escapes its loop: bad frames are counted and dropped, a failing callback is counted
and logged.

UDP sources can be spoofed: bind to a trusted interface and pass `id_codes` to refuse
streams you do not expect.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

from adapters.pmu._config import Config
from adapters.pmu._data import Measurement
from adapters.pmu._stream import MAX_STREAMS, Counters, StreamDecoder
from pbgm.errors import ConfigurationError

logger = logging.getLogger(__name__)

DEFAULT_PORT = 4713
"""Conventional C37.118 UDP port."""

MAX_DATAGRAM = 65535
MAX_BATCH = 1024
"""Datagrams read per wake-up at most, so that `close()` is never starved."""


class PmuReceiver:
    """Receive C37.118.2 frames on `host:port` (port 0 picks a free port).

    Use as a context manager, and either `poll()` in your own loop, iterate over
    `measurements()`, or run `serve()` in a thread with `on_measurement` set. One reader
    at a time; `close()` may be called from any thread and stops `serve()` at once.
    A `sock` passed in (a bound UDP socket) is owned by the receiver from then on.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        configs: Iterable[Config] = (),
        id_codes: Iterable[int] | None = None,
        max_streams: int = MAX_STREAMS,
        on_measurement: Callable[[Measurement], object] | None = None,
        poll_interval: float = 0.5,
        sock: socket.socket | None = None,
    ) -> None:
        number = isinstance(poll_interval, int | float) and not isinstance(poll_interval, bool)
        if not number or not 0 < poll_interval < math.inf:
            raise ConfigurationError(
                f"`poll_interval` must be a positive number of seconds, not `{poll_interval}`"
            )
        self.decoder = StreamDecoder(configs, id_codes=id_codes, max_streams=max_streams)
        self._on_measurement = on_measurement
        self._poll_interval = poll_interval
        self._sock = sock if sock is not None else _bind(host, port)
        self._sock.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._closed = self._busy = self._released = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def counters(self) -> Counters:
        return self.decoder.counters

    @property
    def closed(self) -> bool:
        return self._closed

    def poll(self, timeout: float | None = 0.0) -> list[Measurement]:
        """Wait up to `timeout` seconds for datagrams, decode those waiting, return them.

        Each measurement also goes to `on_measurement`. Returns `[]` once closed.
        """
        with self._lock:
            if self._closed:
                return []
            self._busy = True
        try:
            return self._poll(timeout)
        finally:
            with self._lock:
                self._busy = False
                release = self._closed
            if release:
                self._release()

    def measurements(self) -> Iterator[Measurement]:
        """Yield measurements as they arrive, until `close()`."""
        while not self._closed:
            yield from self.poll(self._poll_interval)

    def serve(self) -> None:
        """Receive until `close()`; for a thread with `on_measurement` set."""
        while not self._closed:
            self.poll(self._poll_interval)

    def close(self) -> None:
        """Stop receiving and release the socket; idempotent, callable from any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            busy = self._busy
        if busy:
            self._wake()
        else:
            self._release()

    def __enter__(self) -> PmuReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _poll(self, timeout: float | None) -> list[Measurement]:
        out: list[Measurement] = []
        for key, _events in self._selector.select(timeout):
            if key.fileobj is self._sock:
                self._drain(out)
        return out

    def _drain(self, out: list[Measurement]) -> None:
        for _ in range(MAX_BATCH):
            try:
                datagram = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. ICMP port unreachable reported on Windows
                logger.debug("pmu socket error: %s", error)
                return
            for measurement in self.decoder.feed(datagram):
                out.append(measurement)
                self._deliver(measurement)

    def _deliver(self, measurement: Measurement) -> None:
        if self._on_measurement is None:
            return
        try:
            self._on_measurement(measurement)
        except Exception:
            self.counters.callback_error += 1
            logger.exception("pmu measurement callback failed")

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already released by the reader
            self._wake_w.send(b"\0")

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._selector.close()
        for sock in (self._sock, self._wake_r, self._wake_w):
            sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(
            f"cannot receive pmu frames on `{host}:{port}`: {error.strerror or error}"
        ) from error
    return sock
