"""A real Mosquitto with the dynamic-security plugin, on a free port of 127.0.0.1.

The plugin's state file is made by `mosquitto_ctrl dynsec init` with an admin client
(`admin` and a random password); no anonymous clients. Tests and the bus benchmark
start one with `DynsecBroker(directory).start()` and stop it at the end.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.mqtt_broker import free_port, mosquitto_binary

PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
INSTALL_HINT = (
    "install mosquitto 2 with its dynamic-security plugin (Debian: apt-get install mosquitto)"
)


def plugin_path() -> str | None:
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def available() -> bool:
    return bool(mosquitto_binary() and plugin_path() and shutil.which("mosquitto_ctrl"))


class DynsecBroker:
    """One mosquitto process with the plugin; `extra` lines go into its configuration."""

    host = "127.0.0.1"

    def __init__(self, directory: Path, *, extra: str = "", port: int | None = None) -> None:
        binary, plugin, ctrl = mosquitto_binary(), plugin_path(), shutil.which("mosquitto_ctrl")
        if binary is None or plugin is None or ctrl is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.admin_password = secrets.token_hex(16)  # never starts with `-`
        self.state_path = directory / "dynsec.json"
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        subprocess.run(
            [ctrl, "dynsec", "init", str(self.state_path), "admin", self.admin_password],
            check=True,
            capture_output=True,
        )
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.config_path.write_text(
            f"user {user}\n"  # as root mosquitto would become `mosquitto`: no access here
            f"listener {self.port} {self.host}\n"
            "allow_anonymous false\n"
            f"plugin {plugin}\n"
            f"plugin_opt_config_file {self.state_path}\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{extra}"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> DynsecBroker:
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _wait_listening(self, timeout: float) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited; see {self.log_path}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mosquitto did not listen within {timeout} s") from None
                time.sleep(0.02)

    def admin_config(self, **overrides: Any) -> dict[str, Any]:
        """An `adapters.mqtt` config for the plugin's admin client."""
        return {
            "host": self.host,
            "port": self.port,
            "username": "admin",
            "password": self.admin_password,
            "client_id": f"pbgm-broker-sync-{secrets.token_hex(3)}",
            "connect_timeout": 5,
            "min_delay": 0.05,
            "max_delay": 0.5,
            **overrides,
        }

    def client_config(self, username: str, password: str, **overrides: Any) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
            "connect_timeout": 5,
            "min_delay": 0.05,
            "max_delay": 0.5,
            **overrides,
        }
