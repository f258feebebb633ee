"""Policy validation: every problem reported, each with a stable code and a JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pbgm.errors import Problem, ValidationError
from pbgm.model import POLICY_TYPES
from pbgm.policy import validate
from pbgm.policy.documents import load_file
from pbgm.policy.syntax import dump_policy, parse_policy
from pbgm.policy.validate import (
    ID_PATTERN,
    MAX_EXPRESSION_DEPTH,
    content_schema,
    policy_set_problems,
    problems_of,
    register_content_check,
    validate_policy_document,
    validate_policy_set_document,
)


def good_policy() -> dict[str, Any]:
    return {
        "format": "pbgm/v1",
        "id": "limits-bess-01",
        "type": "operational_limits",
        "policy_group": "operational-limits",
        "asset_id": "bess-01",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00+01:00",
        "target": {"resource": {"asset_id": "bess-01"}, "action": {"id": ["read", "dispatch"]}},
        "rule_combining": "deny-overrides",
        "rules": [
            {
                "id": "read",
                "effect": "Permit",
                "condition": {
                    "apply": "at-least-one-member-of",
                    "args": [{"attr": "subject.groups"}, ["operators", "vpp-services"]],
                },
                "obligations": [{"id": "audit", "attributes": {"level": "info"}}],
            },
            {
                "id": "too-high",
                "effect": "Deny",
                "condition": {"apply": "greater-than", "args": [{"attr": "resource.p_kw"}, 250]},
                "advice": [{"id": "why", "fulfill_on": "Deny", "attributes": {"limit": 250}}],
            },
        ],
        "obligations": [{"id": "log", "fulfill_on": "Permit", "attributes": {}}],
        "content": {
            "asset_id": "bess-01",
            "voltage": {"v_nominal_v": 400, "v_min_pu": 0.9, "v_max_pu": 1.1},
            "power": {"p_min_kw": -250, "p_max_kw": 250},
        },
    }


def changed(**changes: Any) -> dict[str, Any]:
    doc = good_policy()
    doc.update(changes)
    return doc


def edited(edit) -> dict[str, Any]:
    doc = good_policy()
    edit(doc)
    return doc


def codes_at(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in problems}


def test_a_good_policy_parses_to_the_same_policy_as_syntax():
    doc = good_policy()
    assert problems_of(doc) == []
    assert validate_policy_document(doc) == parse_policy(doc)


def test_a_valid_policy_survives_dump_and_validation_again():
    policy = validate_policy_document(good_policy())
    assert validate_policy_document(dump_policy(policy)) == policy


def test_the_minimal_policy_needs_only_the_envelope_and_content():
    doc = {"id": "p", "type": "operational_limits", "policy_group": "g", "content": {"ramp": {}}}
    assert codes_at(problems_of(doc)) == {("$.content.ramp", "invalid_size")}
    doc["content"] = {"ramp": {"ramp_up_kw_per_s": 5}}
    assert validate_policy_document(doc).rules == ()


BAD_DOCUMENTS = [
    ("not an object", [1, 2], {("$", "type")}),
    (
        "missing envelope members",
        {"rules": []},
        {
            ("$.id", "required"),
            ("$.type", "required"),
            ("$.policy_group", "required"),
            ("$.content", "required"),
        },
    ),
    ("an unknown top-level member", changed(rule="x"), {("$.rule", "additional_property")}),
    ("another format", changed(format="pbgm/v2"), {("$.format", "unsupported_format")}),
    ("an id with a space", changed(id="limits bess"), {("$.id", "invalid_id")}),
    ("an id with a control character", changed(id="a\u0007b"), {("$.id", "invalid_id")}),
    ("an id too long", changed(id="a" * 201), {("$.id", "invalid_id")}),
    ("an empty policy group", changed(policy_group=""), {("$.policy_group", "invalid_id")}),
    ("an unknown policy type", changed(type="tariff"), {("$.type", "unknown_policy_type")}),
    ("a policy type that is not a string", changed(type=3), {("$.type", "type")}),
    (
        "an unknown combining algorithm",
        changed(rule_combining="majority-vote"),
        {("$.rule_combining", "unknown_combining_algorithm")},
    ),
    (
        "a naive valid_from",
        changed(valid_from="2026-01-01T00:00:00"),
        {("$.valid_from", "naive_datetime")},
    ),
    (
        "an unreadable valid_until",
        changed(valid_until="next tuesday"),
        {("$.valid_until", "invalid_datetime")},
    ),
    (
        "valid_until before valid_from",
        changed(valid_until="2025-12-31T23:00:00Z"),
        {("$.valid_until", "invalid_validity_window")},
    ),
    (
        "an unknown target category",
        changed(target={"subjekt": {"id": "x"}}),
        {("$.target.subjekt", "unknown_category")},
    ),
    (
        "a target value that is an object",
        changed(target={"subject": {"id": {"a": 1}}}),
        {("$.target.subject.id", "type")},
    ),
    (
        "an empty target value list",
        changed(target={"subject": {"id": []}}),
        {("$.target.subject.id", "invalid_size")},
    ),
    (
        "a wrong effect",
        edited(lambda d: d["rules"][1].update(effect="deny")),
        {("$.rules[1].effect", "enum")},
    ),
    (
        "a rule without id",
        edited(lambda d: d["rules"][0].pop("id")),
        {("$.rules[0].id", "required")},
    ),
    (
        "two rules with one id",
        edited(lambda d: d["rules"][1].update(id="read")),
        {("$.rules[1].id", "duplicate_rule_id")},
    ),
    (
        "an unknown rule member",
        edited(lambda d: d["rules"][0].update(when=1)),
        {("$.rules[0].when", "additional_property")},
    ),
    (
        "an unknown function",
        edited(lambda d: d["rules"][1].update(condition={"apply": "frobnicate", "args": [1]})),
        {("$.rules[1].condition", "unknown_function")},
    ),
    (
        "a wrong arity",
        edited(lambda d: d["rules"][1].update(condition={"apply": "not", "args": [True, False]})),
        {("$.rules[1].condition", "bad_arity")},
    ),
    (
        "a condition that can never be a boolean",
        edited(lambda d: d["rules"][1].update(condition={"apply": "add", "args": [1, 2]})),
        {("$.rules[1].condition", "type_mismatch")},
    ),
    (
        "a bad attribute reference deep in a condition",
        edited(
            lambda d: d["rules"][0].update(
                condition={
                    "apply": "and",
                    "args": [True, {"apply": "not", "args": [{"attr": "groups"}]}],
                }
            )
        ),
        {("$.rules[0].condition.args[1].args[0].attr", "invalid_attribute")},
    ),
    (
        "an expression object of no kind",
        edited(
            lambda d: d["rules"][0].update(
                condition={"apply": "and", "args": [{"attribute": "subject.id"}]}
            )
        ),
        {("$.rules[0].condition.args[0]", "invalid_expression")},
    ),
    (
        "args that are not a list",
        edited(
            lambda d: d["rules"][0].update(
                condition={"apply": "not", "args": {"attr": "subject.ok"}}
            )
        ),
        {("$.rules[0].condition.args", "invalid_expression")},
    ),
    (
        "an expression inside a list literal",
        edited(
            lambda d: d["rules"][0].update(
                condition={"apply": "is-in", "args": ["a", [{"attr": "subject.id"}]]}
            )
        ),
        {("$.rules[0].condition.args[1][0]", "invalid_literal")},
    ),
    (
        "an obligation without id",
        edited(lambda d: d["rules"][0]["obligations"][0].pop("id")),
        {("$.rules[0].obligations[0].id", "required")},
    ),
    (
        "a policy obligation without fulfill_on",
        edited(lambda d: d["obligations"][0].pop("fulfill_on")),
        {("$.obligations[0].fulfill_on", "required")},
    ),
    (
        "a rule obligation for the other effect",
        edited(lambda d: d["rules"][0]["obligations"][0].update(fulfill_on="Deny")),
        {("$.rules[0].obligations[0].fulfill_on", "obligation_effect_mismatch")},
    ),
    (
        "a bad expression in an obligation attribute",
        edited(
            lambda d: d["rules"][0]["obligations"][0]["attributes"].update(who={"attr": "nobody"})
        ),
        {("$.rules[0].obligations[0].attributes.who.attr", "invalid_attribute")},
    ),
    ("content that is not an object", changed(content=[]), {("$.content", "type")}),
    (
        "content breaking its schema",
        edited(lambda d: d["content"]["voltage"].update(v_min_pu="low")),
        {("$.content.voltage.v_min_pu", "type")},
    ),
    (
        "content with min above max",
        edited(lambda d: d["content"]["power"].update(p_min_kw=300)),
        {("$.content.power.p_min_kw", "min_greater_than_max")},
    ),
    (
        "content for another asset",
        edited(lambda d: d["content"].update(asset_id="bess-02")),
        {("$.content.asset_id", "asset_id_mismatch")},
    ),
]


@pytest.mark.parametrize(("what_is_wrong", "doc", "expected"), BAD_DOCUMENTS)
def test_each_mistake_is_reported_with_its_code_and_path(what_is_wrong, doc, expected):
    problems = problems_of(doc)
    assert codes_at(problems) == expected
    with pytest.raises(ValidationError) as caught:
        validate_policy_document(doc)
    assert caught.value.problems == tuple(problems)


def test_all_problems_are_reported_not_only_the_first():
    doc = good_policy()
    doc.update(format="pbgm/v0", id="bad id", policy_group="", rule_combining="vote", extra=1)
    doc.update(valid_from="2026-01-01", target={"subjekt": {"id": "x"}})
    doc["rules"][0]["condition"] = {"apply": "frobnicate", "args": [{"attr": "nope"}]}
    doc["rules"][1].update(id="read", effect="deny")
    doc["obligations"][0].pop("fulfill_on")
    doc["content"]["power"]["p_min_kw"] = "a lot"
    doc["content"]["asset_id"] = "bess-02"
    assert codes_at(problems_of(doc)) == {
        ("$.format", "unsupported_format"),
        ("$.id", "invalid_id"),
        ("$.policy_group", "invalid_id"),
        ("$.rule_combining", "unknown_combining_algorithm"),
        ("$.extra", "additional_property"),
        ("$.valid_from", "naive_datetime"),
        ("$.target.subjekt", "unknown_category"),
        ("$.rules[0].condition.args[0].attr", "invalid_attribute"),
        ("$.rules[1].id", "duplicate_rule_id"),
        ("$.rules[1].effect", "enum"),
        ("$.obligations[0].fulfill_on", "required"),
        ("$.content.power.p_min_kw", "type"),
        ("$.content.asset_id", "asset_id_mismatch"),
    }


def test_problems_are_sorted_by_path_with_numeric_indexes():
    doc = good_policy()
    doc["rules"] = [{"id": f"r{i}", "effect": "Maybe"} for i in range(12)]
    paths = [p.path for p in problems_of(doc)]
    assert paths == [f"$.rules[{i}].effect" for i in range(12)]


def test_keys_that_are_not_identifiers_are_quoted_in_paths():
    doc = good_policy()
    doc["content"]["nodes"] = {"node 4": {"v_min_pu": 0.9}, "node_5": {"v_min_pu": "x"}}
    assert codes_at(problems_of(doc)) == {
        ('$.content.nodes["node 4"]', "pattern"),
        ("$.content.nodes.node_5.v_min_pu", "type"),
    }


def test_messages_follow_the_house_style():
    doc = changed(id="bad id", type="tariff", rule_combining="vote", extra=1)
    for problem in problems_of(doc):
        assert problem.message == problem.message.rstrip(".")
        assert problem.message[0].islower() or problem.message[0] == "`"
        assert "Error" not in problem.message and "dict" not in problem.message


def nested_condition(depth: int) -> Any:
    condition: Any = True
    for _ in range(depth - 1):
        condition = {"apply": "not", "args": [condition]}
    return condition


@pytest.mark.parametrize(
    ("what_is_checked", "depth", "too_deep"),
    [
        ("the limit itself is allowed", MAX_EXPRESSION_DEPTH, False),
        ("one level more is refused", MAX_EXPRESSION_DEPTH + 1, True),
        ("far deeper is refused without recursing into it", 5000, True),
    ],
)
def test_expression_depth_limit(what_is_checked, depth, too_deep):
    doc = edited(lambda d: d["rules"][0].update(condition=nested_condition(depth)))
    codes = {p.code for p in problems_of(doc)}
    assert ("expression_too_deep" in codes) is too_deep
    assert too_deep or not codes


def test_the_id_rule_in_the_module_and_the_schema_agree():
    envelope = content_schema("policy")
    assert envelope is not None
    assert envelope["$defs"]["id"]["pattern"] == ID_PATTERN
    assert envelope["$defs"]["id"]["maxLength"] == validate.MAX_ID_LENGTH


@pytest.mark.parametrize("policy_type", [*POLICY_TYPES, "policy"])
def test_every_schema_is_a_valid_draft_2020_12_schema(policy_type):
    schema = content_schema(policy_type)
    assert schema is not None, f"no schema for {policy_type}"
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_type_without_an_installed_schema_fails_closed(monkeypatch):
    monkeypatch.setattr(validate, "POLICY_TYPES", (*POLICY_TYPES, "heat_plan"))
    doc = changed(type="heat_plan", content={"anything": True})
    assert codes_at(problems_of(doc)) == {("$.content", "content_schema_missing")}


def test_registered_content_checks_run_and_a_broken_one_fails_closed(monkeypatch):
    monkeypatch.setattr(
        validate, "_CONTENT_CHECKS", {k: list(v) for k, v in validate._CONTENT_CHECKS.items()}
    )

    def no_night_ramps(content, path):
        return [Problem(f"{path}.ramp", "site_rule", "no ramps here")] if "ramp" in content else []

    def broken(content, path):
        raise KeyError("boom")

    register_content_check("operational_limits", no_night_ramps)
    doc = edited(lambda d: d["content"].update(ramp={"ramp_up_kw_per_s": 1}))
    assert codes_at(problems_of(doc)) == {("$.content.ramp", "site_rule")}
    register_content_check("operational_limits", broken)
    assert ("$.content", "check_failed") in codes_at(problems_of(doc))


def test_validators_are_compiled_once():
    from pbgm.policy import schema as _schemas

    first = _schemas.content_validator("device_qos")
    problems_of(changed(type="device_qos", content={}))
    assert _schemas.content_validator("device_qos") is first


@pytest.mark.parametrize(
    ("what_is_checked", "doc", "expected"),
    [
        (
            "a good group",
            {"id": "voltage-control", "policy_combining": "first-applicable", "description": "x"},
            set(),
        ),
        ("the combining default", {"id": "g"}, set()),
        ("a missing id", {"policy_combining": "deny-overrides"}, {("$.id", "required")}),
        (
            "a bad id and an unknown algorithm",
            {"id": " g", "policy_combining": "vote"},
            {("$.id", "invalid_id"), ("$.policy_combining", "unknown_combining_algorithm")},
        ),
        ("an unknown member", {"id": "g", "rules": []}, {("$.rules", "additional_property")}),
        ("not an object", "g", {("$", "type")}),
    ],
)
def test_policy_group_documents(what_is_checked, doc, expected):
    assert codes_at(policy_set_problems(doc)) == expected
    if expected:
        with pytest.raises(ValidationError):
            validate_policy_set_document(doc)
    else:
        group = validate_policy_set_document(doc)
        assert group.id == doc["id"]
        assert group.policy_combining == doc.get("policy_combining", "deny-overrides")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "type",
                    "rules",
                    "apply",
                    "args",
                    "attr",
                    "value",
                    "content",
                    "effect",
                    "condition",
                    "target",
                    "subject",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_problems_of_never_raises_on_random_json(doc):
    problems = problems_of(doc)
    assert all(isinstance(p, Problem) for p in problems)


@settings(max_examples=100, deadline=None)
@given(rules=json_values, content=json_values, target=json_values)
def test_random_parts_in_a_policy_give_problems_or_a_policy(rules, content, target):
    doc = changed(rules=rules, content=content, target=target)
    try:
        validate_policy_document(doc)
    except ValidationError as exc:
        assert exc.problems


# --- content schemas: the example bundle's content is the good case ---------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies" / "policies"


def example(policy_id: str) -> dict[str, Any]:
    [path] = [p for p in EXAMPLES.iterdir() if p.stem == policy_id]
    return load_file(path)


def mutate(policy_id: str, edit) -> dict[str, Any]:
    doc = example(policy_id)
    edit(doc["content"])
    return doc


def delete(path: str):
    def edit(content):
        *parents, last = path.split(".")
        for key in parents:
            content = content[int(key)] if isinstance(content, list) else content[key]
        del content[last]

    return edit


def put(path: str, value: Any):
    def edit(content):
        *parents, last = path.split(".")
        for key in parents:
            content = content[int(key)] if isinstance(content, list) else content[key]
        if isinstance(content, list):
            content[int(last)] = value
        else:
            content[last] = value

    return edit


CONTENT_MISTAKES = [
    # operational_limits
    (
        "a voltage in percent instead of pu",
        "limits-bess-01",
        put("voltage.v_min_pu", 90),
        {("$.content.voltage.v_min_pu", "out_of_range")},
    ),
    (
        "a voltage band without its base",
        "limits-bess-01",
        delete("voltage.v_nominal_v"),
        {("$.content.voltage.v_nominal_v", "required")},
    ),
    (
        "a droop in pu instead of percent",
        "limits-bess-01",
        put("frequency.droop_pct", 0.05),
        {("$.content.frequency.droop_pct", "out_of_range")},
    ),
    (
        "a nominal frequency of 51 Hz",
        "limits-bess-01",
        put("frequency.f_nominal_hz", 51),
        {("$.content.frequency.f_nominal_hz", "enum")},
    ),
    (
        "a misspelt limit",
        "limits-bess-01",
        put("power.p_max", 250),
        {("$.content.power.p_max", "additional_property")},
    ),
    (
        "an inverted voltage band",
        "limits-bess-01",
        put("voltage.v_min_pu", 1.12),
        {("$.content.voltage.v_min_pu", "min_greater_than_max")},
    ),
    (
        "a control target outside the band",
        "limits-bess-01",
        put("voltage.v_target_max_pu", 1.12),
        {("$.content.voltage.v_target_max_pu", "inconsistent_limits")},
    ),
    (
        "a deadband that excludes 50 Hz",
        "limits-bess-01",
        put("frequency.deadband_low_hz", 50.005),
        {("$.content.frequency.f_nominal_hz", "inconsistent_limits")},
    ),
    (
        "an inverted state-of-charge window",
        "limits-bess-01",
        put("energy.soc_min_pct", 95),
        {("$.content.energy.soc_min_pct", "min_greater_than_max")},
    ),
    (
        "a node whose q limits are inverted",
        "limits-pv-inv-01",
        put("nodes.node_3", {"q_min_kvar": 10, "q_max_kvar": -10}),
        {("$.content.nodes.node_3.q_min_kvar", "min_greater_than_max")},
    ),
    # data_access
    (
        "a wildcard inside a topic level",
        "kibernet-data-access",
        put("data.topics.0", "/location_+/#"),
        {("$.content.data.topics[0]", "pattern")},
    ),
    (
        "a multi-level wildcard before the end",
        "kibernet-data-access",
        put("data.topics.1", "/location_10002/#/x"),
        {("$.content.data.topics[1]", "pattern")},
    ),
    (
        "a secret written inline",
        "kibernet-data-access",
        put("endpoints.kibernet.auth.password", "hunter2"),
        {("$.content.endpoints.kibernet.auth.password", "additional_property")},
    ),
    (
        "a plain-http endpoint",
        "kibernet-data-access",
        put("endpoints.kibernet.base_url", "http://kibernet.example/api"),
        {("$.content.endpoints.kibernet.base_url", "pattern")},
    ),
    (
        "TLS verification switched off",
        "kibernet-data-access",
        put("endpoints.kibernet.verify_tls", False),
        {("$.content.endpoints.kibernet.verify_tls", "enum")},
    ),
    (
        "field dropping that names no fields",
        "kibernet-data-access",
        delete("obligations.0.fields"),
        {("$.content.obligations[0].fields", "required")},
    ),
    (
        "polling an endpoint that is not defined",
        "kibernet-data-access",
        put("polling.endpoint", "influx"),
        {("$.content.polling.endpoint", "unknown_reference")},
    ),
    (
        "nobody to share with",
        "kibernet-data-access",
        delete("consumers"),
        {("$.content.consumers", "required")},
    ),
    # service_trigger
    (
        "running a service without naming it",
        "inertia-on-rocof",
        delete("actions.0.service"),
        {("$.content.actions[0].service", "required")},
    ),
    (
        "an unknown action",
        "inertia-on-rocof",
        put("actions.1.kind", "reboot_grid"),
        {("$.content.actions[1].kind", "enum")},
    ),
    (  # the event service's own run parameter: a negative one gave the service no samples
        "a negative window for the service",
        "inertia-on-rocof",
        put("actions.0.parameters", {"window_s": -1}),
        {("$.content.actions[0].parameters.window_s", "out_of_range")},
    ),
    (  # and a text one failed every run
        "a window for the service given as text",
        "inertia-on-rocof",
        put("actions.0.parameters", {"window_s": "10"}),
        {("$.content.actions[0].parameters.window_s", "type")},
    ),
    (
        "a band condition without its band",
        "inertia-on-rocof",
        put("event.conditions.0", {"variable": "frequency", "operator": "outside_band"}),
        {
            ("$.content.event.conditions[0].low", "required"),
            ("$.content.event.conditions[0].high", "required"),
        },
    ),
    (
        "an inverted band",
        "inertia-on-rocof",
        put(
            "event.conditions.0",
            {"variable": "f", "operator": "outside_band", "low": 50.2, "high": 49.8},
        ),
        {("$.content.event.conditions[0].low", "min_greater_than_max")},
    ),
    (
        "no cooldown",
        "inertia-on-rocof",
        delete("cooldown_s"),
        {("$.content.cooldown_s", "required")},
    ),
    (
        "a notification to a wildcard topic",
        "inertia-on-rocof",
        put("actions.2.topic", "/pbgm/#"),
        {("$.content.actions[2].topic", "pattern")},
    ),
    # service_config
    (
        "an active source that is not defined",
        "voltage-control-config",
        put("active_source", "influx"),
        {("$.content.active_source", "unknown_reference")},
    ),
    (
        "VMIN above VMAX",
        "voltage-control-config",
        put("controller.parameters.VMIN", 1.06),
        {("$.content.controller.parameters.VMIN", "min_greater_than_max")},
    ),
    (
        "an unknown payload format",
        "voltage-control-config",
        put("data_sources.databus.format", "json.reserve"),
        {("$.content.data_sources.databus.format", "enum")},
    ),
    (
        "an output topic with a wildcard",
        "voltage-control-config",
        put("outputs.active_power", "/voltage_control/control/+"),
        {("$.content.outputs.active_power", "pattern")},
    ),
    (
        "an MQTT source without topics",
        "voltage-control-config",
        delete("data_sources.databus.topics"),
        {("$.content.data_sources.databus.topics", "required")},
    ),
    # access_control
    (
        "a service setting in an access-control policy's content",
        "historian-access",
        put("topics", ["/historian/#"]),
        {("$.content.topics", "additional_property")},
    ),
    # device_qos
    (
        "a group listing its devices (members live in the registry)",
        "pmu-5g-qos",
        put("device_groups.edgepmus.devices", [{"id": "edgepmu-3"}]),
        {("$.content.device_groups.edgepmus.devices", "additional_property")},
    ),
    (
        "a group name with a slash",
        "pmu-5g-qos",
        put("permissions.1.group", "meters/north"),
        {("$.content.permissions[1].group", "pattern")},
    ),
    (
        "a default profile that is not listed",
        "pmu-5g-qos",
        put("device_groups.edgepmus.default_qos_profile", "GOLD"),
        {("$.content.device_groups.edgepmus.default_qos_profile", "unknown_reference")},
    ),
    (
        "a network API address in a policy (a server setting)",
        "pmu-5g-qos",
        put("api", {"base_url": "https://operator.example"}),
        {("$.content.api", "additional_property")},
    ),
    (
        "a QoS profile name with a space",
        "pmu-5g-qos",
        put("qos_profiles.LOW LATENCY", {}),
        {('$.content.qos_profiles["LOW LATENCY"]', "pattern")},
    ),
    (
        "a permission with an unknown profile",
        "pmu-5g-qos",
        put("permissions.1.qos_profiles", ["THROUGHPUT_M", "GOLD"]),
        {("$.content.permissions[1].qos_profiles[1]", "unknown_reference")},
    ),
    (
        "an action the API does not have",
        "pmu-5g-qos",
        put("permissions.0.actions", ["reboot"]),
        {("$.content.permissions[0].actions[0]", "enum")},
    ),
    (
        "a session longer than CAMARA's int32",
        "pmu-5g-qos",
        put("permissions.0.max_session_duration_s", 2**31),
        {("$.content.permissions[0].max_session_duration_s", "out_of_range")},
    ),
    (
        "a profile whose minimum duration exceeds its maximum",
        "pmu-5g-qos",
        put("qos_profiles.THROUGHPUT_M.min_duration_s", 50000),
        {("$.content.qos_profiles.THROUGHPUT_M.min_duration_s", "min_greater_than_max")},
    ),
    # flexoffer (schema written by the FlexOffer helper)
    (
        "a FlexOffer template without a sign convention",
        "fo-template-bess-01",
        delete("sign_convention"),
        {("$.content.sign_convention", "required")},
    ),
]


@pytest.mark.parametrize(("what_is_wrong", "policy_id", "edit", "expected"), CONTENT_MISTAKES)
def test_content_schemas_reject_typical_mistakes(what_is_wrong, policy_id, edit, expected):
    assert problems_of(example(policy_id)) == []
    assert codes_at(problems_of(mutate(policy_id, edit))) == expected


def test_every_policy_type_has_an_example_and_a_mistake():
    types = {example(pid)["type"] for _what, pid, _edit, _expected in CONTENT_MISTAKES}
    assert types == set(POLICY_TYPES)


def test_a_cyclic_document_built_in_python_is_refused_not_raised():
    doc = good_policy()
    doc["content"]["power"] = doc["content"]
    doc["rules"][0]["condition"] = {"apply": "not", "args": []}
    doc["rules"][0]["condition"]["args"].append(doc["rules"][0]["condition"])
    assert problems_of(doc)
    with pytest.raises(ValidationError):
        validate_policy_document(doc)
