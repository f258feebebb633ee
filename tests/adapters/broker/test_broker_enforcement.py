"""Enforcement on the broker itself: a real Mosquitto with the dynamic-security plugin.

pbgm's repository (a MemoryStore) holds two `data_access` policies: `/site-a/+/#` for the
group `readers`, plainly permitted; `/site-b/+/#` for the group `kibernet`, permitted
with a `drop-fields` obligation, which only the relay can discharge. `BrokerSync` puts
that into the broker; every client below connects with the password pbgm derives for
it. `eve` is in no policy: whatever she subscribes to, she gets nothing; nobody but the
relay can publish on a relay output topic; and access goes within a second of a change
in the repository.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.broker import (
    BrokerSync,
    MosquittoDynsec,
    NamedGrants,
    PlanSettings,
    broker_password,
)
from adapters.mqtt import MqttBus, open_mqtt_bus
from adapters.relay import Relay, Route
from pbgm.bus import BusMessage
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Group, Store, User
from pbgm.testing import decision_point, memory_store, permit, policy_document
from tests.adapters.broker.dynsec_broker import INSTALL_HINT, DynsecBroker, available
from tests.conftest import require_service

pytestmark = pytest.mark.mosquitto

SECRET = b"k" * 32
PREFIX = "pbgm/relay/"
DROP = {"id": "drop-fields", "attributes": {"fields": ["customer_id"]}}


def reads(policy_id: str, topic: str, group: str, *obligations: dict[str, Any]) -> dict[str, Any]:
    member = {"apply": "at-least-one-member-of", "args": [{"attr": "subject.groups"}, [group]]}
    rule = permit(f"{group}-subscribes", target={"action": {"id": "subscribe"}},
                  condition=member, obligations=list(obligations))  # fmt: skip
    content = {"data": {"topics": [topic]}, "consumers": {"groups": [group]}}
    return policy_document(policy_id, policy_group="data-sharing", rules=[rule],
                           content=content)  # fmt: skip


def repository() -> Store:
    store = memory_store(
        policies=[reads("site-a", "/site-a/+/#", "readers"),
                  reads("site-b", "/site-b/+/#", "kibernet", DROP)]
    )  # fmt: skip
    for group in ("readers", "kibernet"):
        store.add_group(Group(group), actor="t")
    for name, group in (("ann", "readers"), ("kib", "kibernet"), ("eve", None)):
        store.add_user(User(name), actor="t")
        if group:
            store.add_member(group, name, actor="t")
    return store


NAMED = {
    "meter-gw": NamedGrants(publish=("/site-a/#", "/site-b/#")),
    "wild-gw": NamedGrants(publish=("#",)),  # a broad grant: the guard still wins
    "ops": NamedGrants(subscribe=("$SYS/#",)),  # shows that $SYS traffic flows
}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[float, BusMessage]] = []
        self._arrived = threading.Condition()

    def __call__(self, message: BusMessage) -> None:
        with self._arrived:
            self.messages.append((time.monotonic(), message))
            self._arrived.notify_all()

    def topics(self) -> list[str]:
        with self._arrived:
            return [m.topic for _, m in self.messages]

    def wait(self, predicate: Any, timeout: float = 5.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: predicate([m for _, m in self.messages]), timeout)


class World:
    """The broker, the repository, the sync and a bus per principal."""

    def __init__(self, broker: DynsecBroker) -> None:
        self.broker = broker
        self.store = repository()
        self.admin = open_mqtt_bus(broker.admin_config())
        self.control = MosquittoDynsec(self.admin)
        settings = PlanSettings(
            relay_principal="pbgm-relay", relay_prefix=PREFIX, named=NAMED,
            password=lambda name: broker_password(SECRET, name),
        )  # fmt: skip
        self.sync = BrokerSync(self.store, self.control, settings, refresh_s=0.05)
        self.applied = self.sync.sync(force=True)
        self.buses: list[MqttBus] = []

    def bus(self, name: str, **overrides: Any) -> MqttBus:
        password = broker_password(SECRET, name)
        bus = open_mqtt_bus(self.broker.client_config(name, password, **overrides))
        self.buses.append(bus)
        return bus

    def close(self) -> None:
        self.sync.stop()
        for bus in self.buses:
            bus.close()
        self.control.close()
        self.admin.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    if not available():
        require_service("mosquitto", f"with the dynamic-security plugin: {INSTALL_HINT}")
    broker = DynsecBroker(tmp_path / "broker", extra="sys_interval 1\n").start()
    try:
        made = World(broker)
        try:
            yield made
        finally:
            made.close()
    finally:
        broker.stop()


def publish_samples(bus: MqttBus, *topics: str, count: int = 3) -> None:
    for k in range(count):
        for topic in topics:
            body = {"value": k, "customer_id": "c-17"}
            bus.publish(topic, json.dumps(body).encode(), qos=1)


def start_relay(world: World) -> Relay:
    relay_bus = world.bus("pbgm-relay")
    route = Route("/site-b/+/#", "kib", PREFIX + "kib")
    return Relay(relay_bus, decision_point(world.store, "data-sharing"), [route],
                 store=world.store).start()  # fmt: skip


DENIED_FILTERS = ["#", "+/+/#", "/site-a/x/v", "/site-b/x/v", "/site-a/+/#", "pbgm/relay/#",
                  "pbgm/relay/kib/#", "$SYS/#", "$SYS/broker/uptime"]  # fmt: skip


def test_a_principal_no_policy_names_gets_nothing_by_any_filter(world: World) -> None:
    start_relay(world)
    eve, eve_got = world.bus("eve"), Inbox()
    for topic_filter in DENIED_FILTERS:
        eve.subscribe(topic_filter, eve_got, qos=1)
    ann, ann_got = world.bus("ann"), Inbox()
    ann.subscribe("/site-a/+/#", ann_got, qos=1)
    kib, kib_got = world.bus("kib"), Inbox()
    for topic_filter in ("#", "/site-b/+/#", PREFIX + "kib/#"):
        kib.subscribe(topic_filter, kib_got, qos=1)
    ops, ops_got = world.bus("ops"), Inbox()
    ops.subscribe("$SYS/#", ops_got, qos=0)
    time.sleep(0.3)  # the SUBACKs
    publish_samples(world.bus("meter-gw"), "/site-a/x/v", "/site-b/x/v")

    assert ann_got.wait(lambda got: len(got) == 3)  # a plain permit: the raw topic
    assert kib_got.wait(lambda got: len(got) == 3)  # through the relay only, fields dropped
    assert {t for t in kib_got.topics()} == {PREFIX + "kib/site-b/x/v"}
    assert all("customer_id" not in json.loads(m.payload) for _, m in kib_got.messages)
    assert ops_got.wait(lambda got: len(got) > 0, timeout=3)  # $SYS messages did flow
    time.sleep(0.3)
    assert eve_got.messages == []
    assert eve.stats()["subscribe_refused"] == len(DENIED_FILTERS)


def test_nobody_but_the_relay_publishes_on_a_relay_output(world: World) -> None:
    start_relay(world)
    kib, kib_got = world.bus("kib"), Inbox()
    kib.subscribe(PREFIX + "kib/#", kib_got, qos=1)
    time.sleep(0.3)
    for name in ("eve", "ann", "kib", "wild-gw", "meter-gw"):
        world.bus(name).publish(PREFIX + "kib/site-b/x/v", b'{"value": "forged"}', qos=1)
    publish_samples(world.bus("meter-gw"), "/site-b/x/v", count=1)
    assert kib_got.wait(lambda got: len(got) >= 1)
    time.sleep(0.5)
    payloads = [json.loads(m.payload) for _, m in kib_got.messages]
    assert payloads == [{"value": 0}]  # the relay's, and nothing forged


CHANGES = {
    "the policy retired": lambda store: PolicyAdministrationPoint(store).retire(
        "site-a", actor="op-anna"
    ),
    "the principal out of the group": lambda store: store.remove_member(
        "readers", "ann", actor="op-anna"
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_in_the_repository_takes_access_away_within_a_second(
    world: World, change: str
) -> None:
    ann, ann_got = world.bus("ann"), Inbox()
    ann.subscribe("/site-a/+/#", ann_got, qos=1)
    time.sleep(0.3)
    world.sync.start()
    meter = world.bus("meter-gw")
    sent: dict[int, float] = {}
    stop = threading.Event()

    def stream() -> None:
        number = 0
        while not stop.is_set():
            sent[number] = time.monotonic()
            meter.publish("/site-a/x/v", json.dumps({"n": number}).encode(), qos=1)
            number += 1
            time.sleep(0.01)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        assert ann_got.wait(lambda got: len(got) >= 10)
        changed = time.monotonic()
        CHANGES[change](world.store)
        time.sleep(2.0)
    finally:
        stop.set()
        streamer.join(5)
    received = [json.loads(m.payload)["n"] for _, m in ann_got.messages]
    last_sent_at = max(sent[n] for n in received)
    assert last_sent_at - changed < 1.0, f"access lasted {last_sent_at - changed:.3f} s"
    assert max(sent) > max(received) + 50  # the stream went on; ann no longer got it


def test_a_disabled_account_is_disconnected_and_cannot_come_back(world: World) -> None:
    ann = world.bus("ann")
    world.sync.start()
    world.store.set_user_enabled("ann", False, actor="op-anna")
    deadline = time.monotonic() + 3
    while ann.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ann.failure is not None and ann.failure.code == "mqtt_auth_failed"


def test_the_sync_is_idempotent_and_leaves_the_admin_alone(world: World) -> None:
    assert world.applied is not None and world.applied.ok and world.applied.commands > 0
    again = world.control.apply(world.sync.plan_of(*_directory(world)))
    assert (again.commands, again.errors, again.conflicts) == (0, [], [])
    admin = open_mqtt_bus(world.broker.admin_config())
    try:
        assert admin.connected  # pbgm never touched the plugin's own admin
    finally:
        admin.close()


def _directory(world: World) -> tuple[Any, Any]:
    from adapters.broker import read_directory
    from pbgm.model import utc_now

    now = utc_now()
    return read_directory(world.store, now).directory, now


# --- the command ----------------------------------------------------------------------------


def test_pbgm_broker_sync_plan_and_password(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from adapters.broker._cli import main
    from pbgm.bundle import import_bundle, read_bundle
    from pbgm.testing import sqlite_store

    if not available():
        require_service("mosquitto", f"with the dynamic-security plugin: {INSTALL_HINT}")
    broker = DynsecBroker(tmp_path / "broker").start()
    try:
        examples = Path(__file__).resolve().parents[3] / "examples" / "policies"
        import_bundle(sqlite_store(tmp_path / "pbgm.db"), read_bundle(examples), actor="t")
        (tmp_path / "broker.secret").write_bytes(SECRET)
        (tmp_path / "admin.password").write_text(broker.admin_password + "\n")
        config = {
            "store": f"sqlite:///{tmp_path / 'pbgm.db'}",
            "broker": {"bus": {**broker.admin_config(), "password": None,
                               "password_file": "admin.password"}},
            "password_secret_file": "broker.secret",
        }  # fmt: skip
        (tmp_path / "broker.json").write_text(json.dumps(config))
        runner = CliRunner()
        args = ["--config", str(tmp_path / "broker.json")]
        synced = runner.invoke(main, ["sync", "--once", *args])
        assert synced.exit_code == 0, synced.output
        assert json.loads(synced.output)["commands"] > 0
        plan = json.loads(runner.invoke(main, ["plan", *args]).output)
        by_name = {c["username"]: c for c in plan["clients"]}
        kibernet = {(g["topic"], g["allow"]) for g in by_name["svc-kibernet"]["grants"]}
        assert (PREFIX + "svc-kibernet/#", True) in kibernet  # through the relay only
        assert not any(t.startswith("/location") for t, _ in kibernet)  # fields are dropped
        assert "password" not in json.dumps(plan)
        password = runner.invoke(main, ["password", "svc-kibernet", *args]).output.strip()
        assert password == broker_password(SECRET, "svc-kibernet")
        bus = open_mqtt_bus(broker.client_config("svc-kibernet", password))
        bus.close()
        again = runner.invoke(main, ["sync", "--once", *args])
        assert json.loads(again.output)["commands"] == 0
    finally:
        broker.stop()
