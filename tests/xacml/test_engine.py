"""Deciding XACML requests: the context handler and the XACML parts of the decision core."""

from __future__ import annotations

import json

from pbgm.xacml import XacmlPdp, parse, read_json_request, read_policy, response_json, response_xml
from pbgm.xacml.names import STATUS_CODES
from tests.xacml.conftest import NOW, decide
from tests.xacml.helpers import (
    ACTION,
    ACTION_ID,
    ENVIRONMENT,
    F1,
    NS,
    SUBJECT,
    SUBJECT_ID,
    XS,
    any_of,
    apply,
    attribute,
    attributes,
    condition,
    designator,
    match,
    policy,
    policy_set,
    request,
    rule,
    target,
    value,
)

ALICE = attributes(SUBJECT, attribute(SUBJECT_ID, "alice", include=True))
READ = attributes(ACTION, attribute(ACTION_ID, "read"))


def age_is(years: int, must: bool = True, issuer: str | None = None) -> str:
    return condition(
        apply(
            F1 + "integer-equal",
            apply(
                F1 + "integer-one-and-only", designator("age", "integer", must=must, issuer=issuer)
            ),
            value(str(years), "integer"),
        )
    )


def test_included_attributes_come_back_in_the_result():
    [result] = decide(policy("p", rule("r")), request(ALICE, READ))
    assert [(a.attribute_id, a.values) for a in result.attributes] == [
        (SUBJECT_ID, ((XS + "string", "alice"),))
    ]


def test_a_missing_attribute_is_named_in_the_status():
    [result] = decide(policy("p", rule("r", body=age_is(45))), request(ALICE))
    assert result.decision == "Indeterminate"
    assert result.status == STATUS_CODES["missing-attribute"]
    assert [(m.category, m.attribute_id, m.data_type) for m in result.missing] == [
        ("subject", "age", XS + "integer")
    ]
    assert "<MissingAttributeDetail" in response_xml([result])
    assert f'Category="{SUBJECT}"' in response_xml([result])


def test_an_issuer_selects_the_values_it_issued():
    aged = attributes(
        SUBJECT,
        attribute("age", "45", data_type="integer", issuer="hr"),
        attribute("age", "99", data_type="integer"),
    )
    assert (
        decide(policy("p", rule("r", body=age_is(45, issuer="hr"))), request(aged))[0].decision
        == "Permit"
    )
    [any_issuer] = decide(policy("p", rule("r", body=age_is(45))), request(aged))
    assert any_issuer.decision == "Indeterminate"  # a bag of two


def test_repeated_categories_are_several_decisions():
    bob = attributes(SUBJECT, attribute(SUBJECT_ID, "bob", include=True))
    alice_only = target(any_of(match(F1 + "string-equal", value("alice"), designator(SUBJECT_ID))))
    results = decide(policy("p", rule("r"), target_xml=alice_only), request(ALICE, bob, READ))
    assert [r.decision for r in results] == ["Permit", "NotApplicable"]
    assert [r.attributes[0].values[0][1] for r in results] == ["alice", "bob"]


def test_a_custom_category_is_read():
    town = attributes("OurTown", attribute("site", "http://x", data_type="anyURI"))
    body = condition(
        apply(
            F1 + "anyURI-equal",
            apply(
                F1 + "anyURI-one-and-only",
                designator("site", "anyURI", category="OurTown", must=True),
            ),
            value("http://x", "anyURI"),
        )
    )
    assert decide(policy("p", rule("r", body=body)), request(town))[0].decision == "Permit"


def test_the_current_time_is_supplied_unless_given():
    body = condition(
        apply(
            F1 + "date-equal",
            apply(
                F1 + "date-one-and-only",
                designator(
                    "urn:oasis:names:tc:xacml:1.0:environment:current-date",
                    "date",
                    category=ENVIRONMENT,
                    must=True,
                ),
            ),
            value("2026-03-02", "date"),
        )
    )
    assert decide(policy("p", rule("r", body=body)), request())[0].decision == "Permit"
    given = attributes(
        ENVIRONMENT,
        attribute(
            "urn:oasis:names:tc:xacml:1.0:environment:current-date", "2001-01-01", data_type="date"
        ),
    )
    assert decide(policy("p", rule("r", body=body)), request(given))[0].decision == "NotApplicable"


def test_a_policy_target_that_is_indeterminate_follows_table_7():
    must = target(any_of(match(F1 + "string-equal", value("x"), designator("nope", must=True))))
    permit = decide(policy("p", rule("r"), target_xml=must), request())
    assert permit[0].decision == "Indeterminate"
    nothing = decide(
        policy("p", rule("r", body=condition(value("false", "boolean"))), target_xml=must),
        request(),
    )
    assert nothing[0].decision == "NotApplicable"


def test_the_policy_identifier_list_names_the_applicable_policies():
    inner = policy("applies", rule("r")).replace(f' xmlns="{NS}"', "")
    never = policy("never", rule("r", body=condition(value("false", "boolean")))).replace(
        f' xmlns="{NS}"', ""
    )
    [result] = decide(policy_set("root", inner, never), request(READ, policy_ids=True))
    assert [(r.kind, r.id, r.version) for r in result.policy_ids] == [
        ("PolicySet", "root", "1.0"),
        ("Policy", "applies", "1.0"),
    ]
    [plain] = decide(policy_set("root", inner, never), request(READ))
    assert plain.policy_ids == ()


def test_a_combined_decision_is_answered_indeterminate():
    xml = request(READ).replace('CombinedDecision="false"', 'CombinedDecision="true"')
    [result] = decide(policy("p", rule("r")), xml)
    assert (result.decision, result.status) == ("Indeterminate", STATUS_CODES["processing-error"])


def test_the_json_profile_is_read_and_written():
    pdp = XacmlPdp(read_policy(parse(policy("p", rule("r", body=age_is(45))))))
    document = {
        "Request": {
            "ReturnPolicyIdList": True,
            "AccessSubject": {
                "Attribute": [
                    {"AttributeId": "age", "Value": 45, "IncludeInResult": True},
                    {"AttributeId": SUBJECT_ID, "Value": "alice"},
                ]
            },
            "Category": [
                {
                    "CategoryId": ACTION,
                    "Attribute": [{"AttributeId": ACTION_ID, "Value": ["read", "write"]}],
                }
            ],
        }
    }
    response = response_json(pdp.decide(read_json_request(document), NOW))
    [result] = response["Response"]
    assert result["Decision"] == "Permit"
    assert result["PolicyIdentifierList"] == {"PolicyIdReference": [{"Id": "p", "Version": "1.0"}]}
    assert result["Category"][0]["Attribute"][0]["Value"] == 45
    json.dumps(response)


def test_a_request_with_an_attribute_the_schema_does_not_allow_is_refused():
    import pytest

    from pbgm.xacml import XacmlError, read_request

    xml = request(READ).replace('IncludeInResult="false"', 'IncludeInResult="false" Foo="1"')
    with pytest.raises(XacmlError, match="no attribute `Foo`"):
        read_request(parse(xml))
