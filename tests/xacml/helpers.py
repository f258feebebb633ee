"""Small XACML documents for the tests: a policy, a request, built as text."""

from __future__ import annotations

NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
XS = "http://www.w3.org/2001/XMLSchema#"
F1 = "urn:oasis:names:tc:xacml:1.0:function:"
F3 = "urn:oasis:names:tc:xacml:3.0:function:"
SUBJECT = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"
RESOURCE = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource"
ACTION = "urn:oasis:names:tc:xacml:3.0:attribute-category:action"
ENVIRONMENT = "urn:oasis:names:tc:xacml:3.0:attribute-category:environment"
SUBJECT_ID = "urn:oasis:names:tc:xacml:1.0:subject:subject-id"
ACTION_ID = "urn:oasis:names:tc:xacml:1.0:action:action-id"
RULE_DO = "urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:deny-overrides"
POLICY_DO = "urn:oasis:names:tc:xacml:3.0:policy-combining-algorithm:deny-overrides"
FIRST = "urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:first-applicable"


def value(text: str, data_type: str = "string") -> str:
    return f'<AttributeValue DataType="{XS}{data_type}">{text}</AttributeValue>'


def designator(
    attribute_id: str,
    data_type: str = "string",
    category: str = SUBJECT,
    must: bool = False,
    issuer: str | None = None,
) -> str:
    issued = f' Issuer="{issuer}"' if issuer else ""
    return (
        f'<AttributeDesignator Category="{category}" AttributeId="{attribute_id}" '
        f'DataType="{XS}{data_type}" MustBePresent="{str(must).lower()}"{issued}/>'
    )


def apply(function: str, *args: str) -> str:
    return f'<Apply FunctionId="{function}">{"".join(args)}</Apply>'


def match(function: str, literal: str, attribute: str) -> str:
    return f'<Match MatchId="{function}">{literal}{attribute}</Match>'


def target(*any_ofs: str) -> str:
    return "<Target>" + "".join(any_ofs) + "</Target>"


def any_of(*all_ofs: str) -> str:
    return "<AnyOf>" + "".join(f"<AllOf>{a}</AllOf>" for a in all_ofs) + "</AnyOf>"


def rule(rule_id: str, effect: str = "Permit", body: str = "") -> str:
    return f'<Rule RuleId="{rule_id}" Effect="{effect}">{body}</Rule>'


def condition(expression: str) -> str:
    return f"<Condition>{expression}</Condition>"


def policy(
    policy_id: str,
    *parts: str,
    algorithm: str = RULE_DO,
    version: str = "1.0",
    target_xml: str = "<Target/>",
) -> str:
    return (
        f'<Policy xmlns="{NS}" PolicyId="{policy_id}" Version="{version}" '
        f'RuleCombiningAlgId="{algorithm}">{target_xml}{"".join(parts)}</Policy>'
    )


def policy_set(set_id: str, *parts: str, algorithm: str = POLICY_DO, version: str = "1.0") -> str:
    return (
        f'<PolicySet xmlns="{NS}" PolicySetId="{set_id}" Version="{version}" '
        f'PolicyCombiningAlgId="{algorithm}"><Target/>{"".join(parts)}</PolicySet>'
    )


def attribute(
    attribute_id: str,
    *values: str,
    data_type: str = "string",
    include: bool = False,
    issuer: str | None = None,
) -> str:
    issued = f' Issuer="{issuer}"' if issuer else ""
    inner = "".join(
        f'<AttributeValue DataType="{XS}{data_type}">{v}</AttributeValue>' for v in values
    )
    return (
        f'<Attribute AttributeId="{attribute_id}" IncludeInResult="{str(include).lower()}"'
        f"{issued}>{inner}</Attribute>"
    )


def attributes(category: str, *items: str) -> str:
    return f'<Attributes Category="{category}">{"".join(items)}</Attributes>'


def request(*groups: str, policy_ids: bool = False) -> str:
    return (
        f'<Request xmlns="{NS}" ReturnPolicyIdList="{str(policy_ids).lower()}" '
        f'CombinedDecision="false">{"".join(groups)}</Request>'
    )
