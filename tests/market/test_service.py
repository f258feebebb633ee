"""The flexibility-market service against the stand-in market over a real socket.

pbgm is not mocked: the policies are the example ones in a store, decided by pbgm's PDP;
offers are validated by pbgm.flexoffer at the market's side of the socket too.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime

import pytest

from adapters.market.testing import StandInMarket
from controls import FlexSchedule
from controls.flex import parse_flex_result
from pbgm.flexoffer import parse_template, validate_offer
from pbgm.testing import memory_store, permit, policy_document
from tests.market.helpers import OPENED, RUN, example_policies, service, store_with

NODES = (5, 6, 8)
ROWS = ((-20.0, -30.0, -8.0), (-20.0, -60.0, 0.0), (0.0, -30.0, -8.0), (-4.0, 0.0, -8.0))


def request(nodes=NODES, rows=ROWS) -> dict:
    return FlexSchedule("active_power", nodes, rows).to_covee()


def templates() -> dict[str, dict]:
    return {d["asset_id"]: d["content"] for d in example_policies() if d["type"] == "flexoffer"}


def posted(market: StandInMarket) -> list[dict]:
    return [json.loads(o.body) for o in market.offers.values()]


def test_a_request_becomes_valid_offers_that_the_market_assigns_and_a_result_the_mpc_reads():
    with StandInMarket() as market:
        svc, results = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "assigned"
    assert results.messages == [outcome]
    offers = posted(market)
    assert sorted(o["locationId"] for o in offers) == ["node_5", "node_6", "node_8"]
    by_asset = templates()
    now = datetime.now(UTC)
    for offer in offers:
        asset = offer["id"].split("-")[2] + "-" + offer["id"].split("-")[3]
        assert validate_offer(offer, by_asset[asset], now=now) == []
        assert offer["acceptBeforeTime"] <= offer["assignmentBeforeTime"] <= offer["startAfterTime"]
        assert len(offer["flexOfferProfileConstraints"]) == len(ROWS)
    (traded,) = parse_flex_result(outcome)
    assert traded.nodes == NODES
    assert traded.value(0, 5) == pytest.approx(-20.0)
    assert traded.value(1, 6) == pytest.approx(-40.0)  # limit-energy: 10 kWh per 15 min
    assert traded.value(3, 8) == pytest.approx(-8.0)
    statuses = {o.schedule_status["status"] for o in market.offers.values()}
    assert statuses == {"ValidAndPublished"}


def test_the_decisions_go_to_the_decision_log_before_anything_is_submitted():
    with StandInMarket() as market:
        store = store_with()
        svc, _ = service(market.url, store)
        outcome = svc.handle(request(), RUN)
    entries = store.list_audit(limit=20)
    actions = [e.action for e in entries if e.actor == "pbgm-market"]
    assert actions[0] == "market.result"
    assert sorted(actions[1:]) == ["events.market.offer"] * 3 + ["events.market.request"]
    request_entry = next(e for e in entries if e.action == "events.market.request")
    assert request_entry.details["requester"] == "svc-voltage-control"
    assert request_entry.details["policy_ids"] == ["market-on-flex-request"]
    assert request_entry.object_id == outcome["request_id"]


def test_a_requester_the_policy_does_not_name_gets_denied_and_nothing_is_offered():
    with StandInMarket() as market:
        svc, results = service(market.url)
        outcome = svc.handle(request(), {**RUN, "requester": "svc-frequency-control"})
    assert outcome["status"] == "denied" and outcome["reason"] == "request_denied"
    assert market.requests("POST") == []
    assert results.messages[0]["status"] == "denied"


def test_a_request_beyond_the_policy_limit_is_denied():
    big = tuple((-600.0, 0.0, 0.0) for _ in range(2))
    with StandInMarket() as market:
        svc, _ = service(market.url)
        assert svc.handle(request(rows=big), RUN)["status"] == "denied"
    assert market.requests("POST") == []


def test_assets_the_policy_does_not_let_offer_and_nodes_without_an_asset_are_reported():
    locked = policy_document(
        "fo-market-pv-09",
        policy_type="flexoffer",
        policy_group="flexibility",
        asset_id="pv-09",
        rules=[permit(target={"action": {"id": "read"}})],
        content={**templates()["load-05"], "asset_id": "pv-09", "grid_node": 9},
    )
    rows = tuple((-5.0, -5.0, -5.0) for _ in range(2))
    with StandInMarket() as market:
        svc, _ = service(market.url, store_with(locked))
        outcome = svc.handle(request(nodes=(5, 9, 11), rows=rows), RUN)
    states = {o["node"]: (o["state"], o.get("reason", "")) for o in outcome["offers"]}
    assert states[5] == ("assigned", "")
    assert states[9][0] == "denied"
    assert states[11] == ("not_offered", "no_asset")
    assert outcome["status"] == "partial"
    assert [json.loads(o.body)["locationId"] for o in market.offers.values()] == ["node_5"]


def test_an_offer_that_breaks_its_template_never_leaves():
    short = {**templates()["ev-08"], "max_slices": 2}
    document = next(d for d in example_policies() if d["id"] == "fo-market-ev-08")
    document["content"] = short
    others = [d for d in example_policies() if d["id"] != "fo-market-ev-08"]

    with StandInMarket() as market:
        svc, _ = service(market.url, memory_store(policies=[*others, document]))
        outcome = svc.handle(request(), RUN)
    ev = next(o for o in outcome["offers"] if o["asset_id"] == "ev-08")
    assert ev["state"] == "invalid" and "too_many_slices" in ev["violations"]
    assert all("ev-08" not in offer_id for offer_id in market.offers)
    assert outcome["status"] == "partial"


def test_a_rejected_offer_is_reported_back_and_not_submitted_again():
    def no_batteries(offer):
        return "no storage wanted today" if "bess" in offer["id"] else None

    with StandInMarket(rule=no_batteries) as market:
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    bess = next(o for o in outcome["offers"] if o["asset_id"] == "bess-06")
    assert bess["state"] == "rejected" and bess["reason"] == "no storage wanted today"
    assert outcome["status"] == "partial"
    (traded,) = parse_flex_result(outcome)
    assert 6 not in traded.nodes and set(traded.nodes) == {5, 8}
    assert len(market.requests("POST")) == 3  # one submit per offer, none repeated
    assert market.offers[bess["id"]].state == "rejected"


def test_every_offer_rejected_is_a_rejected_result_not_a_fallback():
    with StandInMarket(rule=lambda offer: "price too high") as market:
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "rejected" and "fallback" not in outcome
    assert parse_flex_result(outcome) == ()
    assert len(market.requests("POST")) == 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_market_that_is_down_gives_the_fallback_and_an_audit_entry(caplog):
    store = store_with()
    svc, results = service(f"http://127.0.0.1:{free_port()}/api/v1", store)
    with caplog.at_level(logging.WARNING):
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "fallback" and outcome["reason"] == "market_unavailable"
    assert outcome["fallback"] == {"setpoints": "zero", "ask_again": True}
    assert parse_flex_result(outcome) == ()
    assert {o["state"] for o in outcome["offers"]} == {"unsubmitted"}
    (entry,) = [e for e in store.list_audit(limit=10) if e.action == "market.fallback"]
    assert entry.details["reason"] == "market_unavailable"
    assert results.messages[0]["status"] == "fallback"


def test_a_market_that_does_not_answer_in_time_gives_the_fallback_and_offers_are_withdrawn():
    with StandInMarket(answer=False) as market:
        svc, _ = service(market.url)
        outcome = svc.handle(request(), {**RUN, "response_timeout_s": 0.3})
    assert outcome["status"] == "fallback" and outcome["reason"] == "market_timeout"
    assert {o["state"] for o in outcome["offers"]} == {"timeout"}
    assert {o.state for o in market.offers.values()} == {"canceled"}
    assert len(market.requests("DELETE")) == 3


def test_a_slow_market_within_the_deadline_still_trades():
    with StandInMarket(delay_s=0.1, assign_after_s=0.2) as market:
        svc, _ = service(market.url)
        assert svc.handle(request(), RUN)["status"] == "assigned"


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("a 503 answer", 503),
        ("a 500 answer", 500),
        ("a 429 answer with Retry-After", 429),
    ],
)
def test_a_failing_submit_is_retried_with_the_same_offer_and_trades_once(fault, status):
    with StandInMarket() as market:
        market.fail_next(2, status, retry_after=0.05)
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "assigned", fault
    assert len(market.requests("POST")) == 3 + 2
    assert len(market.offers) == 3  # idempotent: the retried submit made no second offer


def test_a_market_that_keeps_failing_gives_the_fallback():
    with StandInMarket() as market:
        market.fail_next(100, 503)
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "fallback" and outcome["reason"] == "market_unavailable"
    assert len(market.requests("POST")) == 3  # one offer, its two retries; the rest wait


def test_a_malformed_submit_answer_is_settled_by_polling():
    with StandInMarket() as market:
        market.garble_next(1)
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "assigned"
    assert len(market.offers) == 3


def test_malformed_poll_answers_are_skipped_until_a_good_one():
    with StandInMarket(assign_after_s=0.1) as market:
        svc, _ = service(market.url)
        original = market._submit

        def then_garble(body):
            answer = original(body)
            market._faults.append((200, b'{"id": "someone-else", "state": "assigned"}', {}))
            return answer

        market._submit = then_garble
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "assigned"


def test_a_schedule_that_breaks_its_offer_is_refused_and_the_market_told():
    with StandInMarket(schedule="out_of_bounds") as market:
        svc, _ = service(market.url)
        outcome = svc.handle(request(), RUN)
    assert outcome["status"] == "rejected"
    assert {o["state"] for o in outcome["offers"]} == {"schedule_invalid"}
    assert all("slice_energy_out_of_bounds" in o["violations"] for o in outcome["offers"])
    reports = [o.schedule_status for o in market.offers.values()]
    assert {r["status"] for r in reports} == {"InvalidSchedule"}
    assert parse_flex_result(outcome) == ()


@pytest.mark.parametrize(
    ("what_is_wrong", "payload"),
    [
        ("not a request", {"hello": "world"}),
        ("a gap in the predictions", {"variables": ["active_power"], "flex_dict": {
            "active_power": {"pred_2": {"node_5": -1.0}}}}),
        ("a value that is not a number", {"variables": ["active_power"], "flex_dict": {
            "active_power": {"pred_1": {"node_5": "lots"}}}}),
    ],
)  # fmt: skip
def test_a_malformed_request_is_answered_invalid_and_nothing_is_offered(what_is_wrong, payload):
    with StandInMarket() as market:
        svc, results = service(market.url)
        outcome = svc.handle(payload, RUN)
    assert outcome["status"] == "invalid_request", what_is_wrong
    assert market.requests("POST") == [] and results.messages == [outcome]


def test_parameters_a_policy_may_not_set_give_the_fallback():
    with StandInMarket() as market:
        svc, _ = service(market.url)
        outcome = svc.handle(request(), {**RUN, "base_url": "http://elsewhere.example"})
        unknown = svc.handle(request(), {**RUN, "market": "nowhere"})
    assert outcome["reason"] == unknown["reason"] == "invalid_parameters"
    assert market.requests("POST") == []


def test_the_template_of_every_example_asset_is_usable():
    for content in templates().values():
        assert parse_template(content).grid_node in (5, 6, 8)


def test_the_event_service_finds_the_service_by_name_and_builds_it_from_its_settings():
    from pbgm.bus import MemoryBus
    from pbgm.events import ServiceRegistry
    from tests.market.helpers import POLICIES

    bus = MemoryBus()
    with StandInMarket() as market:
        options = {
            "policies": [str(p) for p in sorted(POLICIES.glob("*.yaml"))],
            "markets": {"goflex": {"base_url": market.url}},
            "poll_interval_s": 0.02,
        }
        registry = ServiceRegistry(bus, options={"flexibility-market": options})
        built = registry.get("flexibility-market")
        OPENED.append(built)
        assert built.handle(request(), RUN)["status"] == "assigned"
