"""`pbgm serve`: real gunicorn processes. Two workers on SQLite, HTTPS with a
certificate, bad settings refused before start, and two servers on one PostgreSQL
that see an administrative change made through the other within 0.2 s."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pbgm.bundle import import_bundle, read_bundle
from pbgm.store.sql import SqlStore
from pbgm.store.sql.migrate import upgrade
from tests.api.conftest import EXAMPLES, SECRET, Reply, b64, seed
from tests.conftest import require_local_broker

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A `pbgm serve` process and a client for it."""

    def __init__(self, db: str, keys: Path, *extra: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.tls: ssl.SSLContext | None = None
        command = [sys.executable, "-m", "pbgm", "--db", db, "serve"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--keys-dir", str(keys), *extra]
        environment = {**os.environ, **(env or {})}
        # the server's output (its access log too) goes to a file nobody must drain: a
        # pipe left unread fills up and blocks the server's logging, and with it the server
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            command, env=environment, stdout=self.output, stderr=subprocess.STDOUT
        )
        self.tokens: dict[str, str] = {}

    def connection(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def call(self, method: str, path: str, body: str | None = None, **headers: str) -> Reply:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pbgm serve exited {self.process.returncode}: {self.read()}")
            try:
                if self.call("GET", "/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("pbgm serve did not become ready")

    def token(self, client_id: str) -> str:
        if client_id not in self.tokens:
            basic = base64.b64encode(f"{client_id}:{SECRET}".encode()).decode()
            reply = self.call(
                "POST",
                "/api/v1/token",
                urlencode({"grant_type": "client_credentials"}),
                **{
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": f"Basic {basic}",
                },
            )
            assert reply.status == 200, reply.body
            self.tokens[client_id] = reply.json["access_token"]
        return self.tokens[client_id]

    def as_caller(
        self, caller: str, method: str, path: str, body: object = None, **headers: str
    ) -> Reply:
        headers["Authorization"] = f"Bearer {self.token(caller)}"
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        return self.call(method, path, data, **headers)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()

    def read(self) -> str:
        """What the server wrote so far (stdout and stderr)."""
        self.output.seek(0)
        return self.output.read().decode(errors="replace")


@pytest.fixture
def serving(sqlite_db: str, keys: Path) -> Iterator[Served]:
    served = Served(sqlite_db, keys, "--workers", "2")
    try:
        served.wait_ready()
        yield served
    finally:
        served.stop()


LIMITS = f"/api/v1/policy?policy_id={b64('limits-bess-01')}&policy_group=operational-limits"


def test_two_workers_serve_policies_and_decisions(serving: Served):
    replies = [serving.as_caller("svc-voltage", "GET", LIMITS) for _ in range(6)]
    assert {r.status for r in replies} == {200}
    assert len({r.headers["ETag"] for r in replies}) == 1
    request = {
        "subject": {"id": "op-anna"},
        "resource": {"asset_id": "bess-01"},
        "action": {"id": "write"},
    }
    decided = serving.as_caller("svc-voltage", "POST", "/api/v1/decisions", request)
    assert decided.json["decision"] == "Permit"
    assert serving.call("GET", LIMITS).status == 401


def test_https_when_a_certificate_is_configured(sqlite_db: str, keys: Path, tmp_path: Path):
    cert, key = self_signed(tmp_path)
    served = Served(sqlite_db, keys, env={"PBGM_TLS_CERT": str(cert), "PBGM_TLS_KEY": str(key)})
    served.tls = ssl.create_default_context(cafile=str(cert))
    try:
        served.wait_ready()
        assert served.as_caller("svc-voltage", "GET", LIMITS).status == 200
        plain = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", "/healthz")
            plain.getresponse().read()
        plain.close()
    finally:
        served.stop()


def test_bad_settings_stop_the_server_before_it_starts(sqlite_db: str, keys: Path):
    env = {"PBGM_WORKERS": "zero", "PBGM_AUDIT_MASK": "secret"}
    served = Served(sqlite_db, keys, env=env)
    assert served.process.wait(timeout=30) == 9
    output = served.read()
    served.stop()
    assert "PBGM_WORKERS" in output and "PBGM_AUDIT_MASK" in output


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture
def postgres_db(postgres_server_url: str) -> Iterator[str]:
    from tests.conftest import fresh_postgres_database

    with fresh_postgres_database(postgres_server_url) as url:
        upgrade(url)
        store = SqlStore(url)
        import_bundle(store, read_bundle(EXAMPLES / "policies"), actor="seed", publish=True)
        seed(store)
        store.close()
        yield url


def _seen(answered: Callable[[], bool]) -> None:
    """A change made through another server reaches this one's workers within the
    followed revisions' age (`pbgm.api._cache.FOLLOWED_FOR_S`, 0.2 s): polled, then
    every worker (whichever answers) must keep answering so."""
    deadline = time.monotonic() + 10
    while not answered():
        assert time.monotonic() < deadline, "the change never reached the other server"
        time.sleep(0.05)
    time.sleep(0.3)
    for _ in range(4):
        assert answered()


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_see_each_others_changes(postgres_db: str, keys: Path):
    first, second = Served(postgres_db, keys), Served(postgres_db, keys, "--workers", "2")
    try:
        first.wait_ready()
        second.wait_ready()
        assert second.as_caller("svc-voltage", "GET", LIMITS).status == 200
        retire = f"/api/v1/admin/policies/{b64('limits-bess-01')}/retire"
        assert first.as_caller("svc-admin", "POST", retire, {"reason": "test"}).status == 200
        _seen(lambda: second.as_caller("svc-voltage", "GET", LIMITS).status == 404)
        grants = first.as_caller("svc-admin", "GET", "/api/v1/admin/grants?principal=svc-market")
        (grant,) = grants.json["grants"]
        fetch = f"/api/v1/policy?policy_id={b64('fo-template-bess-01')}&policy_group=flexibility"
        assert second.as_caller("svc-market", "GET", fetch).status == 200
        path = f"/api/v1/admin/grants/{grant['id']}"
        assert first.as_caller("svc-admin", "DELETE", path).status == 204
        _seen(lambda: second.as_caller("svc-market", "GET", fetch).status == 404)
    finally:
        first.stop()
        second.stop()


@pytest.mark.mosquitto
def test_pbgm_serve_announces_admin_changes_on_the_bus(sqlite_db: str, keys: Path):
    """`PBGM_NOTIFY_BUS_URL` makes every worker publish change notices on MQTT."""
    require_local_broker()
    from pbgm.bus import open_bus

    topic = f"pbgm-test/changes/{os.getpid()}-{time.monotonic_ns()}"
    listener = open_bus({"factory": "adapters.mqtt:open_mqtt_bus", "url": "mqtt://127.0.0.1:1883"})
    notices: list[dict] = []
    listener.subscribe(topic, lambda message: notices.append(json.loads(message.payload)))
    env = {"PBGM_NOTIFY_BUS_URL": "mqtt://127.0.0.1:1883", "PBGM_NOTIFY_TOPIC": topic}
    served = Served(sqlite_db, keys, env=env)
    try:
        served.wait_ready()
        retire = f"/api/v1/admin/policies/{b64('limits-bess-01')}/retire"
        assert served.as_caller("svc-admin", "POST", retire, {"reason": "test"}).status == 200
        deadline = time.monotonic() + 10
        while not notices and time.monotonic() < deadline:
            time.sleep(0.05)
        assert notices and notices[0]["policy_ids"] == ["limits-bess-01"]
    finally:
        served.stop()
        listener.close()
