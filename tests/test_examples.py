"""The example bundle in examples/policies/: every policy valid, every reference resolvable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pbgm.functions import FUNCTIONS, XACML_FUNCTIONS
from pbgm.model import POLICY_TYPES, Decision, Permission, Request
from pbgm.pdp import compile_policy_set, evaluate
from pbgm.policy.documents import load_file
from pbgm.policy.syntax import policy_set_from_documents
from pbgm.policy.validate import policy_set_problems, problems_of, validate_policy_document

BUNDLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "policies"
POLICY_FILES = sorted(
    p for p in (BUNDLE_DIR / "policies").iterdir() if p.suffix in (".json", ".yaml", ".yml")
)


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return load_file(BUNDLE_DIR / "bundle.json")


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    return {path.stem: load_file(path) for path in POLICY_FILES}


@pytest.mark.parametrize("path", POLICY_FILES, ids=[p.name for p in POLICY_FILES])
def test_every_example_policy_is_valid(path: Path):
    doc = load_file(path)
    assert problems_of(doc) == []
    assert validate_policy_document(doc).id == path.stem


def test_the_examples_cover_every_policy_type_and_both_file_forms(policies):
    assert {doc["type"] for doc in policies.values()} == set(POLICY_TYPES)
    assert {p.suffix for p in POLICY_FILES} == {".json", ".yaml"}


def test_the_bundle_header_and_policy_groups(bundle):
    assert bundle["format"] == "pbgm/bundle/v1"
    assert set(bundle) <= {"format", "policy_groups", "users", "groups", "grants"}
    for group in bundle["policy_groups"]:
        assert policy_set_problems(group) == []


def test_every_policy_belongs_to_a_declared_policy_group(bundle, policies):
    declared = {g["id"] for g in bundle["policy_groups"]}
    assert {doc["policy_group"] for doc in policies.values()} <= declared


def test_every_group_member_is_a_declared_user(bundle):
    users = {u["name"] for u in bundle["users"]}
    for group in bundle["groups"]:
        assert set(group["members"]) <= users, group["name"]
        assert group["members"], f"group {group['name']} is empty"


def test_names_are_unique(bundle, policies):
    for section, key in (("users", "name"), ("groups", "name"), ("policy_groups", "id")):
        names = [item[key] for item in bundle[section]]
        assert len(names) == len(set(names)), section
    grants = [tuple(sorted(g.items())) for g in bundle["grants"]]
    assert len(grants) == len(set(grants))


def test_every_grant_names_an_existing_principal_and_target(bundle, policies):
    principals = {
        "user": {u["name"] for u in bundle["users"]},
        "group": {g["name"] for g in bundle["groups"]},
    }
    targets = {"policy": set(policies), "policy_group": {g["id"] for g in bundle["policy_groups"]}}
    for grant in bundle["grants"]:
        assert grant["principal"] in principals[grant["principal_kind"]], grant
        assert grant["target"] in targets[grant["target_kind"]], grant
        assert Permission(grant["permission"])


def test_every_policy_group_has_an_administrator_and_a_writer(bundle):
    for group in bundle["policy_groups"]:
        granted = {
            g["permission"]
            for g in bundle["grants"]
            if g["target_kind"] == "policy_group" and g["target"] == group["id"]
        }
        assert {"admin", "write"} <= granted, group["id"]


def functions_used(expression: Any) -> set[str]:
    if isinstance(expression, dict) and "apply" in expression:
        used = {expression["apply"]}
        for arg in expression.get("args", []):
            used |= functions_used(arg)
        if expression["apply"] in ("any-of", "all-of"):
            used.add(expression["args"][0])
        return used
    return set()


def test_conditions_use_registered_functions_and_name_declared_groups(bundle, policies):
    groups = {g["name"] for g in bundle["groups"]}
    used: set[str] = set()
    for doc in policies.values():
        for rule in doc["rules"]:
            condition = rule.get("condition")
            used |= functions_used(condition)
            if condition and condition.get("apply") == "at-least-one-member-of":
                assert set(condition["args"][1]) <= groups, rule["id"]
    assert used <= {*FUNCTIONS, *XACML_FUNCTIONS}
    assert {"topic-matches", "time-in-window", "day-of-week-in", "between"} <= used


def test_references_between_policies_resolve(policies):
    config = policies["voltage-control-config"]["content"]
    referenced = {
        source["data_access_policy"]
        for source in config["data_sources"].values()
        if "data_access_policy" in source
    }
    assert referenced <= set(policies)
    flexoffer = policies["fo-template-bess-01"]
    assert flexoffer["content"]["asset_id"] == flexoffer["asset_id"]


# --- the examples decide what their descriptions say (real PDP, no stubs) -----------

TUESDAY_10H_BERLIN = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
SATURDAY_10H_BERLIN = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)
TUESDAY_23H_BERLIN = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)
KIBERNET = {"id": "svc-kibernet", "groups": ["kibernet"]}
OPERATOR = {"id": "op-anna", "groups": ["operators"]}
VOLTAGE_CONTROL = {"id": "svc-voltage-control", "groups": ["vpp-services"]}
MARKET = {"id": "market-goflex", "groups": ["market"]}


@pytest.fixture(scope="module")
def compiled_groups(bundle, policies):
    out = {}
    for group in bundle["policy_groups"]:
        members = [d for d in policies.values() if d["policy_group"] == group["id"]]
        out[group["id"]] = compile_policy_set(policy_set_from_documents(group, members))
    return out


DECISIONS = [
    (
        "KIBERNet reads a field-trial PMU topic, fields dropped",
        "data-sharing",
        KIBERNET,
        {"topic": "/location_10003/30025/edgePMU3 ch1 amplitude"},
        {"id": "subscribe"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"drop-fields", "downsample", "audit"},
    ),
    (
        "KIBERNet may not read the control topics",
        "data-sharing",
        KIBERNET,
        {"topic": "/voltage_control/control/active_power"},
        {"id": "subscribe"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "KIBERNet may not publish set-points",
        "data-sharing",
        KIBERNET,
        {"topic": "/voltage_control/control/active_power"},
        {"id": "publish"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "an unknown service gets nothing",
        "data-sharing",
        {"id": "svc-x", "groups": []},
        {"topic": "/location_10003/30025/edgePMU3 ch1 amplitude"},
        {"id": "subscribe"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "voltage control polls KIBERNet within a rate limit",
        "data-sharing",
        VOLTAGE_CONTROL,
        {"endpoint": "kibernet"},
        {"id": "poll"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"rate-limit", "audit"},
    ),
    (
        "an operator changes the battery limits, audited",
        "operational-limits",
        OPERATOR,
        {"asset_id": "bess-01"},
        {"id": "write"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"audit"},
    ),
    (
        "a service may not change limits",
        "operational-limits",
        VOLTAGE_CONTROL,
        {"asset_id": "bess-01"},
        {"id": "write"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "a dispatch within the envelope is clamped",
        "operational-limits",
        VOLTAGE_CONTROL,
        {"asset_id": "bess-01", "p_kw": 200},
        {"id": "dispatch"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"clamp"},
    ),
    (
        "a dispatch beyond the rating is refused",
        "operational-limits",
        VOLTAGE_CONTROL,
        {"asset_id": "bess-01", "p_kw": 400},
        {"id": "dispatch"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "PV curtailment in daylight",
        "operational-limits",
        VOLTAGE_CONTROL,
        {"asset_id": "pv-inv-01"},
        {"id": "curtail"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"clamp"},
    ),
    (
        "no PV curtailment at night",
        "operational-limits",
        VOLTAGE_CONTROL,
        {"asset_id": "pv-inv-01"},
        {"id": "curtail"},
        TUESDAY_23H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "operators switch the voltage-control source on a workday",
        "voltage-control",
        OPERATOR,
        {"service": "voltage-control"},
        {"id": "write"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"notify-service"},
    ),
    (
        "but not on a Saturday",
        "voltage-control",
        OPERATOR,
        {"service": "voltage-control"},
        {"id": "write"},
        SATURDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "the event service starts inertia estimation",
        "grid-services",
        {"id": "pbgm-event-service", "groups": []},
        {"service": "inertia-estimation"},
        {"id": "trigger"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        set(),
    ),
    (
        "a QoS change to an allowed profile",
        "device-management",
        VOLTAGE_CONTROL,
        {"qos_profile": "LOW_LATENCY"},
        {"id": "qos_change"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"limit-duration"},
    ),
    (
        "a QoS change to an unknown profile",
        "device-management",
        VOLTAGE_CONTROL,
        {"qos_profile": "GOLD"},
        {"id": "qos_change"},
        TUESDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "provisioning on a Saturday",
        "device-management",
        OPERATOR,
        {},
        {"id": "provisioning"},
        SATURDAY_10H_BERLIN,
        Decision.DENY,
        set(),
    ),
    (
        "the market offers before gate closure",
        "flexibility",
        MARKET,
        {"asset_id": "bess-01"},
        {"id": "submit_offer"},
        TUESDAY_10H_BERLIN,
        Decision.PERMIT,
        {"validate-flexoffer"},
    ),
    (
        "the market offers after gate closure",
        "flexibility",
        MARKET,
        {"asset_id": "bess-01"},
        {"id": "submit_offer"},
        TUESDAY_23H_BERLIN,
        Decision.DENY,
        set(),
    ),
]


@pytest.mark.parametrize(
    ("what_is_decided", "group", "subject", "resource", "action", "now", "decision", "obligations"),
    DECISIONS,
)
def test_the_examples_decide_as_described(
    compiled_groups, what_is_decided, group, subject, resource, action, now, decision, obligations
):
    request = Request(subject=subject, resource=resource, action=action)
    response = evaluate(compiled_groups[group], request, now)
    final = Decision.PERMIT if response.decision is Decision.PERMIT else Decision.DENY
    assert final is decision, response
    assert {o.id for o in response.obligations} == obligations
