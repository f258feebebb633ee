"""End to end on the local Mosquitto (127.0.0.1:1883): the MPC's flexibility request
reaches pbgm's event service over MQTT, the `market-on-flex-request` policy starts the
flexibility-market service, whose FlexOffers the stand-in market (a real socket)
assigns, and the MPC tracks the flex result that comes back over MQTT. The same with
the market down (fallback: the MPC zeroes its set-points and asks again) and with the
offers rejected. Every topic is under a random prefix, so parallel tests do not meet.
"""

from __future__ import annotations

import json
import queue
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from adapters.market import MarketService
from adapters.market.testing import StandInMarket
from controls.flex import parse_flex_result
from pbgm.bus import Bus, BusMessage, open_bus
from pbgm.events import EventService, EventServiceConfig
from tests.conftest import LOCAL_BROKER
from tests.market.helpers import OPENED, STATE, forecast, mpc, settings, store_with
from tests.market.test_service import free_port

pytestmark = pytest.mark.mosquitto

MQTT = {"factory": "adapters.mqtt:open_mqtt_bus", "host": LOCAL_BROKER[0], "port": LOCAL_BROKER[1]}
REQUEST = "/edgeflex/goflex/flex_request"
RESULT = "/edgeflex/goflex/flex_result"


def connect(buses: list[Bus], name: str) -> Bus:
    bus = open_bus({**MQTT, "client_id": f"pbgm-market-test-{name}-{secrets.token_hex(3)}"})
    buses.append(bus)
    return bus


@contextmanager
def pbgm_side(buses: list[Bus], prefix: str, market_url: str) -> Iterator[EventService]:
    """The event service on MQTT with the example market policies, and the market
    service publishing its results over MQTT."""
    store = store_with(prefix=prefix)
    bus = connect(buses, "events")
    market = MarketService(
        bus, store=store, settings=settings(market_url, topic=f"{prefix}{RESULT}")
    )
    OPENED.append(market)
    config = EventServiceConfig.from_mapping(
        {
            "subscriptions": [
                {
                    "topic": f"{prefix}{REQUEST}",
                    "kind": "measurement",
                    "codec": "json",
                    "policy_group": "flexibility",
                    "decide": False,
                }
            ],
            "require_policies": True,
        }
    )
    services = {"flexibility-market": market}
    with EventService(config, bus=bus, store=store, services=services) as events:
        yield events


class Mpc:
    """The MPC's side of the bus: a real `MpcVoltageController` that publishes its
    requests (CoVee shape) and reads the flex results."""

    def __init__(self, bus: Bus, prefix: str) -> None:
        self.bus, self.prefix = bus, prefix
        self.controller = mpc()
        self.results: queue.Queue[BusMessage] = queue.Queue()
        bus.subscribe(f"{prefix}{RESULT}", self.results.put, qos=1)

    def step(self) -> Any:
        plan = self.controller.step(forecast(), STATE)
        if plan.flex_request is not None:
            payload = json.dumps(plan.flex_request.to_covee()).encode()
            self.bus.publish(f"{self.prefix}{REQUEST}", payload, qos=1)
        return plan

    def result(self) -> dict[str, Any]:
        message = self.results.get(timeout=20)
        result: dict[str, Any] = json.loads(message.payload)
        if result["status"] in ("assigned", "partial"):
            for traded in parse_flex_result(result):
                self.controller.receive_flex_response(traded.to_message("flex_response"))
        return result


@pytest.fixture
def prefix() -> str:
    return f"/pbgm-market-test-{secrets.token_hex(4)}"


def test_the_mpc_request_is_traded_and_the_mpc_tracks_the_result(buses, prefix):
    with StandInMarket() as market, pbgm_side(buses, prefix, market.url) as events:
        side = Mpc(connect(buses, "mpc"), prefix)
        first = side.step()
        assert first.status == "flex_requested"
        result = side.result()
        offered = len(market.offers)  # before the next step asks again for its own horizon
        second = side.step()
    assert result["status"] == "assigned"
    assert offered == len(first.flex_request.nodes)
    (traded,) = parse_flex_result(result)
    for k in range(traded.horizon - 1):  # one cycle later: prediction k+1 is step k
        for node in traded.nodes:
            assert second.flex_kw[node][k] == pytest.approx(traded.value(k + 1, node))
    assert events.stats()["services_started"] == 1


def test_with_the_market_down_the_mpc_falls_back_and_asks_again(buses, prefix):
    down = f"http://127.0.0.1:{free_port()}/api/v1"
    with pbgm_side(buses, prefix, down) as events:
        side = Mpc(connect(buses, "mpc"), prefix)
        side.step()
        result = side.result()
        again = side.step()
        second = side.result()
    assert result["status"] == "fallback" and result["fallback"]["setpoints"] == "zero"
    assert again.status == "fallback"  # no traded flexibility: zero set-points ...
    assert set(again.setpoints.reactive_power.values()) == {0.0}
    assert again.flex_request is not None  # ... and it asks again
    assert second["status"] == "fallback"
    assert events.stats()["services_started"] == 2
    audit = [e for e in events.policies.store.list_audit(limit=50) if e.action == "market.fallback"]
    assert len(audit) == 2


def test_rejected_offers_come_back_as_rejected_and_the_mpc_is_not_given_any(buses, prefix):
    with (
        StandInMarket(rule=lambda offer: "no flexibility needed") as market,
        pbgm_side(buses, prefix, market.url),
    ):
        side = Mpc(connect(buses, "mpc"), prefix)
        side.step()
        result = side.result()
        after = side.step()
    assert result["status"] == "rejected"
    assert {o["reason"] for o in result["offers"]} == {"no flexibility needed"}
    assert len(market.requests("POST")) == len(market.offers)  # none re-submitted
    assert after.status == "fallback"  # nothing traded: the MPC's own fallback
