"""A real Mosquitto for the tests: TLS, a password file, client certificates, persistence.

`Pki(directory)` makes, with `cryptography`: a CA, a server certificate for 127.0.0.1 and
localhost, a valid client certificate, an expired client certificate, and a second,
unrelated CA with its own client certificate. `Broker(directory, pki)` writes a
mosquitto configuration with two TLS listeners on free ports of 127.0.0.1:

- `port`: server authentication only, user names and passwords from a password file
  (written in mosquitto's `$7$` PBKDF2-SHA512 format, the one `mosquitto_passwd` makes);
- `cert_port`: a client certificate signed by the CA is required (its CN is the user);
- `elsewhere_port`: like `port`, but the server certificate names `elsewhere.example`
  only (hostname mismatch for a client connecting to 127.0.0.1).

Persistence is on in the broker's directory, so QoS 1 sessions survive `restart()`.
`start`, `stop` and `restart` run `mosquitto -c <conf>` as a subprocess.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = "install mosquitto (Debian: apt-get install mosquitto)"
DEFAULT_USERS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> KeyPair:
    key_path = path.with_suffix(".key")
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path = path.with_suffix(".pem")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(cert_path, key_path)


class _Authority:
    """A CA that signs leaf certificates."""

    def __init__(self, common_name: str, directory: Path, now: dt.datetime) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(common_name)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.files = _write(directory / common_name.replace(" ", "-"), self.key, self.cert)

    def issue(
        self,
        common_name: str,
        path: Path,
        *,
        server: bool,
        valid: tuple[dt.datetime, dt.datetime],
        names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(_alt_names(names), critical=False)
        return _write(path, key, builder.sign(self.key, hashes.SHA256()))


def _alt_names(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


class Pki:
    """The certificates of the tests, written as PEM files in `directory`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        current = (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
        expired = (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        ca = _Authority("pbgm test CA", directory, now)
        other = _Authority("unrelated CA", directory, now)
        self.ca_file = ca.files.cert
        self.other_ca_file = other.files.cert
        self.server = ca.issue("localhost", directory / "server", server=True, valid=current)
        self.elsewhere_server = ca.issue(
            "elsewhere.example",
            directory / "server-elsewhere",
            server=True,
            valid=current,
            names=("elsewhere.example",),
        )
        self.client = ca.issue("alice", directory / "client", server=False, valid=current)
        self.expired_client = ca.issue(
            "alice", directory / "client-expired", server=False, valid=expired
        )
        self.foreign_client = other.issue(
            "alice", directory / "client-foreign", server=False, valid=current
        )


# --- the password file ----------------------------------------------------------------


def password_line(user: str, password: str, iterations: int = 101) -> str:
    """One line of a mosquitto 2 password file: `$7$` is PBKDF2-HMAC-SHA512."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{user}:$7${iterations}${encoded[0]}${encoded[1]}\n"


# --- the broker -----------------------------------------------------------------------


class Broker:
    """One mosquitto process with its configuration, certificates and persistence."""

    host = "127.0.0.1"

    def __init__(self, directory: Path, pki: Pki, users: Mapping[str, str] = DEFAULT_USERS) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.users = dict(users)
        self.port = free_port()
        self.cert_port = free_port()
        self.elsewhere_port = free_port()
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    def _write_files(self) -> None:
        passwords = self.directory / "passwd"
        passwords.write_text("".join(password_line(u, p) for u, p in self.users.items()))
        passwords.chmod(0o600)
        tls = (
            f"cafile {self.pki.ca_file}\n"
            f"certfile {self.pki.server.cert}\nkeyfile {self.pki.server.key}\n"
        )
        elsewhere = (
            f"cafile {self.pki.ca_file}\ncertfile {self.pki.elsewhere_server.cert}\n"
            f"keyfile {self.pki.elsewhere_server.key}\n"
        )
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.config_path.write_text(
            "per_listener_settings true\n"
            f"user {user}\n"
            "persistence true\n"
            f"persistence_location {self.directory}/\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            "max_queued_messages 10000\n"
            f"\nlistener {self.port} {self.host}\n{tls}"
            f"password_file {passwords}\nallow_anonymous false\n"
            f"\nlistener {self.cert_port} {self.host}\n{tls}"
            "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n"
            f"\nlistener {self.elsewhere_port} {self.host}\n{elsewhere}"
            f"password_file {passwords}\nallow_anonymous false\n"
        )

    # --- life cycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening(timeout, offset)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, so that mosquitto saves its sessions before it exits."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _wait_listening(self, timeout: float, offset: int) -> None:
        deadline = time.monotonic() + timeout
        ready = f"Opening ipv4 listen socket on port {self.elsewhere_port}"
        while ready not in self.log_text()[offset:]:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto did not listen within {timeout} s")
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- what clients need ------------------------------------------------------------

    def bus_config(self, user: str = "alice", **overrides: Any) -> dict[str, Any]:
        """An `adapters.mqtt` config for the password listener as `user`."""
        config: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "ca_file": str(self.pki.ca_file),
            "username": user,
            "password": self.users.get(user, ""),
            "min_delay": 0.05,
            "max_delay": 0.5,
            "connect_timeout": 5,
        }
        config.update(overrides)
        return config

    def cert_config(self, pair: KeyPair | None = None, **overrides: Any) -> dict[str, Any]:
        """A config for the client-certificate listener, with `pair` (default: valid)."""
        pair = pair or self.pki.client
        config: dict[str, Any] = {
            "host": self.host,
            "port": self.cert_port,
            "ca_file": str(self.pki.ca_file),
            "cert_file": str(pair.cert),
            "key_file": str(pair.key),
            "min_delay": 0.05,
            "max_delay": 0.5,
            "connect_timeout": 5,
        }
        config.update(overrides)
        return config
