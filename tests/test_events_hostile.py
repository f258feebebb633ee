"""The event service against hostile input: extreme numbers, floods of topics, no policies.

Every test runs the real service on a `MemoryBus` with a real `MemoryStore`; what leaves
the service is read back with pbgm's own strict codec (no NaN, no Infinity).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from pbgm.bus import BusMessage, MemoryBus
from pbgm.codecs import get_codec
from pbgm.errors import ConfigurationError
from pbgm.events import EventService, EventServiceConfig, open_event_service
from pbgm.testing import memory_store, permit, policy_document

TOPIC = "/edgeflex/pmu/ch0"
NOTICES = "/pbgm/notices"


def notify_every_measurement(group: str = "grid-services") -> dict[str, Any]:
    """Permit every measurement with a notification that carries the event (its RoCoF)."""
    notify = {"id": "publish_notification", "attributes": {"topic": NOTICES}}
    return policy_document(
        "notify-every-measurement",
        policy_type="service_trigger",
        policy_group=group,
        rules=[
            permit(
                "notify",
                target={"action": {"id": "publish"}, "resource": {"kind": "measurement"}},
                obligations=[notify],
            )
        ],
        content={
            "event": {
                "topics": ["/never"],
                "conditions": [{"variable": "x", "operator": "greater_than", "threshold": 1}],
            },
            "actions": [{"kind": "publish_notification", "topic": "/never"}],
            "cooldown_s": 0,
        },
    )


def service_on(bus: MemoryBus, **settings: Any) -> EventService:
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [{"topic": "/edgeflex/#", "kind": "measurement"}], **settings}
    )
    store = memory_store(policies=[notify_every_measurement()])
    return EventService(config, bus=bus, store=store)


def sample(created_ms: int, frequency: float) -> bytes:
    return json.dumps({"frequency": frequency, "created": created_ms}).encode()


def test_extreme_finite_samples_never_make_the_service_publish_a_non_finite_number() -> None:
    bus = MemoryBus()
    notices: list[bytes] = []
    bus.subscribe(NOTICES, lambda m: notices.append(m.payload))
    frequencies = [50.0, 1e308, -1e308, 1e308, -1e308] + [50.0] * 20
    with service_on(bus) as service:
        for k, frequency in enumerate(frequencies):
            bus.publish(TOPIC, sample(1_000_000 + 20 * k, frequency))
    assert len(notices) == len(frequencies)
    decoded = [get_codec("json").decode(n) for n in notices]  # refuses NaN and Infinity
    rocofs = [d["event"].get("rocof") for d in decoded]
    assert rocofs[-1] == pytest.approx(0.0)  # the extremes left the window: healed
    assert service.stats()["measurement_permitted"] == len(frequencies)


def test_the_number_of_topics_with_a_history_is_bounded_and_evictions_are_counted() -> None:
    bus = MemoryBus()
    with service_on(bus, max_topics=50) as service:
        for k in range(400):
            bus.publish(f"/edgeflex/device-{k}/ch0", sample(1_000 + k, 50.0))
        stats = service.stats()
    assert stats["topics"] == 50
    assert stats["topics_evicted"] == 350
    assert stats["received"] == 400


def test_a_topic_seen_again_is_kept_over_the_least_recently_seen() -> None:
    bus = MemoryBus()
    with service_on(bus, max_topics=2) as service:
        bus.publish("/edgeflex/a/ch0", sample(1_000, 50.0))
        bus.publish("/edgeflex/b/ch0", sample(1_000, 50.0))
        bus.publish("/edgeflex/a/ch0", sample(1_020, 50.0))
        bus.publish("/edgeflex/c/ch0", sample(1_000, 50.0))  # evicts b, not a
        assert len(service.samples("/edgeflex/a/ch0")) == 2
        assert service.samples("/edgeflex/b/ch0") == []
        assert len(service.samples("/edgeflex/c/ch0")) == 1


def test_per_device_state_is_bounded_whatever_devices_the_payloads_name() -> None:
    bus = MemoryBus()
    with service_on(bus, max_topics=100) as service:
        for k in range(2_000):
            payload = {"frequency": 50.0, "created": 1_000, "device": f"spoofed-{k}"}
            bus.publish(TOPIC, json.dumps(payload).encode())
        sizes = service.state_sizes()
    assert max(sizes.values()) <= 100


# --- a service configured with no policies for what it does --------------------------


def test_a_policies_directory_without_policies_is_said_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "policies"
    empty.mkdir()
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [{"topic": TOPIC, "kind": "measurement"}], "policies": ["policies"]},
        base_dir=tmp_path,
    )
    with caplog.at_level(logging.ERROR, logger="pbgm.events"):
        service = open_event_service(config, bus=MemoryBus())
        service.start()
        service.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("no policies" in e and "`grid-services`" in e for e in errors), errors
    assert service.stats()["groups_without_policies"] == 1


def test_with_require_policies_a_service_without_policies_refuses_to_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "policies").mkdir()
    config = EventServiceConfig.from_mapping(
        {
            "subscriptions": [{"topic": TOPIC, "kind": "measurement"}],
            "policies": ["policies"],
            "require_policies": True,
        },
        base_dir=tmp_path,
    )
    service = open_event_service(config, bus=MemoryBus())
    with pytest.raises(ConfigurationError) as raised:
        service.start()
    assert raised.value.code == "no_policies"
    assert "`grid-services`" in raised.value.message


def test_a_service_with_policies_for_its_groups_starts_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="pbgm.events"),
        service_on(MemoryBus(), require_policies=True) as service,
    ):
        service.handle(BusMessage(TOPIC, sample(1_000, 50.0)))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "groups_without_policies" not in service.stats()


# --- subscriptions sharing or overlapping a filter -----------------------------------


def test_two_subscriptions_on_one_filter_both_run() -> None:
    bus = MemoryBus()
    config = EventServiceConfig.from_mapping(
        {
            "subscriptions": [
                {"topic": "/grid/+", "kind": "measurement", "codec": "json"},
                {"topic": "/grid/+", "kind": "grid_state", "decide": False},
            ]
        }
    )
    store = memory_store(policies=[notify_every_measurement()])
    with EventService(config, bus=bus, store=store) as service:
        bus.publish("/grid/state", json.dumps({"frequency": 49.9, "created": 5}).encode())
        stats = service.stats()
        assert stats["measurement_permitted"] == 1  # the first subscription
        assert service.grid_state["grid.frequency"] == 49.9  # and the second


def test_a_message_matching_two_filters_is_handled_once_by_each_subscription() -> None:
    bus = MemoryBus()
    config = EventServiceConfig.from_mapping(
        {
            "subscriptions": [
                {"topic": "/edgeflex/#", "kind": "measurement"},
                {"topic": "/edgeflex/+/ch0", "kind": "measurement", "decide": False},
            ]
        }
    )
    store = memory_store(policies=[notify_every_measurement()])
    with EventService(config, bus=bus, store=store) as service:
        bus.publish(TOPIC, sample(1_000, 50.0))
        stats = service.stats()
    assert stats["received"] == 2  # one delivery per subscription, as MQTT makes them
    assert stats["measurement_permitted"] == 1  # only the first decides
    assert stats.get("late", 0) == 1  # the second saw the same sample


def test_a_long_topic_is_audited_with_its_full_name_in_the_details() -> None:
    bus = MemoryBus()
    document = notify_every_measurement()
    document["rules"][0]["obligations"] = [{"id": "audit", "attributes": {"level": "info"}}]
    store = memory_store(policies=[document])
    config = EventServiceConfig.from_mapping(
        {"subscriptions": [{"topic": "/edgeflex/#", "kind": "measurement"}]}
    )
    long_topic = "/edgeflex/" + "d" * 400
    with EventService(config, bus=bus, store=store) as service:
        for k in range(3):
            bus.publish(long_topic, sample(1_000 + k, 50.0))
    assert service.stats()["measurement_permitted"] == 3
    [entry] = [e for e in store.list_audit(limit=10) if e.action == "events.measurement"]
    assert len(entry.object_id) <= 255
    assert entry.details["topic"] == long_topic
