"""The loader against a stand-in server that speaks pbgm's token and policy endpoints.

The stand-in (`Mimic`) serves whatever the test puts in it, including content
the real server would never publish: that is how an invalid update reaches the
loader without patching anything of pbgm. It also counts requests, revokes
tokens and speaks TLS with a CA made here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pbgm.access import decode_id, listing_etag, policy_etag
from pbgm.bus import MemoryBus
from pbgm.loader import LoadedPolicy, PolicyLoader, parse_config
from pbgm.testing import FrozenClock
from tests.api.conftest import NOW

ROOT = Path(__file__).resolve().parents[1]
LIMITS = json.loads((ROOT / "examples/policies/policies/limits-bess-01.json").read_text())
PV_LIMITS = json.loads((ROOT / "examples/policies/policies/limits-pv-inv-01.json").read_text())
BESS = {"name": "bess", "asset_id": "bess-01", "policy_type": "operational_limits"}
PV = {"name": "pv", "policy_id": "limits-pv-inv-01", "policy_group": "operational-limits"}


def served(document: dict[str, Any], version: int = 1) -> dict[str, Any]:
    """A policy as `GET /api/v1/policy` serves it."""
    return {
        "id": document.get("id"),
        "type": document.get("type"),
        "policy_group": document.get("policy_group"),
        "asset_id": document.get("asset_id"),
        "version": version,
        "etag": policy_etag(str(document.get("id")), document),
        "document": document,
    }


def limits(v_max_pu: float = 1.1, **changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(LIMITS))
    document["content"]["voltage"]["v_max_pu"] = v_max_pu
    document.update(changes)
    return document


class Mimic:
    """A pbgm stand-in on 127.0.0.1: tokens, and `/api/v1/policy` with ETags."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.answers: dict[tuple[str, str], Any] = {}
        self.requests: list[tuple[str, str]] = []
        self.tokens_issued = 0
        self.revoked: set[str] = set()
        self.lock = threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self.http.socket = tls.wrap_socket(self.http.socket, server_side=True)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def put(self, key: tuple[str, str], answer: Any) -> None:
        """What the policy endpoint answers for (policy id, group) or (asset, type)."""
        with self.lock:
            self.answers[key] = answer

    def fetches(self, key: str) -> int:
        with self.lock:
            return sum(1 for kind, what in self.requests if kind == "policy" and what == key)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mimic = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with mimic.lock:
                    mimic.tokens_issued += 1
                    token = f"token-{mimic.tokens_issued}"
                    mimic.requests.append(("token", token))
                self._reply(200, json.dumps({"access_token": token, "expires_in": 900}))

            def do_GET(self) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                query = dict(parse_qsl(urlsplit(self.path).query))
                key = _key(query)
                with mimic.lock:
                    mimic.requests.append(("policy", key[0]))
                    answer = mimic.answers.get(key)
                    revoked = token in mimic.revoked
                if revoked:
                    self._reply(401, "{}")
                elif answer is None:
                    self._reply(404, json.dumps({"code": "not_found"}))
                else:
                    self._conditional(answer)

            def _conditional(self, answer: Any) -> None:
                body = answer if isinstance(answer, str) else json.dumps(answer)
                etag = _etag_of(answer, body)
                if self.headers.get("If-None-Match") == etag:
                    self._reply(304, "", etag)
                else:
                    self._reply(200, body, etag)

            def _reply(self, status: int, body: str, etag: str | None = None) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _etag_of(answer: Any, body: str) -> str:
    """pbgm's ETags: a policy's own, a listing's from its policies' (else any digest)."""
    if isinstance(answer, dict) and isinstance(answer.get("policies"), list):
        etags = [p.get("etag") for p in answer["policies"] if isinstance(p, dict)]
        if all(isinstance(e, str) for e in etags):
            return listing_etag(etags)
    if isinstance(answer, dict) and isinstance(answer.get("etag"), str):
        return str(answer["etag"])
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'


def _key(query: dict[str, str]) -> tuple[str, str]:
    if "policy_id" in query:
        return decode_id(query["policy_id"]), query["policy_group"]
    return decode_id(query["asset_id"]), query["policy_type"]


@pytest.fixture
def mimic() -> Iterator[Mimic]:
    running = Mimic()
    running.put(("bess-01", "operational_limits"), {"policies": [served(limits())]})
    running.put(("limits-pv-inv-01", "operational-limits"), served(PV_LIMITS))
    yield running
    running.close()


class Sink:
    def __init__(self) -> None:
        self.items: list[LoadedPolicy] = []

    def __call__(self, loaded: LoadedPolicy) -> None:
        self.items.append(loaded)


def make_loader(
    port: int,
    tmp_path: Path,
    *policies: dict[str, Any],
    url: str | None = None,
    bus: Any = None,
    clock: Any = None,
    sinks: dict[str, Any] | None = None,
    ca_file: str | None = None,
    **extra: Any,
) -> tuple[PolicyLoader, Sink]:
    (tmp_path / "secret").write_text("s3cret")
    entries = [dict(p, deliver_to=p.get("deliver_to", "sink")) for p in policies or (BESS,)]
    data = {
        "server": {
            "url": url or f"http://127.0.0.1:{port}",
            "client_id": "svc",
            "client_secret_file": "secret",
            **({"ca_file": ca_file} if ca_file else {}),
        },
        "cache_dir": "cache",
        "policies": entries,
        **extra,
    }
    sink = Sink()
    config = parse_config(data, base_dir=tmp_path)
    loader = PolicyLoader(
        config, sinks={"sink": sink, **(sinks or {})}, bus=bus, clock=clock or FrozenClock(NOW)
    )
    return loader, sink


# --- an invalid update is refused, the last good copy kept ------------------------------

ANOTHER_ASSET = limits(asset_id="bess-02", target={"resource": {"asset_id": "bess-02"}})
BAD_RULE = limits(rules=[{"id": "r", "effect": "Maybe"}])


@pytest.mark.parametrize(
    ("what", "answer", "code"),
    [
        (
            "content that fails the type's schema",
            {"policies": [served(limits(v_max_pu="high"))]},
            "validation_failed",
        ),
        ("a rule with an unknown effect", {"policies": [served(BAD_RULE)]}, "validation_failed"),
        (
            "another asset's policy",
            {"policies": [served(ANOTHER_ASSET)]},
            "unexpected_policy",
        ),
        (
            "two policies of the type for the asset",
            {"policies": [served(limits()), served(limits(policy_group="other"))]},
            "ambiguous_policy",
        ),
        ("an answer that is not JSON", "<html>maintenance</html>", "bad_answer"),
        ("an answer of another shape", {"policy": served(limits())}, "bad_answer"),
        (
            "a served policy without version",
            {"policies": [served(limits(1.09), "1")]},
            "bad_answer",
        ),
    ],
)
def test_an_invalid_update_is_refused_and_the_last_good_copy_kept(
    mimic: Mimic, tmp_path: Path, what: str, answer: Any, code: str
) -> None:
    loader, sink = make_loader(mimic.port, tmp_path)
    loader.refresh_now()
    mimic.put(("bess-01", "operational_limits"), answer)
    state = loader.refresh_now()["bess"]
    assert (state.state, state.last_error, state.version) == ("rejected", code, 1)
    held = loader.get("bess")
    assert held is not None and held.content["voltage"]["v_max_pu"] == 1.1
    assert [item.version for item in sink.items] == [1]
    cached = json.loads((tmp_path / "cache" / "bess.json").read_text())
    assert cached["document"]["content"]["voltage"]["v_max_pu"] == 1.1


def test_the_same_invalid_content_is_counted_once_and_a_fix_is_delivered(
    mimic: Mimic, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loader, sink = make_loader(mimic.port, tmp_path)
    loader.refresh_now()
    mimic.put(("bess-01", "operational_limits"), {"policies": [served(limits("x"), 2)]})
    for _ in range(3):
        loader.refresh_now()
    refusals = [r for r in caplog.records if "update refused" in r.getMessage()]
    assert len(refusals) == 1
    assert loader.status()["bess"].counters["rejected"] == 1
    mimic.put(("bess-01", "operational_limits"), {"policies": [served(limits(1.08), 3)]})
    state = loader.refresh_now()["bess"]
    assert (state.state, state.version) == ("fresh", 3)
    assert [(i.version, i.content["voltage"]["v_max_pu"]) for i in sink.items] == [
        (1, 1.1),
        (3, 1.08),
    ]


def test_an_asset_entry_with_a_policy_group_picks_one_of_several(
    mimic: Mimic, tmp_path: Path
) -> None:
    two = [served(limits(policy_group="other")), served(limits(1.08), 4)]
    mimic.put(("bess-01", "operational_limits"), {"policies": two})
    chosen = {**BESS, "policy_group": "operational-limits"}
    loader, sink = make_loader(mimic.port, tmp_path, chosen)
    assert loader.refresh_now()["bess"].fresh
    assert (sink.items[0].version, sink.items[0].content["voltage"]["v_max_pu"]) == (4, 1.08)


# --- tokens ------------------------------------------------------------------------------


def test_a_token_is_reused_and_renewed_before_it_expires(mimic: Mimic, tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    loader, _ = make_loader(mimic.port, tmp_path, BESS, PV, clock=clock)
    loader.refresh_now()
    clock.advance(seconds=600)
    loader.refresh_now()
    assert mimic.tokens_issued == 1
    clock.advance(seconds=250)  # 850 s of 900: inside the renewal margin
    loader.refresh_now()
    assert mimic.tokens_issued == 2


def test_a_refused_token_is_replaced_once_and_the_fetch_repeated(
    mimic: Mimic, tmp_path: Path
) -> None:
    loader, _ = make_loader(mimic.port, tmp_path)
    loader.refresh_now()
    mimic.revoked.add("token-1")
    assert loader.refresh_now()["bess"].fresh
    assert mimic.tokens_issued == 2


# --- push: change notices on the bus --------------------------------------------------


def notice(**named: Any) -> bytes:
    return json.dumps({"revision": 7, **named}).encode()


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("what", "named", "refetched"),
    [
        ("a notice naming the policy id", {"policy_ids": ["limits-pv-inv-01"]}, {"pv"}),
        ("a notice naming the asset", {"asset_ids": ["bess-01"]}, {"bess"}),
        (
            "a notice naming the id an asset entry holds",
            {"policy_ids": ["limits-bess-01"]},
            {"bess"},
        ),
        ("a notice naming the group", {"policy_groups": ["operational-limits"]}, {"bess", "pv"}),
        ("a notice naming nothing (a grant changed)", {"policy_ids": []}, {"bess", "pv"}),
    ],
)
def test_a_change_notice_refreshes_the_policies_it_names_at_once(
    mimic: Mimic, tmp_path: Path, what: str, named: dict[str, Any], refetched: set[str]
) -> None:
    bus = MemoryBus()
    loader, _ = make_loader(
        mimic.port,
        tmp_path,
        BESS,
        PV,
        bus=bus,
        refresh_interval_s=3600,
        notifications={"topic": "pbgm/changes"},
    )
    with loader:
        wait_until(lambda: mimic.fetches("bess-01") == mimic.fetches("limits-pv-inv-01") == 1)
        bus.publish("pbgm/changes", notice(**named))
        keys = {"bess": "bess-01", "pv": "limits-pv-inv-01"}
        wait_until(lambda: all(mimic.fetches(keys[n]) == 2 for n in refetched))
        time.sleep(0.1)
        counts = {name: mimic.fetches(key) for name, key in keys.items()}
    assert counts == {name: 2 if name in refetched else 1 for name in keys}


def test_a_gap_in_the_notices_revisions_refreshes_every_policy(
    mimic: Mimic, tmp_path: Path
) -> None:
    """Notices that follow each other refresh what they name; one whose change started
    beyond the last revision heard (a notice lost, a change made with the CLI) refreshes
    everything."""
    bus = MemoryBus()
    loader, _ = make_loader(
        mimic.port, tmp_path, BESS, PV, bus=bus, refresh_interval_s=3600,
        notifications={"topic": "c"},
    )  # fmt: skip
    keys = {"bess": "bess-01", "pv": "limits-pv-inv-01"}

    def fetched() -> dict[str, int]:
        return {name: mimic.fetches(key) for name, key in keys.items()}

    def heard(revision: int, previous: int) -> None:
        named = {"asset_ids": ["bess-01"], "previous": previous}
        bus.publish("c", json.dumps({"revision": revision, **named}).encode())

    with loader:
        wait_until(lambda: fetched() == {"bess": 1, "pv": 1})
        heard(7, 6)
        wait_until(lambda: fetched()["bess"] == 2)
        heard(8, 7)  # the next one: only what it names
        wait_until(lambda: fetched()["bess"] == 3)
        time.sleep(0.1)
        assert fetched() == {"bess": 3, "pv": 1}
        heard(12, 10)  # revisions 9 and 10 were never heard of
        wait_until(lambda: fetched() == {"bess": 4, "pv": 2})
        heard(11, 8)  # a late notice of an earlier change: no gap
        wait_until(lambda: fetched()["bess"] == 5)
        time.sleep(0.1)
    assert fetched() == {"bess": 5, "pv": 2}


def test_a_malformed_notice_is_counted_by_the_bus_and_the_loader_goes_on(
    mimic: Mimic, tmp_path: Path
) -> None:
    bus = MemoryBus()
    loader, _ = make_loader(
        mimic.port, tmp_path, bus=bus, refresh_interval_s=3600, notifications={"topic": "c"}
    )
    with loader:
        wait_until(lambda: mimic.fetches("bess-01") == 1)
        bus.publish("c", b"{not json")
        bus.publish("c", b"[1, 2]")
        bus.publish("c", notice(asset_ids=["bess-01"]))
        wait_until(lambda: mimic.fetches("bess-01") == 2)
    assert bus.stats()["malformed"] == 2


def test_notices_do_not_bypass_the_backoff_of_an_unreachable_server(tmp_path: Path) -> None:
    bus = MemoryBus()
    loader, _ = make_loader(
        1, tmp_path, bus=bus, notifications={"topic": "c"}, backoff={"initial_s": 1, "max_s": 2}
    )
    with loader:
        wait_until(lambda: loader.status()["bess"].counters["errors"] == 1)
        for _ in range(50):
            bus.publish("c", notice())
        time.sleep(0.3)
        attempts = loader.status()["bess"].counters["errors"]
    assert attempts == 1


# --- delivery ----------------------------------------------------------------------------


def test_a_policy_delivered_on_a_bus_topic_is_retained_as_json(
    mimic: Mimic, tmp_path: Path
) -> None:
    bus = MemoryBus()
    target = {"mqtt_topic": "services/voltage/limits", "retain": True}
    loader, _ = make_loader(mimic.port, tmp_path, {**BESS, "deliver_to": target}, bus=bus)
    loader.refresh_now()
    late: list[Any] = []
    bus.subscribe("services/#", late.append)
    assert len(late) == 1 and late[0].retain
    data = json.loads(late[0].payload)
    assert (data["name"], data["version"], data["source"]) == ("bess", 1, "server")
    assert data["document"]["content"]["voltage"]["v_max_pu"] == 1.1
    assert data["fetched_at"] == "2026-03-02T08:00:00Z"


def test_a_failing_callback_is_counted_and_served_again_next_cycle(
    mimic: Mimic, tmp_path: Path
) -> None:
    calls: list[int] = []

    def flaky(loaded: LoadedPolicy) -> None:
        calls.append(loaded.version)
        if len(calls) == 1:
            raise RuntimeError("service busy")

    loader, _ = make_loader(
        mimic.port, tmp_path, {**BESS, "deliver_to": "flaky"}, sinks={"flaky": flaky}
    )
    assert loader.refresh_now()["bess"].counters["delivery_errors"] == 1
    state = loader.refresh_now()["bess"]
    assert calls == [1, 1]
    assert (state.counters["delivered"], state.counters["not_modified"]) == (1, 1)
    loader.refresh_now()
    assert calls == [1, 1]


def test_a_loader_refuses_a_callback_or_bus_it_was_not_given(tmp_path: Path) -> None:
    from pbgm.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="`nowhere`"):
        make_loader(1, tmp_path, {**BESS, "deliver_to": "nowhere"})
    with pytest.raises(ConfigurationError, match="no bus"):
        make_loader(1, tmp_path, {**BESS, "deliver_to": {"mqtt_topic": "t"}})


# --- TLS ---------------------------------------------------------------------------------


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it (cert, key, ca)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loader test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "server.pem", directory / "server.key", directory / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


@pytest.fixture
def tls_mimic(tmp_path: Path) -> Iterator[tuple[Mimic, Path]]:
    cert, key, ca = _tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    running = Mimic(tls=context)
    running.put(("bess-01", "operational_limits"), {"policies": [served(limits())]})
    yield running, ca
    running.close()


def test_https_with_the_configured_ca_file(tls_mimic: tuple[Mimic, Path], tmp_path: Path) -> None:
    mimic, ca = tls_mimic
    url = f"https://127.0.0.1:{mimic.port}"
    loader, sink = make_loader(mimic.port, tmp_path, url=url)
    refused = loader.refresh_now()["bess"]
    assert (refused.state, refused.last_error) == ("unreachable", "server_tls_failed")
    (tmp_path / "trusted").mkdir()
    loader, sink = make_loader(mimic.port, tmp_path / "trusted", url=url, ca_file=str(ca))
    assert loader.refresh_now()["bess"].fresh
    assert sink.items[0].version == 1
