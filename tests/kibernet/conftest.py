"""Fixtures of the KIBERNet tests: the stand-in platform on a real socket, a repository
with the poller's `data_access` policy, and a poller on an in-memory bus."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapters.kibernet import KibernetPoller
from adapters.kibernet.standin import KibernetStandIn
from pbgm.bus import BusMessage, MemoryBus
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.memory import MemoryStore
from pbgm.testing import decision_point, memory_store

SUBJECT = "svc-voltage-control"
POLICY_ID = "kibernet-test"
GROUP = "data-sharing"


def data_access(url: str, **content: Any) -> dict[str, Any]:
    """A `data_access` policy: the subject's group may poll the endpoint `kibernet`,
    except data points named `secret-*`; two voltages and a meter reading."""
    document = {
        "format": "pbgm/v1",
        "id": POLICY_ID,
        "type": "data_access",
        "policy_group": GROUP,
        "rule_combining": "deny-overrides",
        "rules": [
            {
                "id": "vpp-services-poll",
                "effect": "Permit",
                "target": {"action": {"id": "poll"}, "resource": {"endpoint": "kibernet"}},
                "condition": {
                    "apply": "at-least-one-member-of",
                    "args": [{"attr": "subject.groups"}, ["vpp-services"]],
                },
            },
            {
                "id": "never-secret-points",
                "effect": "Deny",
                "target": {"action": {"id": "poll"}},
                "condition": {
                    "apply": "starts-with",
                    "args": [{"attr": "resource.data_point"}, "secret-"],
                },
            },
        ],
        "content": {
            "data": {"measurements": ["voltage", "operationPower"]},
            "consumers": {"groups": ["vpp-services"]},
            "endpoints": {
                "kibernet": {"kind": "kibernet", "base_url": url, "timeout_s": 1, "retries": 1}
            },
            "polling": {"endpoint": "kibernet", "interval_s": 1},
            "data_points": {
                "n3": {
                    "id": "F3.N3.U",
                    "path": "/datapoints/{id}/latest",
                    "topic": "/kib/voltage",
                    "format": "json.edgeflex",
                    "signal": "node_3",
                },
                "n4": {
                    "id": "F3.N4.U",
                    "path": "/datapoints/{id}/latest",
                    "topic": "/kib/voltage",
                    "format": "json.edgeflex",
                    "signal": "node_4",
                },
                "meter": {
                    "id": "M4.P",
                    "path": "/datapoints/{id}/latest",
                    "topic": "/kib/meter",
                    "format": "time_value",
                },
            },
            "status_topic": "/kib/status",
        },
    }
    document["content"].update(content)
    return document


def with_rule_obligations(document: dict[str, Any], *obligations: dict[str, Any]) -> dict:
    changed = copy.deepcopy(document)
    changed["rules"][0]["obligations"] = list(obligations)
    return changed


class Inbox:
    """What a bus delivers on a filter, decoded."""

    def __init__(self, bus: Any, topic_filter: str = "#") -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        bus.subscribe(topic_filter, self._take, qos=1)

    def _take(self, message: BusMessage) -> None:
        with self._lock:
            self.items.append((message.topic, json.loads(message.payload)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [payload for t, payload in self.items if t == topic]

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < end, f"timed out; received {self.items[-5:]}"
            time.sleep(0.05)


@pytest.fixture
def kibernet() -> Iterator[KibernetStandIn]:
    with KibernetStandIn() as running:
        running.set("F3.N3.U", 1.02)
        running.set("F3.N4.U", 1.04)
        running.set("M4.P", 12.5, unit="kW", meter_serial="SN-0042", customer_id="C-17")
        yield running


def repository(*documents: dict[str, Any]) -> MemoryStore:
    store = memory_store()
    pap = PolicyAdministrationPoint(store)
    for document in documents:
        pap.create(document, actor="test")
        pap.publish(document["id"], actor="test")
    return store


class Rig:
    """A poller, its repository and bus, for one test."""

    def __init__(self, document: dict[str, Any], **options: Any) -> None:
        self.document = document
        self.store = repository(document)
        self.bus = MemoryBus()
        self.inbox = Inbox(self.bus)
        self.registry = CollectorRegistry()
        self.poller = KibernetPoller(
            self.bus,
            decision_point(self.store, GROUP),
            store=self.store,
            registry=self.registry,
            **{"subject": SUBJECT, "groups": ["vpp-services"], **options},
        )
        self.poller.apply(document)

    def change(self, document: dict[str, Any]) -> None:
        """An operator's new version: stored and published (the PDP follows), and handed
        to the poller as the loader would."""
        pap = PolicyAdministrationPoint(self.store)
        version = self.store.get_policy(document["id"]).version
        pap.update(document["id"], document, expected_version=version, actor="test")
        pap.publish(document["id"], actor="test")
        self.poller.policies.refresh(force=True)
        self.poller.apply(document)

    def metric(self, endpoint: str, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "pbgm_kibernet_reads_total", {"endpoint": endpoint, "outcome": outcome}
        )
        return value or 0.0


@pytest.fixture
def rig(kibernet: KibernetStandIn) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(document: dict[str, Any] | None = None, **options: Any) -> Rig:
        made.append(Rig(document or data_access(kibernet.url), **options))
        return made[-1]

    yield make
    for each in made:
        each.poller.close()
