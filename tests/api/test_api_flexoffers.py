"""FlexOffers over REST: checked against their template policy at the server's time,
recorded as accepted or rejected with every violation coded; schedules likewise."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import EXAMPLES, World, b64

TEMPLATE = {"policy_id": b64("fo-template-bess-01")}


def sample(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / "flexoffers" / name).read_text())


def submit(world: World, offer: dict[str, Any], caller: str = "svc-market", **params: str):
    return world.call(
        "POST", "/api/v1/flexoffers", caller=caller, json_body=offer, params=params or TEMPLATE
    )


def test_a_valid_offer_is_accepted_and_recorded(world: World):
    offer = sample("offer-bess-01-valid.json")
    reply = submit(world, offer)
    assert reply.status == 201
    assert (reply.json["state"], reply.json["reasons"]) == ("accepted", [])
    assert reply.json["policy_id"] == "fo-template-bess-01"
    assert reply.headers["Location"] == f"/api/v1/flexoffers/{b64(offer['id'])}"
    stored = world.store.get_flexoffer(offer["id"])
    assert (stored.state, stored.offered_by, stored.document) == ("accepted", "svc-market", offer)


def test_an_invalid_offer_is_rejected_with_every_violation_coded(world: World):
    reply = submit(world, sample("offer-bess-01-invalid.json"))
    assert reply.status == 201 and reply.json["state"] == "rejected"
    codes = [r["code"] for r in reply.json["reasons"]]
    assert codes == [
        "offered_by_not_allowed",
        "assignment_after_start",
        "not_on_interval_grid",
        "deadline_passed",
        "slice_energy_out_of_bounds",
        "power_factor_out_of_bounds",
        "total_energy_infeasible",
    ]
    assert all(r["path"].startswith("$") and r["message"] for r in reply.json["reasons"])


def test_the_only_readable_template_is_used_when_none_is_named(world: World):
    reply = world.call(
        "POST",
        "/api/v1/flexoffers",
        caller="svc-market",
        json_body=sample("offer-bess-01-valid.json"),
    )
    assert reply.json["policy_id"] == "fo-template-bess-01"


def test_a_schedule_is_checked_against_the_offer_and_assigns_it(world: World):
    offer = sample("offer-bess-01-valid.json")
    submit(world, offer)
    path = f"/api/v1/flexoffers/{b64(offer['id'])}/schedule"
    late = dict(sample("schedule-bess-01-valid.json"), startTime="2026-03-02T18:00:00Z")
    refused = world.call("POST", path, caller="svc-market", json_body=late)
    assert refused.status == 201 and refused.json["state"] == "rejected"
    assert "schedule_outside_window" in [r["code"] for r in refused.json["reasons"]]
    taken = world.call(
        "POST", path, caller="svc-market", json_body=sample("schedule-bess-01-valid.json")
    )
    assert (taken.json["state"], taken.json["number"]) == ("accepted", 2)
    shown = world.call("GET", f"/api/v1/flexoffers/{b64(offer['id'])}", caller="svc-market")
    assert shown.json["state"] == "assigned"
    assert [s["state"] for s in shown.json["schedules"]] == ["rejected", "accepted"]


def test_a_rejected_offer_cannot_be_scheduled(world: World):
    offer = sample("offer-bess-01-invalid.json")
    submit(world, offer)
    path = f"/api/v1/flexoffers/{b64(offer['id'])}/schedule"
    reply = world.call(
        "POST", path, caller="svc-market", json_body=sample("schedule-bess-01-valid.json")
    )
    assert reply.json["state"] == "rejected"
    assert [r["code"] for r in reply.json["reasons"]] == ["state_not_schedulable"]


REFUSED = [
    (
        "an offer without an id",
        {"state": "offered"},
        "svc-market",
        TEMPLATE,
        422,
        "validation_failed",
    ),
    ("a template the caller may not read", None, "svc-voltage", TEMPLATE, 404, "not_found"),
    (
        "a template that is no flexoffer policy",
        None,
        "svc-market",
        {"policy_id": b64("limits-bess-01")},
        404,
        "not_found",
    ),
    (
        "a template id that is not base64",
        None,
        "svc-market",
        {"policy_id": "%%"},
        400,
        "malformed_id",
    ),
    ("no template readable at all", None, "svc-voltage", {}, 400, "policy_required"),
]


@pytest.mark.parametrize(
    ("what", "offer", "caller", "params", "status", "code"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_offers_that_cannot_be_recorded(world: World, what, offer, caller, params, status, code):
    offer = offer or sample("offer-bess-01-valid.json")
    reply = world.call("POST", "/api/v1/flexoffers", caller=caller, json_body=offer, params=params)
    assert (reply.status, reply.code) == (status, code)
    assert not [e for e in world.store.list_audit(limit=3) if e.action.startswith("flexoffer")]


def test_an_offer_id_is_recorded_once(world: World):
    offer = sample("offer-bess-01-valid.json")
    assert submit(world, offer).status == 201
    again = submit(world, dict(offer, offeredById="someone-else"))
    assert (again.status, again.code) == (409, "already_exists")
    assert again.json["detail"] == (
        f"offer id `{offer['id']}` is taken: offer ids are unique across every policy group"
    )
    assert world.store.get_flexoffer(offer["id"]).document == offer


def test_offers_are_invisible_to_callers_without_the_template(world: World):
    offer = sample("offer-bess-01-valid.json")
    submit(world, offer)
    path = f"/api/v1/flexoffers/{b64(offer['id'])}"
    assert world.call("GET", path, caller="svc-voltage").code == "not_found"
    assert world.call("GET", f"/api/v1/flexoffers/{b64('ghost')}", caller="svc-market").code == (
        "not_found"
    )
    reply = world.call("POST", path + "/schedule", caller="svc-voltage", json_body={})
    assert reply.code == "not_found"
    assert world.store.list_flexoffer_schedules(offer["id"]) == []


def test_numbers_beyond_the_model_range_are_violations_not_server_errors(world: World):
    """A number a double holds but the model's formulas do not take (|energy| > 1e15) is a
    violation of the offer; one beyond a double (4,000 digits) is refused by the body
    reader with the same code, before any FlexOffer is read. Never a 500."""
    offer = dict(sample("offer-bess-01-valid.json"), id="fo-huge")
    offer["totalEnergyConstraint"] = {"lower": 0, "upper": 10**20}
    reply = submit(world, offer)
    assert reply.status == 201 and reply.json["state"] == "rejected"
    assert [(r["code"], r["path"]) for r in reply.json["reasons"]] == [
        ("number_out_of_range", "$.totalEnergyConstraint.upper")
    ]
    offer["totalEnergyConstraint"] = {"lower": 0, "upper": int("9" * 4000)}
    huge = submit(world, dict(offer, id="fo-huger"))
    assert huge.status == 400 and huge.json["code"] == "number_out_of_range"
    path = f"/api/v1/flexoffers/{b64('fo-bess-01-20260302-a')}/schedule"
    submit(world, sample("offer-bess-01-valid.json"))
    schedule = sample("schedule-bess-01-valid.json")
    schedule["scheduleSlices"][0]["energyAmount"] = 10**20
    refused = world.call("POST", path, caller="svc-market", json_body=schedule)
    assert refused.status == 201 and refused.json["state"] == "rejected"
    assert [r["code"] for r in refused.json["reasons"]] == ["number_out_of_range"]
    schedule["scheduleSlices"][0]["energyAmount"] = int("9" * 4000)
    too_big = world.call("POST", path, caller="svc-market", json_body=schedule)
    assert too_big.status == 400 and too_big.json["code"] == "number_out_of_range"
