"""The CAMARA client against an operator on a real socket: token reuse, `x-correlator`,
timeouts, retries only where the operation is idempotent, and CAMARA errors mapped to
errors that say what to do."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.camara import CamaraNetwork
from pbgm.network import NetworkError, Sink, open_network
from tests.camara import schemas
from tests.camara.server import CamaraServer
from tests.devices.conftest import network_config

PMU = {"phoneNumber": "+4915100000003"}
SERVER = {"ipv4Address": "198.51.100.10"}


def start(
    network: CamaraNetwork, device: dict = PMU, profile: str = "LOW_LATENCY", duration: int = 600
):
    return network.create_session(
        device, qos_profile=profile, duration_s=duration, application_server=SERVER
    )


def test_a_session_is_created_read_extended_and_deleted(camara: CamaraServer, network):
    made = start(network)
    assert made.qos_status == "AVAILABLE" and made.duration_s == 600
    assert made.expires_at is not None and made.started_at is not None
    assert network.get_session(made.session_id) == made
    longer = network.extend_session(made.session_id, 300)
    assert longer.duration_s == 900
    assert [s.session_id for s in network.sessions_of(PMU)] == [made.session_id]
    network.delete_session(made.session_id)
    assert network.sessions_of(PMU) == []


def test_the_token_is_fetched_once_and_reused_by_every_call(camara: CamaraServer, network):
    made = start(network)
    for _ in range(5):
        network.get_session(made.session_id)
    network.reachability(PMU)
    assert camara.tokens_issued == 1
    assert len(camara.calls()) == 1 + 1 + 5 + 1


def test_every_call_carries_its_own_x_correlator(camara: CamaraServer, network):
    made = start(network)
    network.get_session(made.session_id)
    network.qos_profiles()
    seen = [c.headers.get("X-Correlator") for c in camara.calls() if c.operation != "token"]
    assert len(seen) == 3 and len(set(seen)) == 3
    assert all(c and schemas.X_CORRELATOR.fullmatch(c) for c in seen)


def test_a_refused_token_is_fetched_anew_once(camara: CamaraServer, network):
    start(network)
    camara.tokens.clear()  # the operator revoked every token
    assert network.reachability(PMU).reachable is True
    assert camara.tokens_issued == 2


def test_wrong_client_credentials_say_what_to_check(camara: CamaraServer, tmp_path: Path):
    (tmp_path / "wrong.secret").write_text("not-the-secret")
    config = network_config(camara, tmp_path, client_secret_file="wrong.secret")
    with _closing(CamaraNetwork(config)) as network, pytest.raises(NetworkError) as raised:
        network.reachability(PMU)
    assert raised.value.code == "network_auth_failed"
    assert "client id and secret" in raised.value.message
    assert "not-the-secret" not in repr(raised.value.as_dict())


class _closing:
    def __init__(self, network: CamaraNetwork) -> None:
        self.network = network

    def __enter__(self) -> CamaraNetwork:
        return self.network

    def __exit__(self, *_: object) -> None:
        self.network.close()


def test_a_read_is_retried_after_5xx_and_succeeds(camara: CamaraServer, network):
    camara.fail("getReachabilityStatus", 503, "UNAVAILABLE", times=2)
    assert network.reachability(PMU).reachable is True
    assert len(camara.calls("getReachabilityStatus")) == 3


def test_a_read_gives_up_after_its_retries(camara: CamaraServer, network):
    camara.fail("getReachabilityStatus", 500, "INTERNAL", times=10)
    with pytest.raises(NetworkError) as raised:
        network.reachability(PMU)
    assert (
        raised.value.code == "network_unavailable"
        and raised.value.details["upstream_status"] == 500
    )
    assert len(camara.calls("getReachabilityStatus")) == 3  # 1 + retries


def test_a_create_is_never_repeated(camara: CamaraServer, network):
    camara.fail("createSession", 503, "UNAVAILABLE", times=1)
    with pytest.raises(NetworkError) as raised:
        start(network)
    assert raised.value.code == "network_unavailable"
    assert len(camara.calls("createSession")) == 1 and camara.sessions() == []


def test_429_is_waited_for_as_retry_after_says_on_a_read(camara: CamaraServer, network):
    camara.fail("retrieveQoSProfiles", 429, "TOO_MANY_REQUESTS", times=1, retry_after=1)
    began = time.monotonic()
    assert "LOW_LATENCY" in [p.name for p in network.qos_profiles()]
    assert time.monotonic() - began >= 1.0
    assert len(camara.calls("retrieveQoSProfiles")) == 2


def test_429_on_a_create_tells_when_to_retry(camara: CamaraServer, network):
    camara.fail("createSession", 429, "QUOTA_EXCEEDED", times=1, retry_after=30)
    with pytest.raises(NetworkError) as raised:
        start(network)
    assert raised.value.code == "network_busy" and raised.value.retry_after == 30
    assert "30 s" in raised.value.message


def test_retry_after_as_an_http_date_is_read_as_the_seconds_until_it(camara: CamaraServer, network):
    """RFC 9110 allows a date; it counted as 1 s, the REST peers' reader read it right:
    both read it with `adapters.rest.retries.retry_after_s` now."""
    at = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    camara.fail("createSession", 429, "QUOTA_EXCEEDED", times=1, retry_after=at)
    with pytest.raises(NetworkError) as raised:
        start(network)
    assert raised.value.code == "network_busy"
    assert 28 <= raised.value.retry_after <= 30


def test_a_slow_operator_times_out_and_reads_are_retried(camara: CamaraServer, tmp_path: Path):
    camara.delay_s = 0.5
    config = network_config(camara, tmp_path, timeout_s=0.1, retries=1)
    network = CamaraNetwork(config)
    try:
        with pytest.raises(NetworkError) as raised:
            network.reachability(PMU)
        assert raised.value.code == "network_timeout"
        assert len(camara.calls("getReachabilityStatus")) == 2
        with pytest.raises(NetworkError):
            start(network)
        assert len(camara.calls("createSession")) == 1
    finally:
        network.close()


CAMARA_ERRORS = [
    (
        "a second session for the device",
        "createSession",
        409,
        "CONFLICT",
        "session_conflict",
        "extend or delete it first",
    ),
    (
        "a profile not offered now",
        "createSession",
        422,
        "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE",
        "qos_profile_not_applicable",
        "choose an active one",
    ),
    (
        "a duration the profile refuses",
        "createSession",
        400,
        "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE",
        "duration_out_of_range",
        "maximum duration",
    ),
    (
        "an unknown phone number",
        "createSession",
        404,
        "IDENTIFIER_NOT_FOUND",
        "identifier_not_found",
        "check the phone number",
    ),
    (
        "an identifier the operator cannot use",
        "createSession",
        422,
        "UNSUPPORTED_IDENTIFIER",
        "unsupported_identifier",
        "add a phone number",
    ),
    (
        "a scope the operator did not grant",
        "createSession",
        403,
        "PERMISSION_DENIED",
        "network_permission_denied",
        "grant the scope",
    ),
]


@pytest.mark.parametrize(
    ("what", "operation", "status", "code", "ours", "hint"),
    CAMARA_ERRORS,
    ids=[row[0] for row in CAMARA_ERRORS],
)
def test_camara_errors_become_errors_that_say_what_to_do(
    camara: CamaraServer, network, what, operation, status, code, ours, hint
):
    camara.fail(operation, status, code, times=1)
    with pytest.raises(NetworkError) as raised:
        start(network)
    error = raised.value
    assert (error.code, error.details["upstream_code"]) == (ours, code)
    assert hint in error.message and error.details["correlator"]


def test_the_operator_caps_an_extension_at_the_profile_maximum(camara: CamaraServer, network):
    made = start(network, profile="QOS_E", duration=30_000)
    assert network.extend_session(made.session_id, 30_000).duration_s == 50_000


def test_an_ended_session_cannot_be_extended(camara: CamaraServer, network):
    made = start(network)
    camara.end_session(camara.sessions()[0])
    with pytest.raises(NetworkError) as raised:
        network.extend_session(made.session_id, 60)
    assert raised.value.code == "session_extension_not_allowed"


def test_status_assignments_and_subscriptions(camara: CamaraServer, network):
    from datetime import UTC, datetime, timedelta

    camara.reachable['{"phoneNumber": "+4915100000003"}'] = {"reachable": False, "roaming": True}
    assert network.reachability(PMU).reachable is False
    assert network.roaming(PMU).country_code == 208
    assert network.network_type(PMU).network_type == "5G"
    sink = Sink(
        "https://pbgm.example/api/v1/device-notifications",
        "t" * 40,
        datetime.now(UTC) + timedelta(hours=1),
    )
    assigned = network.create_assignment(PMU, qos_profile="THROUGHPUT_M", sink=sink)
    assert assigned.status == "AVAILABLE"
    with pytest.raises(NetworkError) as raised:
        network.create_assignment(PMU, qos_profile="THROUGHPUT_M")
    assert raised.value.code == "assignment_conflict"
    network.delete_assignment(assigned.assignment_id)
    types = [
        "org.camaraproject.device-reachability-status-subscriptions.v0.reachability-disconnected"
    ]
    made = network.subscribe("reachability", PMU, sink=sink, types=types)
    assert made.types == tuple(types) and made.status == "ACTIVE"
    network.unsubscribe("reachability", made.subscription_id)
    with pytest.raises(NetworkError) as raised:
        network.unsubscribe("reachability", made.subscription_id)
    assert raised.value.code == "network_not_found"


def test_the_entry_point_opens_the_camara_network(config):
    opened = open_network(config)
    try:
        assert isinstance(opened, CamaraNetwork)
    finally:
        opened.close()
