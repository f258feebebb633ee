"""`POST /api/v1/decisions`: the golden corpus over HTTP in pbgm's JSON and in the XACML
3.0 JSON Profile, batches, the decision log with masking, and revision refresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pbgm.model import Permission
from pbgm.store import Grant, MemoryStore, ServiceAccount
from pbgm.testing import FrozenClock
from tests.api.conftest import EXAMPLES, SECRET_HASH, Server, World, make_world
from tests.conformance import CATEGORIES, Case, load_cases, summarize

CASES = load_cases()
SUBJECT_ID = "urn:oasis:names:tc:xacml:1.0:subject:subject-id"
ACTION_ID = "urn:oasis:names:tc:xacml:1.0:action:action-id"
CATEGORY = {
    "subject": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
    "resource": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
    "action": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
    "environment": "urn:oasis:names:tc:xacml:3.0:attribute-category:environment",
}


def case_world(server: Server, key_dir: Path, case: Case) -> World:
    """An app whose decisions come from the case's PDP, at the case's time."""
    clock = FrozenClock(case.now)
    store = MemoryStore(clock=clock)
    account = ServiceAccount("svc-voltage", SECRET_HASH, ("decisions:write",))
    store.add_service_account(account, actor="test")
    return make_world(server, key_dir, store=store, clock=clock, pdp=case.decision_point())


def pbgm_body(case: Case) -> dict[str, Any]:
    return {c: case.request_document[c] for c in CATEGORIES if c in case.request_document}


def as_corpus(answer: dict[str, Any]) -> dict[str, Any]:
    """pbgm's JSON answer in the shape of `expected.json`."""
    return {
        **answer,
        "status": answer["status"]["code"],
        "errors": [
            {"code": e["code"], "policy_id": e["policy_id"], "rule_id": e["rule_id"]}
            for e in answer["errors"]
        ],
    }


def xacml_body(document: dict[str, Any]) -> dict[str, Any]:
    """A pbgm request as a XACML JSON request in the `Category` array form."""
    categories = [
        {
            "CategoryId": CATEGORY[category],
            "Attribute": [{"AttributeId": k, "Value": v} for k, v in document[category].items()],
        }
        for category in CATEGORIES
        if document.get(category)
    ]
    return {"Request": {"Category": categories, "ReturnPolicyIdList": True}}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_the_corpus_decides_the_same_over_http(server: Server, key_dir: Path, case: Case):
    world = case_world(server, key_dir, case)
    reply = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=pbgm_body(case))
    assert reply.status == 200
    assert summarize(as_corpus(reply.json), case.expected) == case.expected
    xacml = world.call(
        "POST", "/api/v1/decisions", caller="svc-voltage", json_body=xacml_body(pbgm_body(case))
    )
    result = xacml.json["Response"][0]
    assert result["Decision"] == case.expected["decision"]
    assert [o["Id"] for o in result["Obligations"]] == [
        o["id"] for o in case.expected.get("obligations", [])
    ] or "obligations" not in case.expected
    ids = [p["Id"] for p in result["PolicyIdentifierList"]["PolicyIdReference"]]
    assert "policy_ids" not in case.expected or ids == case.expected["policy_ids"]


def example_request(name: str) -> dict[str, Any]:
    document = json.loads((EXAMPLES / "requests" / name).read_text())
    return {c: document[c] for c in CATEGORIES if c in document}


def test_a_batch_is_answered_in_order(world: World):
    requests = [
        example_request("operator-writes-bess-limits.json"),
        example_request("dispatch-outside-envelope.json"),
    ]
    reply = world.call(
        "POST", "/api/v1/decisions", caller="svc-voltage", json_body={"requests": requests}
    )
    assert [r["decision"] for r in reply.json["responses"]] == ["Permit", "Deny"]
    assert reply.json["responses"][0]["policy_ids"] == ["limits-bess-01"]


def test_xacml_shorthand_with_repeated_subjects_gives_every_combination(world: World):
    subjects = [
        {"Attribute": [{"AttributeId": SUBJECT_ID, "Value": who, "IncludeInResult": True}]}
        for who in ("op-anna", "svc-kibernet")
    ]
    body = {
        "Request": {
            "AccessSubject": subjects,
            "Action": {"Attribute": [{"AttributeId": ACTION_ID, "Value": "write"}]},
            "Resource": {"Attribute": [{"AttributeId": "asset_id", "Value": "bess-01"}]},
        }
    }
    reply = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=body)
    results = reply.json["Response"]
    assert [r["Decision"] for r in results] == ["Permit", "NotApplicable"]
    assert results[0]["Category"][0]["Attribute"][0]["Value"] == "op-anna"
    assert results[0]["Status"]["StatusCode"]["Value"] == "urn:oasis:names:tc:xacml:1.0:status:ok"
    assert results[0]["Obligations"][0]["Id"] == "audit"


def test_xacml_multi_requests_by_reference(world: World):
    def subject(ref: str, who: str) -> dict[str, Any]:
        return {"Id": ref, "Attribute": [{"AttributeId": SUBJECT_ID, "Value": who}]}

    body = {
        "Request": {
            "AccessSubject": [subject("anna", "op-anna"), subject("kib", "svc-kibernet")],
            "Action": {"Id": "w", "Attribute": [{"AttributeId": ACTION_ID, "Value": "write"}]},
            "Resource": {"Id": "r", "Attribute": [{"AttributeId": "asset_id", "Value": "bess-01"}]},
            "MultiRequests": {
                "RequestReference": [
                    {"ReferenceId": ["kib", "w", "r"]},
                    {"ReferenceId": ["anna", "w", "r"]},
                ]
            },
        }
    }
    reply = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=body)
    assert [r["Decision"] for r in reply.json["Response"]] == ["NotApplicable", "Permit"]


BAD_BODIES = [
    ("an unknown member", {"subject": {}, "now": "2026-01-01T00:00:00Z"}, 422, "validation_failed"),
    ("a category that is not an object", {"subject": "alice"}, 422, "validation_failed"),
    ("an empty batch", {"requests": []}, 422, "validation_failed"),
    ("a batch too large", {"requests": [{}] * 4}, 422, "validation_failed"),
    (
        "a XACML category pbgm does not know",
        {"Request": {"Category": [{"CategoryId": "urn:x"}]}},
        422,
        "validation_failed",
    ),
    (
        "a XACML attribute without a value",
        {"Request": {"Action": {"Attribute": [{"AttributeId": "a"}]}}},
        422,
        "validation_failed",
    ),
    (
        "a XACML dateTime that is not one",
        {
            "Request": {
                "Environment": {
                    "Attribute": [{"AttributeId": "t", "Value": "soon", "DataType": "dateTime"}]
                }
            }
        },
        422,
        "validation_failed",
    ),
    (
        "too many XACML combinations",
        {"Request": {"AccessSubject": [{}] * 2, "Resource": [{}] * 2}},
        422,
        "validation_failed",
    ),
    (
        "a dangling XACML reference",
        {"Request": {"MultiRequests": {"RequestReference": [{"ReferenceId": ["x"]}]}}},
        422,
        "validation_failed",
    ),
    ("a JSON array", [1, 2], 422, "validation_failed"),
    ("a NUL character", {"subject": {"id": "a\u0000b"}}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("what", "body", "status", "code"), BAD_BODIES, ids=[r[0] for r in BAD_BODIES]
)
def test_malformed_requests_list_their_problems_and_decide_nothing(
    server, key_dir, what, body, status, code
):
    world = make_world(server, key_dir, max_batch=3)
    reply = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=body)
    assert (reply.status, reply.code) == (status, code)
    if status == 422:
        assert reply.json["problems"] and all(
            p["path"].startswith("$") for p in reply.json["problems"]
        )
    assert world.services.decision_log.flush(5)
    assert all(e.action != "decision" for e in world.store.list_audit(limit=5))


def test_every_decision_is_logged_with_masked_attributes(server: Server, key_dir: Path):
    world = make_world(server, key_dir, audit_mask="subject.*,resource.asset_id")
    request = example_request("operator-writes-bess-limits.json")
    world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=request)
    assert world.services.decision_log.flush(5)  # written off the request path
    entry = world.store.list_audit(limit=1)[0]
    assert (entry.actor, entry.action, entry.object_type) == ("svc-voltage", "decision", "decision")
    logged = entry.details["decisions"][0]
    assert logged["request"]["subject"] == {k: "***" for k in request["subject"]}
    assert logged["request"]["resource"]["asset_id"] == "***"
    assert logged["request"]["action"] == request["action"]
    assert (logged["decision"], logged["policy_ids"]) == ("Permit", ["limits-bess-01"])
    metrics = world.call("GET", "/metrics", caller="svc-metrics").body.decode()
    assert 'pbgm_decisions_total{decision="Permit",kind="single"} 1.0' in metrics
    assert 'pbgm_decision_latency_seconds_count{kind="single"} 1.0' in metrics


def test_a_retired_policy_stops_deciding_once_the_decision_points_follow(world: World):
    request = example_request("operator-writes-bess-limits.json")
    first = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=request)
    assert first.json["decision"] == "Permit"
    world.store.set_policy_status("limits-bess-01", "retired", actor="op")
    assert world.services.decisions.settle(5)  # the follower applied the change
    second = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=request)
    assert second.json["decision"] == "NotApplicable"


def test_decisions_against_one_policy_group(world: World):
    request = example_request("operator-writes-bess-limits.json")
    world.store.add_grant(
        Grant("service", "svc-voltage", "policy_group", "data-sharing", Permission.READ),
        actor="test",
    )
    params = {"policy_group": "data-sharing"}
    reply = world.call(
        "POST", "/api/v1/decisions", caller="svc-voltage", json_body=request, params=params
    )
    assert reply.json["decision"] in ("Deny", "NotApplicable")
    assert reply.json["policy_ids"] != ["limits-bess-01"]


def test_a_caller_decides_only_against_groups_it_may_read(world: World):
    request = example_request("operator-writes-bess-limits.json")
    for group in ("data-sharing", "no-such-group"):  # unreadable and missing look the same
        reply = world.call(
            "POST", "/api/v1/decisions", caller="svc-voltage", json_body=request,
            params={"policy_group": group},
        )  # fmt: skip
        assert (reply.status, reply.code) == (404, "not_found"), group
        assert reply.json["detail"] == f"policy group `{group}` not found"
    readable = world.call(
        "POST", "/api/v1/decisions", caller="svc-voltage", json_body=request,
        params={"policy_group": "operational-limits"},
    )  # fmt: skip
    assert readable.json["decision"] == "Permit"
    assert readable.json["policy_ids"] == ["limits-bess-01"]


def test_without_a_group_only_readable_policies_decide_or_show(world: World):
    market = {"subject": {"id": "op-anna"}, "resource": {"asset_id": "bess-01"},
              "action": {"id": "write"}}  # fmt: skip
    reply = world.call("POST", "/api/v1/decisions", caller="svc-nobody", json_body=market)
    assert reply.status == 200
    assert reply.json["decision"] == "NotApplicable"  # no grant: no policy decides
    assert "limits-bess-01" not in reply.body.decode()
    reply = world.call("POST", "/api/v1/decisions", caller="svc-voltage", json_body=market)
    assert reply.json["decision"] == "Permit" and reply.json["policy_ids"] == ["limits-bess-01"]
