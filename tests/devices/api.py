"""A pbgm API over HTTPS on 127.0.0.1 with device management wired to a CAMARA operator,
so that the operator's notifications reach pbgm's sink as in production (CAMARA
requires an https sink). The certificate is made here, for `127.0.0.1` only."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from pbgm.api import create_app
from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.bus import MemoryBus
from pbgm.store import ServiceAccount, Store
from tests.camara.server import CLIENT_ID, CLIENT_SECRET, CamaraServer

DEVICE_SCOPES = ("devices:read", "devices:write", "devices:admin", "metrics:read")
CALLERS = {
    "op-anna": DEVICE_SCOPES,  # a user of the group `operators` too (tests.devices.world)
    "op-eve": DEVICE_SCOPES,  # in no group: the device policies permit her nothing
    "svc-reader": ("devices:read",),
}


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pbgm.crt", directory / "pbgm.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """No log line per request."""


@dataclass
class DeviceApi:
    """The app, its store, its bus and the operator; `call` as a caller."""

    app: Flask
    store: Store
    bus: MemoryBus
    camara: CamaraServer
    url: str
    cert: Path
    server: BaseWSGIServer
    thread: threading.Thread
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, caller: str) -> str:
        if caller not in self.tokens:
            issuer = self.app.extensions["pbgm"].issuer
            account = self.store.get_service_account(caller)
            self.tokens[caller] = issuer.issue(
                caller, account.scopes, generation=account.token_generation
            )
        return self.tokens[caller]

    def call(
        self, method: str, path: str, caller: str | None = "op-anna", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if caller is not None:
            headers["Authorization"] = f"Bearer {self.token(caller)}"
        verify = ssl.create_default_context(cafile=str(self.cert))
        with httpx.Client(verify=verify, timeout=30) as client:
            return client.request(method, self.url + path, headers=headers, **kwargs)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.app.extensions["pbgm"].devices.manager.close()


def start_api(store: Store, camara: CamaraServer, directory: Path, **settings: Any) -> DeviceApi:
    """The app on an HTTPS socket, its sink the operator's notification target."""
    cert, key = make_certificate(directory)
    camara.ca_file = cert
    holder: dict[str, Flask] = {}

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server = make_server(
        "127.0.0.1",
        0,
        dispatch,
        threaded=True,
        ssl_context=(str(cert), str(key)),
        request_handler=_Quiet,
    )
    url = f"https://127.0.0.1:{server.server_port}"
    secret = directory / "camara.secret"
    secret.write_text(CLIENT_SECRET)
    config_file = directory / "network.json"
    config_file.write_text(
        json.dumps(
            {
                "kind": "camara",
                "base_url": camara.url,
                "token_url": camara.token_url,
                "client_id": CLIENT_ID,
                "client_secret_file": "camara.secret",
                "timeout_s": 2,
                "retries": 1,
                "sink_url": f"{url}/api/v1/device-notifications",
            }
        )
    )
    keys = directory / "keys"
    KeyRing(keys).generate()
    for caller, scopes in CALLERS.items():
        store.add_service_account(ServiceAccount(caller, hash_secret("x"), scopes), actor="seed")
    bus = MemoryBus()
    values = {"keys_dir": str(keys), "rate_limit": "0", "network_config": str(config_file)}
    app = create_app({**values, **settings}, store=store, bus=bus)
    holder["app"] = app
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    return DeviceApi(app, store, bus, camara, url, cert, server, thread)
