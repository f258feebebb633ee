"""adapters.rest over a real socket: retries where they are safe, bounded answers, the
three auth modes, and secrets that stay out of errors."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.rest import Auth, RestClient, RestEndpoint, RestError, SecretRef
from pbgm.errors import ConfigurationError
from tests.mqtt_broker import Pki
from tests.rest.scripted import Answer, ScriptedServer


@pytest.fixture
def server() -> Any:
    with ScriptedServer() as running:
        yield running


def client(url: str, **settings: Any) -> RestClient:
    values = {"base_url": url, "retries": 2, "timeout_s": 2, **settings}
    return RestClient(RestEndpoint.from_mapping(values, name="kibernet"))


def test_a_failing_read_is_retried_until_it_answers(server: ScriptedServer) -> None:
    server.answer("GET", "/points", Answer(503), Answer(502), Answer(200, {"value": 1}))
    with client(server.url) as peer:
        assert peer.get_json("/points") == {"value": 1}
    assert len(server.seen("GET", "/points")) == 3


def test_each_retry_waits_its_growing_back_off(server: ScriptedServer) -> None:
    """50 ms after the first failure and 100 ms after the second (plus jitter): the first
    attempt runs outside tenacity's loop, and the numbering of the pauses goes on."""
    server.answer("GET", "/points", Answer(503), Answer(503), Answer(200, {"value": 1}))
    with client(server.url) as peer:
        started = time.monotonic()
        assert peer.get_json("/points") == {"value": 1}
        assert time.monotonic() - started >= 0.05 + 0.1


def test_retries_stop_after_their_number(server: ScriptedServer) -> None:
    server.answer("GET", "/points", Answer(500))
    with client(server.url, retries=1) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/points")
    assert caught.value.code == "peer_unavailable" and caught.value.status == 500
    assert len(server.seen("GET", "/points")) == 2


def test_a_refusal_is_not_retried(server: ScriptedServer) -> None:
    server.answer("GET", "/points", Answer(400, {"error": "bad"}))
    with client(server.url) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/points")
    assert caught.value.code == "peer_rejected"
    assert len(server.seen("GET", "/points")) == 1


def test_a_post_is_not_repeated_unless_idempotent(server: ScriptedServer) -> None:
    server.answer("POST", "/offers", Answer(503), Answer(201, {"id": "o1"}))
    with client(server.url) as peer:
        with pytest.raises(RestError):
            peer.call("POST", "/offers", json_body={}, ok=(201,))
        assert len(server.seen("POST", "/offers")) == 1
        status, _, _ = peer.call("POST", "/offers", json_body={}, ok=(201,), idempotent=True)
    assert status == 201


def test_retry_after_is_honoured_and_a_long_one_is_not_waited_for(
    server: ScriptedServer,
) -> None:
    server.answer("GET", "/slow", Answer(429, headers={"Retry-After": "0.3"}), Answer(200, 1))
    with client(server.url) as peer:
        started = time.monotonic()
        assert peer.get_json("/slow") == 1
        assert time.monotonic() - started >= 0.3
    server.answer("GET", "/busy", Answer(429, headers={"Retry-After": "120"}))
    with client(server.url) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/busy")
    assert caught.value.code == "peer_busy" and caught.value.retry_after == 120
    assert len(server.seen("GET", "/busy")) == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_answer_is_refused(server: ScriptedServer, chunked: bool) -> None:
    server.answer("GET", "/big", Answer(200, b"[" + b"1," * 20_000 + b"1]", chunked=chunked))
    with client(server.url, max_response_bytes=10_000) as peer, pytest.raises(RestError) as e:
        peer.get_json("/big")
    assert e.value.code == "peer_bad_response" and "10000 bytes" in str(e.value)


def test_an_answer_that_is_not_json_is_refused(server: ScriptedServer) -> None:
    server.answer("GET", "/html", Answer(200, b"<html>oops</html>"))
    with client(server.url) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/html")
    assert caught.value.code == "peer_bad_response"


def test_a_slow_peer_times_out(server: ScriptedServer) -> None:
    server.answer("GET", "/slow", Answer(200, 1, delay_s=1.0))
    with client(server.url, timeout_s=0.2, retries=0) as peer, pytest.raises(RestError) as e:
        peer.get_json("/slow")
    assert e.value.code == "peer_timeout"


def test_an_unreachable_peer_is_unavailable() -> None:
    with ScriptedServer() as gone:
        url = gone.url
    with client(url, retries=0) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/points")
    assert caught.value.code == "peer_unavailable"


def test_api_key_from_the_environment_goes_in_its_header_and_nowhere_else(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEER_KEY", "s3cret-key-value")
    server.answer("GET", "/points", Answer(403))
    auth = {"mode": "api_key", "header": "X-Api-Key", "key": {"env": "PEER_KEY"}}
    with client(server.url, auth=auth) as peer, pytest.raises(RestError) as caught:
        peer.get_json("/points")
    assert server.seen("GET", "/points")[0].headers["X-Api-Key"] == "s3cret-key-value"
    assert caught.value.code == "peer_auth_failed"
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(caught.value.details)


def test_oauth2_token_is_fetched_once_and_renewed_after_a_401(
    server: ScriptedServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("client-secret-123\n")
    token = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
    server.answer("POST", "/token", Answer(200, token))
    server.answer("GET", "/points", Answer(200, 1), Answer(200, 2), Answer(401), Answer(200, 3))
    auth = {
        "mode": "oauth2_client_credentials",
        "token_url": f"{server.url}/token",
        "client_id": f"pbgm-{time.monotonic_ns()}",  # the token cache is per client id
        "client_secret": {"file": str(secret)},
    }
    with client(server.url, auth=auth) as peer:
        assert [peer.get_json("/points") for _ in range(3)] == [1, 2, 3]
    assert len(server.seen("POST", "/token")) == 2  # once, and again after the 401
    assert all(r.headers["Authorization"] == "Bearer tok-1" for r in server.seen("GET", "/"))
    basic = server.seen("POST", "/token")[0].headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic).decode() == f"{auth['client_id']}:client-secret-123"


def test_mutual_tls(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    with ScriptedServer(tls=(pki.server.cert, pki.server.key), client_ca=pki.ca_file) as tls:
        tls.answer("GET", "/points", Answer(200, {"ok": True}))
        auth = {
            "mode": "mtls",
            "cert_file": str(pki.client.cert),
            "key_file": {"file": str(pki.client.key)},
        }
        with client(tls.url, auth=auth, ca_file=str(pki.ca_file)) as peer:
            assert peer.get_json("/points") == {"ok": True}
        with (
            client(tls.url, ca_file=str(pki.ca_file), retries=0) as anonymous,
            pytest.raises(RestError) as caught,
        ):
            anonymous.get_json("/points")
        assert caught.value.code == "peer_unavailable"


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ({"auth": {"mode": "api_key", "key": "plain-secret"}}, "$.auth.key"),
        ({"auth": {"mode": "basic"}}, "$.auth.mode"),
        ({"auth": {"mode": "api_key"}}, "$.auth.key"),
        ({"auth": {"mode": "api_key", "key": {"env": "X"}, "token_url": "x"}}, "$.auth.token_url"),
        ({"timeout_s": 0}, "$.timeout_s"),
        ({"retries": 2.5}, "$.retries"),
        ({"base_url": "ftp://peer"}, "$.base_url"),
        ({"base_url": "https://user:pw@peer"}, "$.base_url"),
        ({"base_url": "http://peer.example"}, "$.base_url"),  # the key would go in the clear
        (
            {
                "auth": {
                    "mode": "oauth2_client_credentials",
                    "token_url": "http://peer.example/t",
                    "client_id": "pbgm",
                    "client_secret": {"env": "S"},
                }
            },
            "$.auth.token_url",
        ),
        ({"colour": "red"}, "$.colour"),
    ],
)
def test_bad_settings_are_refused_with_their_path(settings: dict[str, Any], path: str) -> None:
    values = {"base_url": "https://peer.example", **settings}
    with pytest.raises(ConfigurationError) as caught:
        RestEndpoint.from_mapping(values)
    assert caught.value.details["problems"][0]["path"] == path
    assert "plain-secret" not in str(caught.value)


def test_a_missing_secret_says_where_it_was_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigurationError, match="NOT_SET_ANYWHERE"):
        SecretRef(env="NOT_SET_ANYWHERE").read()


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        (RestEndpoint("http://peer.example", auth=Auth("api_key", key=SecretRef(env="K"))),
         "$.base_url"),
        (RestEndpoint("https://peer.example", timeout_s=0), "$.timeout_s"),
        (RestEndpoint("https://peer.example", retries=-1), "$.retries"),
        (RestEndpoint("https://peer.example", max_response_bytes=0), "$.max_response_bytes"),
        (RestEndpoint("https://peer.example", auth=Auth("api_key")), "$.auth.key"),
        (RestEndpoint("https://peer.example", auth=Auth("oauth2_client_credentials",
         token_url="http://peer.example/token", client_id="pbgm",
         client_secret=SecretRef(env="S"))), "$.auth.token_url"),
        (RestEndpoint("https://peer.example", auth=Auth("digest")), "$.auth.mode"),
    ],
)  # fmt: skip
def test_an_endpoint_made_in_code_is_refused_by_the_client_as_its_file_would_be(
    endpoint: RestEndpoint, path: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RestClient(endpoint)
    assert caught.value.details["problems"][0]["path"] == path


def test_a_good_endpoint_made_in_code_is_kept_and_plain_http_is_for_loopback_only() -> None:
    made = RestEndpoint(
        "https://peer.example/api", auth=Auth("api_key", key=SecretRef(env="K")), retries=0
    )
    assert made.checked() is made
    read = RestEndpoint.from_mapping(
        {"base_url": "https://peer.example/api", "auth": {"mode": "api_key", "key": {"env": "K"}},
         "retries": 0}
    )  # fmt: skip
    assert read == made and read.checked() is read
    lab = RestEndpoint("http://127.0.0.1:8080")
    assert lab.checked() is lab
