"""XML elements of XACML 3.0 documents: names without their namespace, children, text,
the XML attributes the schema allows, and the error of a document pbgm cannot read."""

from __future__ import annotations

from pbgm.errors import ValidationError
from pbgm.xacml.safexml import Element


class XacmlError(ValidationError):
    """A XACML document that cannot be read into pbgm: every problem, each located by
    the path of its element (`/PolicySet[x]/Policy[y]/Rule[z]/Condition`)."""

    code = "invalid_xacml"


def local(element: Element) -> str:
    """An element's name without its namespace."""
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def namespace(element: Element) -> str:
    tag = element.tag
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def text_of(element: Element) -> str:
    return element.text or ""


_FREE_NAMESPACES = (
    "{http://www.w3.org/2001/XMLSchema-instance}",
    "{http://www.w3.org/XML/1998/namespace}",
)
ATTRIBUTES = {
    "Policy": {"PolicyId", "Version", "RuleCombiningAlgId", "MaxDelegationDepth"},
    "PolicySet": {"PolicySetId", "Version", "PolicyCombiningAlgId", "MaxDelegationDepth"},
    "Rule": {"RuleId", "Effect"},
    "Match": {"MatchId"},
    "Apply": {"FunctionId"},
    "Function": {"FunctionId"},
    "AttributeDesignator": {"Category", "AttributeId", "DataType", "Issuer", "MustBePresent"},
    "VariableDefinition": {"VariableId"},
    "VariableReference": {"VariableId"},
    "ObligationExpression": {"ObligationId", "FulfillOn"},
    "AdviceExpression": {"AdviceId", "AppliesTo"},
    "AttributeAssignmentExpression": {"AttributeId", "Category", "Issuer"},
    "PolicyIdReference": {"Version", "EarliestVersion", "LatestVersion"},
    "PolicySetIdReference": {"Version", "EarliestVersion", "LatestVersion"},
    "Request": {"ReturnPolicyIdList", "CombinedDecision"},
    "Attributes": {"Category"},
    "Attribute": {"AttributeId", "Issuer", "IncludeInResult"},
}
"""The XML attributes the XACML 3.0 schema allows on each element (`AttributeValue` takes
any); an attribute of the XML Schema instance or XML namespace is allowed everywhere."""


def unexpected_attributes(element: Element) -> list[str]:
    """The attributes of `element` the schema does not allow on it."""
    allowed = ATTRIBUTES.get(local(element))
    if allowed is None:
        return []
    return [
        name
        for name in element.attrib
        if name not in allowed and not name.startswith(_FREE_NAMESPACES)
    ]
