"""The relay: a PEP on the bus, with the example `data_access` policy and real stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.relay import Relay, Route
from pbgm.bus import BusMessage, MemoryBus
from pbgm.errors import ConfigurationError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Store
from pbgm.testing import (
    FrozenClock,
    decision_point,
    memory_store,
    permit,
    policy_document,
    sqlite_store,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TOPIC = "/location_10003/30025/edgePMU3 ch1 amplitude"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock) -> Store:
    if request.param == "memory":
        return memory_store(EXAMPLES, clock=clock)
    from pbgm.bundle import import_bundle, read_bundle

    target = sqlite_store(tmp_path / "pbgm.db", clock=clock)
    import_bundle(target, read_bundle(EXAMPLES), actor="test")
    return target


def kibernet_route(subject: str = "svc-kibernet") -> Route:
    return Route("/location_10003/+/#", subject, "/kibernet", codec="time_value")


def relay_for(bus: MemoryBus, store: Store, clock: FrozenClock, *routes: Route) -> Relay:
    pdp = decision_point(store, "data-sharing")
    return Relay(bus, pdp, routes or (kibernet_route(),), store=store, clock=clock).start()


def forwarded(bus: MemoryBus, topic_filter: str = "/kibernet/#") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    bus.subscribe(topic_filter, lambda m: out.append((m.topic, json.loads(m.payload))))
    return out


def samples(bus: MemoryBus, count: int, topic: str = TOPIC) -> None:
    for k in range(count):
        at = datetime.fromtimestamp(START.timestamp() + k, UTC).isoformat()
        body = {"time": at, "value": float(k), "customer_id": "c-17", "meter_serial": "m-9"}
        bus.publish(topic, json.dumps(body).encode())


def test_a_permitted_forward_drops_fields_and_downsamples(store: Store, clock: FrozenClock) -> None:
    bus = MemoryBus()
    out = forwarded(bus)
    relay = relay_for(bus, store, clock)
    samples(bus, 25)
    assert [topic for topic, _ in out] == [f"/kibernet{TOPIC}"] * 3
    assert [body["value"] for _, body in out] == [0.0, 5.5, 15.5]  # first, then 10 s means
    assert all(set(body) == {"time", "value"} for _, body in out)
    stats = relay.stats()
    assert (stats["forwarded"], stats["held"]) == (3, 22)
    audit = [e for e in store.list_audit(limit=50) if e.action == "relay.forward"]
    assert len(audit) == 1  # the policy's `audit` obligation, once per interval


def test_a_denied_forward_is_audited_and_counted(store: Store, clock: FrozenClock) -> None:
    bus = MemoryBus()
    out = forwarded(bus)
    relay = relay_for(bus, store, clock, kibernet_route("svc-unknown"))
    samples(bus, 5)
    clock.advance(seconds=61)
    samples(bus, 1)
    assert out == []
    assert relay.stats()["denied"] == 6
    entries = [e for e in store.list_audit(limit=50) if e.action == "relay.deny"]
    assert [e.details["events"] for e in reversed(entries)] == [1, 5]
    entry = entries[0]
    assert (entry.actor, entry.object_type, entry.object_id) == ("pbgm-relay", "topic", TOPIC)
    assert entry.details["subject"] == "svc-unknown"
    assert entry.details["decision"] == "Deny"
    assert entry.details["reason"] == "denied by policy"


def _rename_policy(*obligations: dict[str, Any]) -> dict[str, Any]:
    return policy_document(
        "feeder-3-to-kibernet",
        policy_group="relay-test",
        rules=[
            permit(
                "kibernet-gets-feeder-3",
                target={"action": {"id": "subscribe"}},
                condition={
                    "apply": "at-least-one-member-of",
                    "args": [{"attr": "subject.groups"}, ["kibernet"]],
                },
                obligations=list(obligations),
            )
        ],
    )


RENAME = {
    "id": "rename-topic",
    "attributes": {"from": "/location_10003/#", "to": "/sww/feeder-3"},
}
KEEP_VALUE = {"id": "keep-fields", "attributes": {"fields": ["value"]}}


def test_rename_topic_and_keep_fields_reshape_what_is_forwarded(clock: FrozenClock) -> None:
    store = memory_store(EXAMPLES, policies=[_rename_policy(RENAME, KEEP_VALUE)], clock=clock)
    bus = MemoryBus()
    out = forwarded(bus)
    relay = Relay(bus, decision_point(store, "relay-test"), [kibernet_route()], store=store)
    relay.start()
    samples(bus, 2)
    assert out == [
        ("/kibernet/sww/feeder-3/30025/edgePMU3 ch1 amplitude", {"time": t, "value": v})
        for t, v in [(datetime.fromtimestamp(START.timestamp() + k, UTC).isoformat(), float(k))
                     for k in range(2)]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "obligation"),
    [
        ("an obligation the relay does not know", {"id": "encrypt", "attributes": {}}),
        ("a downsample without an interval", {"id": "downsample", "attributes": {}}),
        ("a rename to a wildcard", {"id": "rename-topic", "attributes": {"to": "/x/#"}}),
        ("drop-fields without names", {"id": "drop-fields", "attributes": {"fields": 3}}),
    ],
)
def test_an_obligation_the_relay_cannot_discharge_denies(
    clock: FrozenClock, what: str, obligation: dict[str, Any]
) -> None:
    store = memory_store(EXAMPLES, policies=[_rename_policy(obligation)], clock=clock)
    bus = MemoryBus()
    out = forwarded(bus)
    relay = Relay(bus, decision_point(store, "relay-test"), [kibernet_route()], store=store)
    relay.start()
    samples(bus, 1)
    assert out == []
    assert relay.stats()["denied"] == 1
    [entry] = [e for e in store.list_audit(limit=50) if e.action == "relay.deny"]
    assert entry.details["decision"] == "Permit"  # permitted, but not enforceable


def test_malformed_payloads_are_counted_and_the_relay_keeps_running(clock: FrozenClock) -> None:
    store = memory_store(EXAMPLES, clock=clock)
    bus = MemoryBus()
    out = forwarded(bus)
    relay = relay_for(bus, store, clock)
    bus.publish(TOPIC, b'{"time": "yesterday", "value": 1}')
    samples(bus, 1)
    assert relay.stats()["malformed"] == 1
    assert len(out) == 1


def test_a_route_that_would_feed_itself_is_stopped(clock: FrozenClock) -> None:
    store = memory_store(EXAMPLES, clock=clock)
    bus = MemoryBus()
    loop = Route("/location_10003/#", "svc-kibernet", "/location_10003", codec="time_value")
    relay = relay_for(bus, store, clock, loop)
    relay.handle(0, BusMessage("/x", b"{}"))  # malformed for time_value: counted, not raised
    samples(bus, 1, topic="/location_10003/a")
    assert relay.stats()["loops"] == 1
    assert "forwarded" not in relay.stats()


@pytest.mark.parametrize(
    ("what", "route"),
    [
        ("a source that is no topic filter", Route("/a/#/b", "s", "/d")),
        ("a destination with a wildcard", Route("/a/#", "s", "/d/+")),
        ("an unknown codec", Route("/a/#", "s", "/d", codec="xml")),
        ("no subject", Route("/a/#", "", "/d")),
    ],
)
def test_bad_routes_are_refused_at_construction(what: str, route: Route) -> None:
    store = memory_store(EXAMPLES)
    with pytest.raises(ConfigurationError):
        Relay(MemoryBus(), decision_point(store, "data-sharing"), [route], store=store)


@pytest.mark.parametrize(
    ("what", "routes", "says"),
    [
        ("a QoS of 3", [Route("/a/#", "s", "/d", qos=3)], "qos `3`"),
        # beside a route of QoS 1 on the same source, the subscription took 1 and every
        # forward of the other failed to publish
        ("a QoS of -1 beside one of 1",
         [Route("/a/#", "s", "/d"), Route("/a/#", "t", "/e", qos=-1)], "qos `-1`"),
        ("a QoS as text", [Route("/a/#", "s", "/d", qos="1")], "qos `1`"),  # type: ignore[arg-type]
        ("a source that is no text", [Route(7, "s", "/d")], "`source`"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_a_bad_qos_or_source_is_refused_at_construction_naming_it(
    what: str, routes: list[Route], says: str
) -> None:
    store = memory_store(EXAMPLES)
    with pytest.raises(ConfigurationError) as raised:
        Relay(MemoryBus(), decision_point(store, "data-sharing"), routes, store=store)
    assert says in raised.value.message, what


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_each_qos_is_taken(qos: int) -> None:
    store = memory_store(EXAMPLES)
    route = Route("/a/#", "s", "/d", qos=qos)
    relay = Relay(MemoryBus(), decision_point(store, "data-sharing"), [route], store=store)
    assert relay.routes == (route,)


def test_a_policy_change_reaches_the_running_relay(clock: FrozenClock) -> None:
    store = memory_store(EXAMPLES, clock=clock)
    bus = MemoryBus()
    out = forwarded(bus)
    pdp = decision_point(store, "data-sharing")
    relay = Relay(bus, pdp, [kibernet_route()], store=store, refresh_s=0).start()
    samples(bus, 1)
    PolicyAdministrationPoint(store).retire("kibernet-data-access", actor="op-anna")
    assert relay.policies.settle()  # the change is applied in the background
    samples(bus, 1)
    assert len(out) == 1
    assert relay.stats()["denied"] == 1


# --- routes sharing a source, audit failures, the audit bound, nested fields, payloads ------


AUDIT = {"id": "audit", "attributes": {"level": "info"}}


def _relay_with(
    clock: FrozenClock,
    *obligations: dict[str, Any],
    store: Store | None = None,
    routes: tuple[Route, ...] = (),
    **settings: Any,
) -> tuple[Relay, Store]:
    store = store or memory_store(EXAMPLES, clock=clock)
    pap = PolicyAdministrationPoint(store)
    pap.create(_rename_policy(*obligations), actor="test")
    pap.publish("feeder-3-to-kibernet", actor="test")
    routes = routes or (kibernet_route(),)
    relay = Relay(MemoryBus(), decision_point(store, "relay-test"), routes, store=store,
                  clock=clock, **settings)  # fmt: skip
    return relay.start(), store


def test_routes_on_the_same_source_filter_all_run(clock: FrozenClock) -> None:
    store = memory_store(EXAMPLES, policies=[_rename_policy()], clock=clock)
    bus = MemoryBus()
    out = forwarded(bus, "#")
    routes = [
        Route("/location_10003/+/#", "svc-kibernet", "/kibernet", codec="time_value"),
        Route("/location_10003/+/#", "svc-kibernet", "/archive", codec="time_value"),
    ]
    relay = Relay(bus, decision_point(store, "relay-test"), routes, store=store).start()
    samples(bus, 2)
    topics = sorted(topic for topic, _ in out if not topic.startswith("/location"))
    assert topics == [f"/archive{TOPIC}"] * 2 + [f"/kibernet{TOPIC}"] * 2
    assert relay.stats()["forwarded"] == 4
    relay.close()
    samples(bus, 1)
    assert relay.stats()["forwarded"] == 4


def test_a_topic_longer_than_an_audit_id_is_audited_with_its_full_name(
    clock: FrozenClock,
) -> None:
    long_topic = "/location_10003/30025/" + "x" * 300
    relay, store = _relay_with(clock, AUDIT)
    samples(relay.bus, 3, topic=long_topic)  # type: ignore[arg-type]
    assert relay.stats()["forwarded"] == 3
    [entry] = [e for e in store.list_audit(limit=10) if e.action == "relay.forward"]
    assert len(entry.object_id) <= 255
    assert entry.object_id.startswith("/location_10003/30025/xxx")
    assert entry.details["topic"] == long_topic


def test_when_the_audit_cannot_be_written_nothing_passes_unaudited(
    tmp_path: Path, clock: FrozenClock
) -> None:
    import sqlite3

    from pbgm.bundle import import_bundle, read_bundle

    store = sqlite_store(tmp_path / "pbgm.db", clock=clock)
    import_bundle(store, read_bundle(EXAMPLES), actor="test")
    relay, store = _relay_with(clock, AUDIT, store=store)
    out = forwarded(relay.bus)  # type: ignore[arg-type]
    with sqlite3.connect(tmp_path / "pbgm.db") as connection:
        connection.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    samples(relay.bus, 3)  # type: ignore[arg-type]
    assert out == []
    stats = relay.stats()
    assert stats["denied"] == 3
    assert stats["audit_errors"] >= 3  # each message tried again, none waved through
    with sqlite3.connect(tmp_path / "pbgm.db") as connection:
        connection.execute("ALTER TABLE audit_log_away RENAME TO audit_log")
    samples(relay.bus, 1)  # type: ignore[arg-type]
    assert len(out) == 1
    [entry] = [e for e in store.list_audit(limit=10) if e.action == "relay.forward"]
    assert entry.details["events"] == 4  # the three whose audit failed, and this one


def test_the_audit_throttle_writes_a_bounded_number_of_entries_for_any_number_of_topics(
    clock: FrozenClock,
) -> None:
    store = memory_store(EXAMPLES, clock=clock)
    bus = MemoryBus()
    pdp = decision_point(store, "data-sharing")
    route = kibernet_route("svc-unknown")  # denied: every topic's denial is audited
    relay = Relay(bus, pdp, [route], store=store, clock=clock, audit_max_keys=10).start()
    for k in range(500):
        samples(bus, 1, topic=f"/location_10003/{k}/v")
    denials = [e for e in store.list_audit(limit=1000) if e.action == "relay.deny"]
    assert len(denials) == 11  # ten topics and one entry for the other topics
    [other] = [e for e in denials if e.details.get("other_topics")]
    assert other.object_id == "*"
    clock.advance(seconds=61)  # the ten topics' intervals are over: they make room
    for k in range(11):
        samples(bus, 1, topic=f"/location_10003/new-{k}/v")
    denials = [e for e in store.list_audit(limit=1000) if e.action == "relay.deny"]
    assert len(denials) == 22
    accounted = sum(e.details["events"] for e in denials)
    assert accounted == relay.stats()["denied"] == 511  # the overflow entries carry the rest


def test_drop_fields_removes_nested_fields_by_path(clock: FrozenClock) -> None:
    drop = {"id": "drop-fields", "attributes": {"fields": ["meta.customer_id", "serial"]}}
    route = Route("/location_10003/+/#", "svc-kibernet", "/kibernet")
    relay, _ = _relay_with(clock, drop, routes=(route,))
    out = forwarded(relay.bus)  # type: ignore[arg-type]
    meta = {"customer_id": "c-17", "site": "w-3", "deep": {"customer_id": "kept"}}
    body = {"value": 1.5, "serial": "s-1", "meta": meta}
    relay.bus.publish(TOPIC, json.dumps(body).encode())
    [(_, sent)] = out
    assert sent == {"value": 1.5, "meta": {"site": "w-3", "deep": {"customer_id": "kept"}}}


def test_keep_fields_keeps_nested_fields_by_path(clock: FrozenClock) -> None:
    keep = {"id": "keep-fields", "attributes": {"fields": ["value", "meta.site"]}}
    route = Route("/location_10003/+/#", "svc-kibernet", "/kibernet")
    relay, _ = _relay_with(clock, keep, routes=(route,))
    out = forwarded(relay.bus)  # type: ignore[arg-type]
    body = {"value": 1.5, "serial": "s-1", "meta": {"customer_id": "c-17", "site": "w-3"}}
    relay.bus.publish(TOPIC, json.dumps(body).encode())
    [(_, sent)] = out
    assert sent == {"value": 1.5, "meta": {"site": "w-3"}}


def test_a_payload_with_a_duplicate_key_is_not_forwarded(clock: FrozenClock) -> None:
    route = Route("/location_10003/+/#", "svc-kibernet", "/kibernet")
    relay, _ = _relay_with(clock, routes=(route,))
    out = forwarded(relay.bus)  # type: ignore[arg-type]
    relay.bus.publish(TOPIC, b'{"a": 1, "a": 2}')
    assert out == []
    assert relay.stats()["malformed"] == 1
