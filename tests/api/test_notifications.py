"""Change notices: the API publishes one on the bus after each committed admin change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pbgm.access import encode_id
from pbgm.api._notify import install_change_notifications
from pbgm.bus import BusMessage, MemoryBus
from tests.api.conftest import World

TOPIC = "pbgm/changes"
LIMITS = f"/api/v1/admin/policies/{encode_id('limits-bess-01')}"


@pytest.fixture
def notices(world: World) -> tuple[MemoryBus, list[dict[str, Any]]]:
    bus = MemoryBus()
    install_change_notifications(world.app, bus, world.store)
    received: list[dict[str, Any]] = []

    def keep(message: BusMessage) -> None:
        assert (message.qos, message.retain) == (1, False)
        received.append(json.loads(message.payload))

    bus.subscribe(TOPIC, keep)
    return bus, received


def edit_limits(world: World, v_max_pu: float = 1.08) -> Any:
    current = world.call("GET", LIMITS, caller="svc-admin")
    document = current.json["document"]
    document["content"]["voltage"]["v_max_pu"] = v_max_pu
    headers = {"If-Match": current.headers["ETag"]}
    return world.call("PUT", LIMITS, caller="svc-admin", json_body=document, headers=headers)


def test_an_update_and_its_publication_each_send_a_notice_naming_the_policy(
    world: World, notices: tuple[MemoryBus, list[dict[str, Any]]]
) -> None:
    _, received = notices
    before = world.store.revision()
    assert edit_limits(world).status == 200
    published = world.call("POST", f"{LIMITS}/publish", caller="svc-admin", json_body={})
    assert published.status == 200
    named = {
        "policy_ids": ["limits-bess-01"],
        "policy_groups": ["operational-limits"],
        "asset_ids": ["bess-01"],
    }
    first = received[0]["revision"]
    assert received == [
        {"revision": first, "previous": before, "change": "update_policy", **named},
        {"revision": world.store.revision(), "previous": first, "change": "publish_policy",
         **named},
    ]  # fmt: skip
    assert before < first < received[1]["revision"]


def test_a_grant_change_names_no_policy(
    world: World, notices: tuple[MemoryBus, list[dict[str, Any]]]
) -> None:
    _, received = notices
    grant = {
        "principal_kind": "service",
        "principal": "svc-market",
        "target_kind": "policy_group",
        "target": "operational-limits",
        "permission": "read",
    }
    before = world.store.revision()
    answer = world.call("POST", "/api/v1/admin/grants", caller="svc-admin", json_body=grant)
    assert answer.status == 201, answer.body
    assert received == [
        {
            "revision": world.store.revision(),
            "previous": before,
            "change": "create_grant",
            "policy_ids": [],
            "policy_groups": [],
            "asset_ids": [],
        }
    ]


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "headers"),
    [
        ("a read", "GET", LIMITS, None, {}),
        ("a listing", "GET", "/api/v1/admin/policies", None, {}),
        ("a stale update", "PUT", LIMITS, {"id": "limits-bess-01"}, {"If-Match": '"v9"'}),
        ("an invalid update", "PUT", LIMITS, {"id": "limits-bess-01"}, {"If-Match": '"v1"'}),
        ("an update without If-Match", "PUT", LIMITS, {"id": "limits-bess-01"}, {}),
        ("a policy fetch", "GET", "/api/v1/policy", None, {}),
    ],
)
def test_nothing_is_sent_when_nothing_was_committed(
    world: World,
    notices: tuple[MemoryBus, list[dict[str, Any]]],
    what: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    _, received = notices
    before = world.store.revision()
    world.call(method, path, caller="svc-admin", json_body=body, headers=headers)
    assert world.store.revision() == before
    assert received == []


def test_a_refused_caller_sends_nothing(
    world: World, notices: tuple[MemoryBus, list[dict[str, Any]]]
) -> None:
    _, received = notices
    answer = world.call("POST", f"{LIMITS}/retire", caller="svc-voltage", json_body={})
    assert answer.status in (403, 404)
    assert received == []


def test_a_failing_bus_does_not_fail_the_committed_change(world: World) -> None:
    bus = MemoryBus()
    notifier = install_change_notifications(world.app, bus, world.store)
    bus.close()
    assert edit_limits(world).status == 200
    assert world.store.get_policy("limits-bess-01").version == 2
    assert notifier.stats() == {"published": 0, "failed": 1}
