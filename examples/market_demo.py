"""The flexibility market, end to end with a local stand-in market (docs/market.md).

An MPC on a small LV feeder cannot hold the voltage band with its own means and asks
for flexibility; pbgm's event service, under the `market-on-flex-request` policy
(examples/market/policies/), starts the flexibility-market service, which offers the
assets at the requested nodes as FlexOffers (each validated against its `flexoffer`
policy), the stand-in market assigns them, and the MPC tracks the flex result. Then
the market goes away: the service answers with the fallback (zero set-points, ask
again) and writes an audit entry. Runs in process (a memory bus), the market is a
real HTTP server on 127.0.0.1; exits 0.

    .venv/bin/python examples/market_demo.py
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from adapters.market import MarketService, MarketSettings
from adapters.market.testing import StandInMarket
from controls import (
    DgLimits,
    EssLimits,
    FlexLimits,
    MpcForecast,
    MpcLimits,
    MpcState,
    MpcVoltageController,
    VoltageLimits,
)
from controls.flex import parse_flex_result
from controls.testing import lv_feeder
from pbgm.bus import MemoryBus
from pbgm.events import EventService, EventServiceConfig, load_policies
from pbgm.store.memory import MemoryStore

HERE = Path(__file__).resolve().parent
REQUEST, RESULT = "/edgeflex/goflex/flex_request", "/edgeflex/goflex/flex_result"
PV = {4: 30.0, 5: 30.0, 6: 40.0, 8: 30.0}


FEEDER = lv_feeder().sensitivities()


def controller() -> MpcVoltageController:
    """An MPC whose PV inverters and battery are too small for a sunny noon."""
    dg = {n: DgLimits(-5.0, 5.0, curtailable=False) for n in PV}
    ess = {6: EssLimits(-5.0, 5.0, energy_kwh=40.0, soc_min=0.1, soc_max=0.9)}
    flex = {n: FlexLimits(-60.0, 0.0) for n in (5, 6, 8)}
    return MpcVoltageController(FEEDER, MpcLimits(VoltageLimits(dg=dg, ess=ess), flex))


def forecast() -> MpcForecast:
    load = dict.fromkeys(FEEDER.nodes, 1.0)
    return MpcForecast([load] * 4, [dict(PV)] * 4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(market_url: str, title: str) -> tuple[dict, MemoryStore]:
    print(f"\n== {title}")
    store = MemoryStore()
    for path in sorted((HERE / "market" / "policies").glob("*.yaml")):
        load_policies(store, path, actor="demo")
    bus = MemoryBus()
    results: list[dict] = []
    bus.subscribe(RESULT, lambda m: results.append(json.loads(m.payload)))
    options = {
        "markets": {"goflex": {"base_url": market_url, "retries": 1}},
        "poll_interval_s": 0.05,
    }
    market = MarketService(bus, store=store, settings=MarketSettings.from_options(options))
    subscription = {"topic": REQUEST, "kind": "measurement", "codec": "json",
                    "policy_group": "flexibility", "decide": False}  # fmt: skip
    config = EventServiceConfig.from_mapping({"subscriptions": [subscription]})
    mpc, state = controller(), MpcState(v_slack_pu=1.02, soc={6: 0.5})
    with EventService(
        config, bus=bus, store=store, services={"flexibility-market": market}
    ) as events:
        plan = mpc.step(forecast(), state)
        request = plan.flex_request
        assert request is not None, "the MPC should need flexibility"
        print(f"MPC: {plan.status}; asks for kW at nodes {list(request.nodes)}:")
        for k, row in enumerate(request.values):
            print(f"  prediction {k + 1}: {[round(v, 1) for v in row]}")
        bus.publish(REQUEST, json.dumps(request.to_covee()).encode())
        events.wait_idle(timeout=30)
    market.close()
    (result,) = results
    print(
        f"flex_result: status `{result['status']}`"
        + (f", reason `{result['reason']}`" if "reason" in result else "")
    )
    for offer in result["offers"]:
        print(
            f"  offer {offer.get('id', '-')}: {offer['asset_id']} at node {offer['node']}"
            f" -> {offer['state']}"
        )
    traded = parse_flex_result(result)
    for schedule in traded:
        mpc.receive_flex_response(schedule.to_message("flex_response"))
        print(f"  traded {schedule.variable} at nodes {list(schedule.nodes)}: "
              f"{[[round(v, 1) for v in row] for row in schedule.values]}")  # fmt: skip
    after = mpc.step(forecast(), state)
    print(f"MPC next cycle: {after.status}; flexibility held: "
          f"{ {n: [round(v, 1) for v in vs[:2]] for n, vs in after.flex_kw.items()} }")  # fmt: skip
    return result, store


def main() -> int:
    with StandInMarket(assign_after_s=0.1) as market:
        traded, _ = run(market.url, "1. request -> FlexOffers -> assignment -> flex result")
        for offer in market.offers.values():
            document = offer.document
            first = document["flexOfferProfileConstraints"][0]["energyConstraintList"][0]
            unit = f"{document['multiplier']}{document['unit']}"
            print(f"  the market holds {document['id']}: {offer.state}, slice 1 {first} {unit}")
    fallback, store = run(f"http://127.0.0.1:{free_port()}/api/v1", "2. the market is down")
    entries = [e for e in store.list_audit(limit=50) if e.action == "market.fallback"]
    print(f"audit: {entries[0].action} {entries[0].object_id} {entries[0].details['reason']}")
    ok = traded["status"] == "assigned" and fallback["status"] == "fallback" and len(entries) == 1
    print("\nflexibility market demo " + ("done" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
