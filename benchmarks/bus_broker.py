"""The private broker of the bus benchmark: a mosquitto of its own, at its best settings.

A broker measured as it happens to be configured measures its configuration: the default
`set_tcp_nodelay false` lets Nagle hold back small messages (~15 ms per two-hop path).
`own_broker` runs mosquitto on a free port with `OWN_BROKER_CONFIG` (TCP_NODELAY, no
in-flight limit of its own, no persistence) and stops it when the run is over.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
