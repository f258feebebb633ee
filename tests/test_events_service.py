"""The event service end to end on a MemoryBus, with the example policies and real stores.

Measurements from a simulated swing (controls.testing) fire the `inertia-on-rocof`
service_trigger policy and the inertia estimation service (adapters.services.inertia)
publishes its estimate; data requests carry real tokens signed by a pbgm key ring;
revocation disables a service account in the store and is audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.services.inertia import InertiaService
from controls.testing import simulate_swing
from pbgm.auth.keys import KeyRing
from pbgm.auth.secrets import hash_secret
from pbgm.auth.tokens import TokenIssuer, TokenVerifier
from pbgm.bus import BusMessage, MemoryBus
from pbgm.errors import InvalidInputError, NotFoundError
from pbgm.events import EventService, EventServiceConfig
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import ServiceAccount, Store
from pbgm.testing import FrozenClock, memory_store, permit, policy_document, sqlite_store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PMU_TOPIC = "/edgeflex/edgepmu3/ch0"
FIELD_TOPIC = "/location_10003/30025/edgePMU3 ch1 amplitude"
REQUESTS = "/pbgm/requests/data"
INERTIA_TOPIC = "/pbgm/services/inertia-estimation"
ISSUER, AUDIENCE = "https://pbgm.example", "pbgm-api"
SECRET_HASH = hash_secret("not-used-here")

CONFIG = {
    "subscriptions": [
        {"topic": "/edgeflex/+/ch0", "kind": "measurement", "device_level": 2},
        {
            "topic": "/location_10003/+/#",
            "kind": "measurement",
            "codec": "time_value",
            "policy_group": "data-sharing",
            "decide": False,
        },
        {"topic": REQUESTS, "kind": "data_request", "policy_group": "data-sharing"},
        {"topic": "/pbgm/grid/state", "kind": "grid_state"},
    ],
    "refresh_ms": 0,
    "reply_window_s": 60,
}


class Recorder:
    """Every message published on the topics it listens to, decoded."""

    def __init__(self, bus: MemoryBus, *filters: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], BusMessage]] = []
        for topic_filter in filters:
            bus.subscribe(topic_filter, self._record, qos=1)

    def _record(self, message: BusMessage) -> None:
        self.messages.append((message.topic, json.loads(message.payload), message))

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [data for t, data, _ in self.messages if t == topic]


def swing_messages(h_s: float = 4.0, *, t_event: float = 2.0) -> Iterator[bytes]:
    """A 10 MW system losing 5 % generation at `t_event`, as json.edgeflex at 50 fps."""
    record = simulate_swing(h_s, s_base_mw=10.0, t_event=t_event, duration_s=5.0, fps=50)
    base_ms = START.timestamp() * 1000
    for t, f, p in zip(record.t, record.f_hz, record.p_mw, strict=True):
        created = round(base_ms + t * 1000)
        yield json.dumps({"frequency": f, "active_power": p, "created": created}).encode()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


BOTH_STORES = pytest.mark.parametrize("store", ["memory", "sqlite"], indirect=True)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock) -> Store:
    """The example bundle in a MemoryStore, or (`BOTH_STORES`) in a migrated SQLite file."""
    if getattr(request, "param", "memory") == "memory":
        target: Store = memory_store(EXAMPLES, clock=clock)
    else:
        from pbgm.bundle import import_bundle, read_bundle

        target = sqlite_store(tmp_path / "pbgm.db", clock=clock)
        import_bundle(target, read_bundle(EXAMPLES), actor="test")
    target.add_service_account(
        ServiceAccount("svc-kibernet", SECRET_HASH, ("policies:read",)), actor="test"
    )
    return target


@pytest.fixture
def keyring(tmp_path: Path, clock: FrozenClock) -> KeyRing:
    ring = KeyRing(tmp_path / "keys", clock=clock)
    ring.generate()
    return ring


class BoundIssuer(TokenIssuer):
    """Issues tokens as the token endpoint does: bound to the account's token generation."""

    def __init__(self, keyring: KeyRing, clock: FrozenClock, store: Store) -> None:
        super().__init__(keyring, issuer=ISSUER, audience=AUDIENCE, clock=clock)
        self.store = store

    def issue(self, subject: str, scopes: Any, **options: Any) -> str:
        try:
            generation = self.store.get_service_account(subject).token_generation
            options.setdefault("generation", generation)
        except NotFoundError:
            pass
        return super().issue(subject, scopes, **options)


@pytest.fixture
def issuer(keyring: KeyRing, clock: FrozenClock, store: Store) -> TokenIssuer:
    return BoundIssuer(keyring, clock, store)


@pytest.fixture
def bus() -> MemoryBus:
    return MemoryBus()


@pytest.fixture
def service(
    bus: MemoryBus, store: Store, keyring: KeyRing, clock: FrozenClock
) -> Iterator[EventService]:
    verifier = TokenVerifier(
        keyring.verification_keys, issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    inertia = InertiaService(bus, topic=INERTIA_TOPIC)
    config = EventServiceConfig.from_mapping(CONFIG)
    events = EventService(
        config,
        bus=bus,
        store=store,
        verifier=verifier,
        services={"inertia-estimation": inertia},
        clock=clock,
    )
    with events:
        yield events


def field_samples(bus: MemoryBus, count: int = 30) -> None:
    """One `{"time", "value"}` sample a second, with two personal fields."""
    for k in range(count):
        at = datetime.fromtimestamp(START.timestamp() + k, UTC).isoformat()
        sample = {"time": at, "value": 230.0 + k, "customer_id": "c-17", "meter_serial": "m-9"}
        bus.publish(FIELD_TOPIC, json.dumps(sample).encode())


def data_request(bus: MemoryBus, token: str | None, topic: str = FIELD_TOPIC, **extra: Any) -> str:
    reply_to = f"/pbgm/replies/{extra.pop('reply', 'r1')}"
    body = {"topic": topic, "reply_to": reply_to, "correlation_id": "c-1", **extra}
    if token is not None:
        body["token"] = token
    bus.publish(REQUESTS, json.dumps(body).encode())
    return reply_to


# --- RoCoF excursion -> service_trigger -> inertia estimation -------------------------------


@BOTH_STORES
def test_rocof_excursion_starts_inertia_estimation_and_publishes_the_estimate(
    bus: MemoryBus, service: EventService
) -> None:
    out = Recorder(bus, INERTIA_TOPIC, "/pbgm/events/#", "/pbgm/data/#")
    for payload in swing_messages(h_s=4.0):
        bus.publish(PMU_TOPIC, payload)
    assert service.wait_idle(timeout=30)

    [estimate] = out.on(INERTIA_TOPIC)
    assert estimate["status"] == "estimate"
    assert estimate["trigger"] == "inertia-on-rocof"
    assert estimate["h_s"] == pytest.approx(4.0, rel=0.1)
    assert estimate["t0"] == pytest.approx(START.timestamp() + 2.0, abs=0.05)
    [notice] = out.on("/pbgm/events/inertia")
    assert notice["text"] == "inertia estimation started"
    assert notice["event"]["trigger"] == "inertia-on-rocof"
    assert notice["event"]["rocof"] < -0.1
    returned, *forwarded = out.on("/pbgm/data/svc-inertia")
    assert len(returned["data"][PMU_TOPIC]) == 101  # window_before_s: 2 s at 50 fps
    trigger_t = returned["data"][PMU_TOPIC][-1]["t"]
    assert forwarded  # window_after_s: 10 s, the samples still to come
    assert all(f["topic"] == PMU_TOPIC and f["sample"]["t"] > trigger_t for f in forwarded)
    assert len(forwarded) == 250 - round((trigger_t - START.timestamp()) * 50)
    stats = service.stats()
    assert stats["triggers_fired"] == 1
    assert stats["trigger_permitted"] == 1
    assert stats["services_started"] == 1
    assert stats["measurement_denied"] == stats["received"]  # nothing permits `publish`


def test_a_steady_frequency_fires_nothing(bus: MemoryBus, service: EventService) -> None:
    out = Recorder(bus, INERTIA_TOPIC)
    for payload in swing_messages(t_event=100.0):  # the step never comes
        bus.publish(PMU_TOPIC, payload)
    assert service.wait_idle(timeout=10)
    assert out.messages == []
    assert "triggers_fired" not in service.stats()


def test_a_second_excursion_within_the_cooldown_does_not_fire_again(
    bus: MemoryBus, service: EventService, clock: FrozenClock
) -> None:
    for payload in swing_messages():
        bus.publish(PMU_TOPIC, payload)
    clock.advance(seconds=60)  # cooldown_s is 300
    for payload in swing_messages():
        bus.publish("/edgeflex/edgepmu4/ch0", payload)
    assert service.wait_idle(timeout=30)
    assert service.stats()["triggers_fired"] == 1


def test_a_trigger_the_pdp_does_not_permit_starts_nothing(
    bus: MemoryBus, store: Store, clock: FrozenClock
) -> None:
    config = EventServiceConfig.from_mapping({**CONFIG, "service_id": "someone-else"})
    started: list[object] = []
    with EventService(
        config, bus=bus, store=store, services={"inertia-estimation": started.append}, clock=clock
    ) as events:
        for payload in swing_messages():
            bus.publish(PMU_TOPIC, payload)
    assert started == []
    assert events.stats()["trigger_denied"] == 1


# --- malformed payloads and unknown topics -------------------------------------------------


@pytest.mark.parametrize(
    ("what", "payload"),
    [
        ("not JSON", b"{frequency: 50"),
        ("not UTF-8", b"\xff\xfe"),
        ("a JSON array", b"[1, 2]"),
        ("json.edgeflex without `created`", b'{"frequency": 50.0}'),
        ("a nested value in json.edgeflex", b'{"created": 1, "frequency": {"v": 50}}'),
        ("NaN", b'{"created": 1, "frequency": NaN}'),
    ],
)
def test_malformed_payloads_are_counted_and_the_service_keeps_running(
    bus: MemoryBus, service: EventService, what: str, payload: bytes
) -> None:
    bus.publish(PMU_TOPIC, payload)
    good = json.dumps({"frequency": 50.0, "active_power": 0.0, "created": 1}).encode()
    bus.publish(PMU_TOPIC, good)
    stats = service.stats()
    assert stats["malformed"] == 1
    assert stats["received"] == 2
    assert stats["measurement_denied"] == 1
    assert "errors" not in stats


def test_unknown_topics_are_counted_and_the_service_keeps_running(
    bus: MemoryBus, service: EventService
) -> None:
    service.handle(BusMessage("/left/over/from/an/old/session", b"{}"))
    bus.publish(PMU_TOPIC, json.dumps({"frequency": 50.0, "created": 1}).encode())
    stats = service.stats()
    assert stats["unknown_topic"] == 1
    assert stats["measurement_denied"] == 1


# --- data requests -------------------------------------------------------------------------


@BOTH_STORES
def test_a_data_request_with_a_valid_token_gets_its_data_with_the_obligations_applied(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, store: Store
) -> None:
    field_samples(bus, 30)
    replies = Recorder(bus, "/pbgm/replies/#")
    reply_to = data_request(bus, issuer.issue("svc-kibernet", []), window_s=60)

    [answer] = replies.on(reply_to)
    assert answer["status"] == "ok"
    assert answer["correlation_id"] == "c-1"
    data = answer["data"]
    assert [round(d["t"] - START.timestamp()) for d in data] == [9, 19, 29]  # 10 s buckets
    assert [d["value"] for d in data] == [234.5, 244.5, 254.5]  # their means
    assert all("customer_id" not in d and "meter_serial" not in d for d in data)
    audit = [e for e in store.list_audit(limit=20) if e.action == "events.data_request"]
    assert audit[0].object_id == FIELD_TOPIC
    assert audit[0].details["event"]["subject"] == "svc-kibernet"
    assert service.stats()["data_request_permitted"] == 1


def test_the_reply_goes_to_the_mqtt5_response_topic_with_its_correlation_data(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer
) -> None:
    field_samples(bus, 3)
    replies = Recorder(bus, "/pbgm/replies/#")
    token = issuer.issue("svc-kibernet", [])
    properties = {
        "response_topic": "/pbgm/replies/mqtt5",
        "correlation_data": b"\x01\x02",
        "user_properties": {"authorization": f"Bearer {token}"},
    }
    bus.publish(REQUESTS, json.dumps({"topic": FIELD_TOPIC}).encode(), properties=properties)
    [(topic, answer, message)] = replies.messages
    assert topic == "/pbgm/replies/mqtt5"
    assert answer["status"] == "ok"
    assert len(answer["data"]) == 1
    assert message.properties["correlation_data"] == b"\x01\x02"


def _tampered(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[:-4]}AAAA"


@pytest.mark.parametrize(
    ("what", "make_token", "code"),
    [
        ("no token", lambda issuer: None, "token_missing"),
        ("garbage", lambda issuer: "not-a-jwt", "token_invalid"),
        (
            "a forged signature",
            lambda issuer: _tampered(issuer.issue("svc-kibernet", [])),
            "token_invalid",
        ),
        ("an unknown account", lambda issuer: issuer.issue("svc-nobody", []), "token_revoked"),
    ],
)
def test_a_data_request_without_a_good_token_is_denied_and_answered_with_the_code(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, what: str, make_token: Any,
    code: str,
) -> None:  # fmt: skip
    field_samples(bus, 3)
    replies = Recorder(bus, "/pbgm/replies/#")
    token = make_token(issuer)
    data_request(bus, token)
    [(_, answer, message)] = replies.messages
    assert answer == {
        "status": "denied",
        "error": {"code": code, "message": answer["error"]["message"]},
        "correlation_id": "c-1",
    }
    assert token is None or token.encode() not in message.payload
    assert service.stats()["bad_token"] == 1


@pytest.mark.parametrize("change", ["re-created", "disabled and enabled again"])
def test_a_token_of_an_earlier_instance_of_the_account_is_denied(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, store: Store, change: str
) -> None:
    field_samples(bus, 3)
    replies = Recorder(bus, "/pbgm/replies/#")
    old = issuer.issue("svc-kibernet", [])
    if change == "re-created":
        store.delete_service_account("svc-kibernet", actor="test")
        account = ServiceAccount("svc-kibernet", SECRET_HASH, ("policies:read",))
        store.add_service_account(account, actor="test")
    else:
        store.set_service_account_enabled("svc-kibernet", False, actor="test")
        store.set_service_account_enabled("svc-kibernet", True, actor="test")
    service.policies.refresh(force=True)
    data_request(bus, old)
    [(_, answer, _)] = replies.messages
    assert (answer["status"], answer["error"]["code"]) == ("denied", "token_revoked")


def test_an_expired_token_is_denied(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, clock: FrozenClock
) -> None:
    token = issuer.issue("svc-kibernet", [])
    clock.advance(hours=1)
    replies = Recorder(bus, "/pbgm/replies/#")
    [answer] = replies.on(data_request(bus, token))
    assert answer["error"]["code"] == "token_expired"


def test_a_valid_token_for_data_no_policy_permits_is_denied(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer
) -> None:
    replies = Recorder(bus, "/pbgm/replies/#")
    reply_to = data_request(bus, issuer.issue("svc-kibernet", []), topic="/location_20000/1/x")
    [answer] = replies.on(reply_to)
    assert answer["status"] == "denied"
    assert answer["error"]["code"] == "not_permitted"
    assert service.stats()["data_request_denied"] == 1


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("no reply topic", {"topic": FIELD_TOPIC}),
        ("a reply topic outside the prefix", {"topic": FIELD_TOPIC, "reply_to": "/control/x"}),
        ("a wildcard reply topic", {"topic": FIELD_TOPIC, "reply_to": "/pbgm/replies/#"}),
    ],
)
def test_a_data_request_without_an_acceptable_reply_topic_is_dropped(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, what: str, body: dict[str, Any]
) -> None:
    everything = Recorder(bus, "#")
    body = {**body, "token": issuer.issue("svc-kibernet", [])}
    bus.publish(REQUESTS, json.dumps(body).encode())
    assert [t for t, _, _ in everything.messages] == [REQUESTS]
    assert service.stats()["no_reply_topic"] == 1


def test_a_request_for_a_topic_filter_is_refused(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer
) -> None:
    replies = Recorder(bus, "/pbgm/replies/#")
    [answer] = replies.on(data_request(bus, issuer.issue("svc-kibernet", []), topic="/#"))
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "invalid_request"


# --- revocation ------------------------------------------------------------------------------

REVOKE_ON_CONTROL_READ = policy_document(
    "revoke-on-control-read",
    policy_group="data-sharing",
    rules=[
        {
            "id": "no-control-data",
            "effect": "Deny",
            "target": {"action": {"id": "read"}},
            "condition": {
                "apply": "topic-matches",
                "args": [{"attr": "resource.topic"}, "/voltage_control/control/#"],
            },
            "obligations": [{"id": "revoke_access", "attributes": {}}],
        }
    ],
    content={"data": {"topics": ["/voltage_control/control/#"]}, "consumers": {"groups": ["x"]}},
)


@BOTH_STORES
def test_after_revoke_access_fires_the_services_next_data_request_is_denied(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, store: Store
) -> None:
    pap = PolicyAdministrationPoint(store)
    pap.create(REVOKE_ON_CONTROL_READ, actor="op-anna")
    pap.publish("revoke-on-control-read", actor="op-anna")
    field_samples(bus, 3)
    replies = Recorder(bus, "/pbgm/replies/#")
    token = issuer.issue("svc-kibernet", [])
    before = data_request(bus, token, reply="before")
    probe = data_request(bus, token, topic="/voltage_control/control/active_power", reply="probe")
    after = data_request(bus, token, reply="after")

    assert replies.on(before)[0]["status"] == "ok"
    assert replies.on(probe)[0]["error"]["code"] == "not_permitted"
    assert replies.on(after)[0]["error"]["code"] == "token_revoked"
    assert store.get_service_account("svc-kibernet").enabled is False
    [entry] = [e for e in store.list_audit(limit=50) if e.action == "events.revoke_access"]
    assert (entry.actor, entry.object_type, entry.object_id) == (
        "pbgm-event-service",
        "service_account",
        "svc-kibernet",
    )
    assert entry.details["event"]["topic"] == "/voltage_control/control/active_power"
    assert entry.details["event"]["policy_ids"] == ["revoke-on-control-read"]
    assert service.stats()["revocations"] == 1


@BOTH_STORES
def test_a_policy_change_in_the_store_reaches_the_running_service(
    bus: MemoryBus, service: EventService, issuer: TokenIssuer, store: Store
) -> None:
    field_samples(bus, 3)
    replies = Recorder(bus, "/pbgm/replies/#")
    token = issuer.issue("svc-kibernet", [])
    assert replies.on(data_request(bus, token, reply="one"))[0]["status"] == "ok"
    PolicyAdministrationPoint(store).retire("kibernet-data-access", actor="op-anna")
    assert service.policies.settle(10)  # applied in the background, never in a message
    assert replies.on(data_request(bus, token, reply="two"))[0]["status"] == "denied"


# --- grid state, notifications and obligations nobody handles ------------------------------


def _notify_in_alert(obligation: str = "publish_notification") -> dict[str, Any]:
    return policy_document(
        "notify-in-alert",
        policy_type="service_trigger",
        policy_group="grid-services",
        rules=[
            permit(
                "pmu-samples-in-alert",
                target={"action": {"id": "publish"}, "resource": {"kind": "measurement"}},
                condition={"apply": "equal", "args": [{"attr": "environment.grid.state"}, "alert"]},
                obligations=[
                    {
                        "id": obligation,
                        "attributes": {
                            "topic": "/pbgm/alerts",
                            "payload": {"value": {"severity": "warning"}},
                        },
                    }
                ],
            )
        ],
        content={
            "event": {
                "topics": ["/nothing"],
                "conditions": [{"variable": "x", "operator": "greater_than", "threshold": 1}],
            },
            "actions": [{"kind": "publish_notification", "topic": "/nothing"}],
            "cooldown_s": 0,
        },
    )


def test_grid_state_reaches_the_environment_of_later_decisions(
    bus: MemoryBus, service: EventService, store: Store
) -> None:
    pap = PolicyAdministrationPoint(store)
    pap.create(_notify_in_alert(), actor="op-anna")
    pap.publish("notify-in-alert", actor="op-anna")
    alerts = Recorder(bus, "/pbgm/alerts")
    sample = json.dumps({"frequency": 50.0, "created": 1}).encode()
    bus.publish(PMU_TOPIC, sample)
    bus.publish("/pbgm/grid/state", b'{"state": "alert"}')
    bus.publish(PMU_TOPIC, json.dumps({"frequency": 50.0, "created": 2}).encode())
    [alert] = alerts.on("/pbgm/alerts")
    assert alert["severity"] == "warning"
    assert alert["event"]["device"] == "edgepmu3"
    assert alert["event"]["kind"] == "measurement"
    assert service.stats()["measurement_permitted"] == 1


def test_an_obligation_nobody_handles_is_not_enforced(
    bus: MemoryBus, service: EventService, store: Store
) -> None:
    pap = PolicyAdministrationPoint(store)
    pap.create(_notify_in_alert("sound-the-siren"), actor="op-anna")
    pap.publish("notify-in-alert", actor="op-anna")
    bus.publish("/pbgm/grid/state", b'{"state": "alert"}')
    bus.publish(PMU_TOPIC, json.dumps({"frequency": 50.0, "created": 2}).encode())
    stats = service.stats()
    assert stats["obligations_failed"] == 1
    assert "measurement_permitted" not in stats


def test_a_flood_of_bad_messages_is_counted_but_warned_about_once(
    bus: MemoryBus, service: EventService, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="pbgm.events"):
        for _ in range(100):
            bus.publish(PMU_TOPIC, b"garbage")
            service.handle(BusMessage("/unknown", b"{}"))
    assert service.stats()["malformed"] == 100
    assert service.stats()["unknown_topic"] == 100
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "malformed payload on `/edgeflex/edgepmu3/ch0`" in warned[0]
    assert "no subscription covers `/unknown`" in warned[1]


def test_a_trigger_can_revoke_the_grants_of_a_principal(
    bus: MemoryBus, store: Store, clock: FrozenClock
) -> None:
    document = json.loads((EXAMPLES / "policies" / "inertia-on-rocof.json").read_text())
    document["id"] = "revoke-on-rocof"
    document["target"] = {"resource": {"trigger": "revoke-on-rocof"}}  # no service to run
    document["content"]["actions"] = [
        {"kind": "revoke_access", "principal": "svc-inertia"}  # a user: its grants
    ]
    pap = PolicyAdministrationPoint(store)
    pap.retire("inertia-on-rocof", actor="op-anna")
    pap.create(document, actor="op-anna")
    pap.publish("revoke-on-rocof", actor="op-anna")
    assert [g.enabled for g in store.list_grants(principal="svc-inertia")] == [True]
    pmu = {**CONFIG["subscriptions"][0], "s_base_mw": 10}  # no run_service parameters now
    config = EventServiceConfig.from_mapping({**CONFIG, "subscriptions": [pmu]})
    with EventService(config, bus=bus, store=store, clock=clock):
        for payload in swing_messages():
            bus.publish(PMU_TOPIC, payload)
    [grant] = store.list_grants(principal="svc-inertia")
    assert grant.enabled is False
    [entry] = [e for e in store.list_audit(limit=50) if e.action == "events.revoke_access"]
    assert (entry.object_type, entry.object_id) == ("grant", str(grant.id))
    assert entry.details["event"]["trigger"] == "revoke-on-rocof"
    assert entry.details["event"]["device"] == "edgepmu3"


@pytest.mark.parametrize("window", [-1, "10", float("nan"), 86_401, True])
def test_a_run_service_window_that_is_no_number_of_seconds_is_refused(
    service: EventService, window: object
) -> None:
    """The service_trigger schema bounds `parameters.window_s` now; an obligation made
    another way is refused too, naming it, rather than giving the service no samples (a
    negative window) or failing with a bare ValueError (a text)."""
    from pbgm.events._handlers import Event
    from pbgm.model import Obligation, Request

    obligation = Obligation(
        "run_service",
        {"service": "inertia-estimation", "parameters": {"window_s": window}},
    )
    message = BusMessage(topic=FIELD_TOPIC, payload=b"{}")
    event = Event("measurement", FIELD_TOPIC, message, Request(), START.timestamp())
    with pytest.raises(InvalidInputError) as raised:
        service.obligations.run_service(obligation, event)
    assert "`parameters.window_s`" in raised.value.message
