"""Shared pieces of the market tests: the example policies, a real MPC that needs
flexibility, and a service wired to a stand-in market over a real socket."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from adapters.market import MarketService, MarketSettings
from controls import FlexLimits, MpcForecast, MpcLimits, MpcState, MpcVoltageController
from pbgm.bus import Bus, BusMessage, MemoryBus
from pbgm.events import load_policies
from pbgm.store.memory import MemoryStore
from pbgm.testing import memory_store
from tests.controls.cases import ESS_NODE, MODEL, PV_NODES, limits

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "market" / "policies"
RUN = {"market": "goflex", "requester": "svc-voltage-control", "response_timeout_s": 3}
STATE = MpcState(v_slack_pu=1.02, soc={ESS_NODE: 0.5})
FLEX = {5: FlexLimits(-60.0, 0.0), 6: FlexLimits(-60.0, 0.0), 8: FlexLimits(-60.0, 0.0)}


def example_policies() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(POLICIES.glob("*.yaml"))]


def store_with(*extra: Mapping[str, Any], prefix: str = "") -> MemoryStore:
    """The example market policies (trigger topics under `prefix`) and `extra` ones."""
    documents = example_policies()
    for document in documents:
        if document["type"] == "service_trigger":
            event = document["content"]["event"]
            event["topics"] = [f"{prefix}{t}" for t in event["topics"]]
    return memory_store(policies=[*documents, *extra])


def loaded_store() -> MemoryStore:
    """The example policies loaded as `pbgm events` loads files."""
    store = MemoryStore()
    for path in sorted(POLICIES.glob("*.yaml")):
        load_policies(store, path, actor="test")
    return store


def mpc() -> MpcVoltageController:
    """An MPC whose local means are too small for a sunny noon (tests/controls)."""
    return MpcVoltageController(
        MODEL, MpcLimits(limits(q_kvar=5.0, ess_kw=5.0, curtailable=False), FLEX)
    )


def forecast(steps: int = 4) -> MpcForecast:
    load = {n: 1.0 for n in MODEL.nodes}
    return MpcForecast([load] * steps, [dict(PV_NODES)] * steps)


def settings(url: str, **more: Any) -> MarketSettings:
    options: dict[str, Any] = {"markets": {"goflex": {"base_url": url, "retries": 2}}}
    options.update(poll_interval_s=0.02, **more)
    return MarketSettings.from_options(options)


class Results:
    """The flex results published on a bus."""

    def __init__(self, bus: Bus, topic: str = "/edgeflex/goflex/flex_result") -> None:
        self.messages: list[dict[str, Any]] = []
        bus.subscribe(topic, self._got)

    def _got(self, message: BusMessage) -> None:
        self.messages.append(json.loads(message.payload))


OPENED: list[MarketService] = []


def service(
    url: str, store: MemoryStore | None = None, **more: Any
) -> tuple[MarketService, Results]:
    bus = MemoryBus()
    results = Results(bus)
    svc = MarketService(bus, store=store or store_with(), settings=settings(url, **more))
    OPENED.append(svc)
    return svc, results
