"""Reading XACML policies: what is read, and what is refused with the element and why."""

from __future__ import annotations

import pytest

from pbgm.model import Match
from pbgm.xacml import XacmlError, parse, read_policy
from pbgm.xacml.repository import PoliciesRepository
from tests.xacml.helpers import (
    ACTION,
    ACTION_ID,
    F1,
    FIRST,
    NS,
    SUBJECT_ID,
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


def codes(xml: str, repository=None) -> set[str]:
    with pytest.raises(XacmlError) as refused:
        read_policy(parse(xml), repository)
    return {p.code for p in refused.value.problems}


def variable(variable_id: str, expression: str) -> str:
    return f'<VariableDefinition VariableId="{variable_id}">{expression}</VariableDefinition>'


def reference(variable_id: str) -> str:
    return f'<VariableReference VariableId="{variable_id}"/>'


SELECTOR = '<AttributeSelector Category="c" Path="//x" DataType="x" MustBePresent="false"/>'
READ_ACTION = target(
    any_of(match(F1 + "string-equal", value("read"), designator(ACTION_ID, category=ACTION)))
)


def test_a_string_match_becomes_an_indexed_pbgm_match():
    read = read_policy(parse(policy("p", rule("r"), target_xml=READ_ACTION)))
    assert read.target.matches == (Match("action", "id", frozenset({"read"})),)
    assert read.target.any_of == ()


def test_a_match_that_must_be_present_stays_a_xacml_matcher():
    must = target(
        any_of(
            match(
                F1 + "string-equal",
                value("read"),
                designator(ACTION_ID, category=ACTION, must=True),
            )
        )
    )
    read = read_policy(parse(policy("p", rule("r"), target_xml=must)))
    assert read.target.matches == () and len(read.target.any_of) == 1


def test_namespace_prefixes_and_policy_defaults_are_read():
    xml = (
        f'<x:Policy xmlns:x="{NS}" PolicyId="p" Version="2.1" RuleCombiningAlgId='
        '"urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:deny-overrides">'
        "<x:Description>d</x:Description><x:PolicyDefaults><x:XPathVersion>"
        "http://www.w3.org/TR/1999/REC-xpath-19991116</x:XPathVersion></x:PolicyDefaults>"
        '<x:Target/><x:Rule RuleId="r" Effect="Permit"/></x:Policy>'
    )
    read = read_policy(parse(xml))
    assert (read.id, read.policy_version, read.description) == ("p", "2.1", "d")


def test_variables_are_inlined_where_they_are_referenced():
    body = variable(
        "is-alice",
        apply(
            F1 + "string-equal",
            value("alice"),
            apply(F1 + "string-one-and-only", designator(SUBJECT_ID)),
        ),
    )
    read = read_policy(parse(policy("p", body, rule("r", body=condition(reference("is-alice"))))))
    assert read.rules[0].condition.function == F1 + "string-equal"


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        ((rule("r", body=condition(reference("nope"))),), "undefined_variable"),
        (
            (
                variable("v", value("true", "boolean")),
                variable("v", value("true", "boolean")),
                rule("r"),
            ),
            "duplicate_variable",
        ),
        (
            (variable("a", reference("b")), variable("b", reference("a")), rule("r")),
            "circular_variable",
        ),
        ((rule("r"), rule("r")), "duplicate_rule_id"),
        ((rule("r", "Maybe"),), "invalid_effect"),
        ((rule("r", body=condition(apply(F1 + "no-such-function"))),), "unknown_function"),
        (
            (rule("r", body=condition(apply(F1 + "string-equal", value("a"), designator("x")))),),
            "type_mismatch",
        ),
        (
            (
                rule(
                    "r",
                    body=condition(SELECTOR),
                ),
            ),
            "unsupported",
        ),
        ((rule("r", body="<Unknown/>"),), "unexpected_element"),
    ],
)
def test_a_policy_with_a_problem_is_refused_whole(parts, code):
    assert code in codes(policy("p", *parts))


def test_attributes_and_elements_the_schema_does_not_allow_are_refused():
    old_style = designator(SUBJECT_ID).replace("/>", ' SubjectCategory="x"/>')
    body = condition(apply(F1 + "string-is-in", value("a"), old_style))
    assert "unexpected_attribute" in codes(policy("p", rule("r", body=body)))
    twice = rule("r", body=condition(value("true", "boolean")) * 2)
    assert "unexpected_element" in codes(policy("p", twice))


def test_variables_that_expand_too_far_are_refused():
    parts = [variable("v0", value("true", "boolean"))]
    for i in range(1, 16):
        parts.append(
            variable(f"v{i}", apply(F1 + "and", reference(f"v{i - 1}"), reference(f"v{i - 1}")))
        )
    assert "too_complex" in codes(policy("p", *parts, rule("r", body=condition(reference("v15")))))


def test_a_policy_without_a_target_is_refused():
    xml = policy("p", rule("r")).replace("<Target/>", "")
    assert "required" in codes(xml)


def test_references_are_resolved_with_their_versions():
    old = read_policy(parse(policy("child", rule("old"), version="1.0")))
    new = read_policy(parse(policy("child", rule("new"), version="1.2")))
    repository = PoliciesRepository([old, new])
    latest = policy_set("s", "<PolicyIdReference>child</PolicyIdReference>")
    assert read_policy(parse(latest), repository).policies[0].rules[0].id == "new"
    pinned = policy_set("s", '<PolicyIdReference Version="1.0">child</PolicyIdReference>')
    assert read_policy(parse(pinned), repository).policies[0].rules[0].id == "old"
    ranged = policy_set("s", '<PolicyIdReference LatestVersion="1.1">child</PolicyIdReference>')
    assert read_policy(parse(ranged), repository).policies[0].rules[0].id == "old"
    wildcard = policy_set("s", '<PolicyIdReference Version="1.*">child</PolicyIdReference>')
    assert read_policy(parse(wildcard), repository).policies[0].rules[0].id == "new"


def test_a_dangling_reference_is_refused():
    assert "dangling_reference" in codes(
        policy_set("s", "<PolicyIdReference>x</PolicyIdReference>")
    )


def test_a_cycle_of_references_is_refused(tmp_path):
    from pbgm.xacml import DirectoryRepository

    (tmp_path / "a.xml").write_text(
        policy_set("a", "<PolicySetIdReference>b</PolicySetIdReference>")
    )
    (tmp_path / "b.xml").write_text(
        policy_set("b", "<PolicySetIdReference>a</PolicySetIdReference>")
    )
    repository = DirectoryRepository.of_directory(tmp_path)
    assert "circular_reference" in codes((tmp_path / "a.xml").read_text(), repository)


def test_a_policy_set_holds_policies_and_sets(decided):
    inner = policy("inner", rule("deny", "Deny"))
    xml = policy_set(
        "outer",
        policy_set("middle", inner).replace(f' xmlns="{NS}"', ""),
        policy("permit", rule("permit")).replace(f' xmlns="{NS}"', ""),
        algorithm=FIRST,
    )
    read = read_policy(parse(xml))
    assert [p.id for p in read.policies] == ["middle", "permit"] and read.policies[0].is_set
    [result] = decided(xml, request(attributes(ACTION, attribute(ACTION_ID, "read"))))
    assert result.decision == "Deny"
