"""pbgm policies written as XACML 3.0: `policy_element`, `group_element`, `xml_text`.

Everything a pbgm policy says is written in standard XACML where XACML can say it, and
with pbgm's own identifiers where it cannot, so that reading the XACML back
(`pbgm.xacml.reader`) gives the same policy:

- a target's equality matches of strings are `string-equal` matches of string
  designators (`MustBePresent="false"`, as pbgm's targets never fail); matches of other
  values use `urn:pbgm:function:target-match` (pbgm compares untyped JSON values);
- a validity window is a target a XACML PDP honours (`valid_from <= current-dateTime`,
  `valid_until > current-dateTime`), also kept as a parameter;
- pbgm functions are `urn:pbgm:function:<name>`, pbgm's untyped attributes designators of
  the data type `urn:pbgm:data-type:value`, list literals calls of
  `urn:pbgm:function:list`; XACML functions, designators and typed literals are written
  as they are;
- the envelope XACML has no place for (type, policy group, asset, content, window) goes
  in `<CombinerParameters>` named `urn:pbgm:policy:...`, which XACML's combining
  algorithms ignore.

A policy written with pbgm's own functions can only be decided by pbgm; one written
with XACML's (as any imported policy is) by any XACML 3.0 PDP.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from pbgm.functions import DATATYPES, HIGHER_ORDER, lexical
from pbgm.model import (
    Apply,
    AttributeRef,
    Expr,
    Literal,
    Match,
    Matcher,
    ObligationExpression,
    Policy,
    PolicyGroup,
    Rule,
    Target,
)
from pbgm.policy.syntax import format_datetime, thaw
from pbgm.xacml import names
from pbgm.xacml.envelope import validity_any_of
from pbgm.xacml.references import DEFAULT_VERSION

N = ""  # plain tags; the root element declares the XACML namespace as the default
GROUP_PARAMETER = "group"
"""The parameter that marks a policy set as a pbgm policy group (`group_element`)."""


def _sub(
    parent: ET.Element, tag: str, attrib: Mapping[str, str | None] | None = None
) -> ET.Element:
    return ET.SubElement(
        parent, N + tag, {k: v for k, v in (attrib or {}).items() if v is not None}
    )


def policy_element(policy: Policy, *, top: bool = True) -> ET.Element:
    """`<Policy>` or `<PolicySet>` for a pbgm policy (its envelope kept when `top`)."""
    kind = "PolicySet" if policy.is_set else "Policy"
    algorithms = names.POLICY_ALGORITHM_IDS if policy.is_set else names.RULE_ALGORITHM_IDS
    algorithm = policy.policy_combining if policy.is_set else policy.rule_combining
    element = ET.Element(
        N + kind,
        {
            f"{kind}Id": policy.id,
            "Version": policy.policy_version or DEFAULT_VERSION,
            f"{'Policy' if policy.is_set else 'Rule'}CombiningAlgId": algorithms.get(
                algorithm or "", names.PBGM + "combining-algorithm:" + (algorithm or "")
            ),
        },
    )
    if policy.description:
        _sub(element, "Description").text = policy.description
    window = validity_any_of(policy.valid_from, policy.valid_until) if top else iter(())
    _target(element, policy.target, tuple(window))
    if top:
        _parameters(element, _envelope(policy))
    if policy.is_set:
        for child in policy.policies:
            element.append(policy_element(child, top=False))
    else:
        for rule in policy.rules:
            _rule(element, rule)
    _outputs(element, policy.obligations, policy.advice)
    return element


def group_element(group: PolicyGroup, policies: Sequence[Policy]) -> ET.Element:
    """A pbgm policy group as a `<PolicySet>` of its policies (marked as a group, so that
    importing it gives back the group and its policies)."""
    element = ET.Element(
        N + "PolicySet",
        {
            "PolicySetId": group.id,
            "Version": DEFAULT_VERSION,
            "PolicyCombiningAlgId": names.POLICY_ALGORITHM_IDS.get(
                group.policy_combining, names.PBGM + "combining-algorithm:" + group.policy_combining
            ),
        },
    )
    if group.description:
        _sub(element, "Description").text = group.description
    _sub(element, "Target")
    _parameters(element, {GROUP_PARAMETER: "true"})
    for policy in policies:
        element.append(policy_element(policy))
    return element


def xml_text(element: ET.Element) -> str:
    ET.indent(element)
    element.set("xmlns", names.NS)
    body = ET.tostring(element, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _envelope(policy: Policy) -> dict[str, str]:
    out = {"type": policy.type, "policy_group": policy.policy_group}
    if policy.asset_id is not None:
        out["asset_id"] = policy.asset_id
    out["content"] = json.dumps(thaw(policy.content), sort_keys=True, separators=(",", ":"))
    if policy.valid_from is not None:
        out["valid_from"] = format_datetime(policy.valid_from)
    if policy.valid_until is not None:
        out["valid_until"] = format_datetime(policy.valid_until)
    return out


def _parameters(element: ET.Element, values: Mapping[str, str]) -> None:
    group = _sub(element, "CombinerParameters")
    for key, value in values.items():
        parameter = _sub(group, "CombinerParameter", {"ParameterName": names.PBGM_PARAMETER + key})
        _sub(parameter, "AttributeValue", {"DataType": names.STRING}).text = value


def _rule(parent: ET.Element, rule: Rule) -> None:
    element = _sub(parent, "Rule", {"RuleId": rule.id, "Effect": rule.effect.value})
    if rule.description:
        _sub(element, "Description").text = rule.description
    if not rule.target.is_empty:
        _target(element, rule.target, ())
    if rule.condition is not None:
        _expression(_sub(element, "Condition"), rule.condition)
    _outputs(element, rule.obligations, rule.advice)


# --- targets ---------------------------------------------------------------------------------


def _target(parent: ET.Element, target: Target, extra: tuple[Any, ...]) -> None:
    element = _sub(parent, "Target")
    for match in target.matches:
        any_of = _sub(element, "AnyOf")
        for value in sorted(match.values, key=repr):
            _match(_sub(any_of, "AllOf"), match, value)
    for alternatives in (*target.any_of, *extra):
        any_of = _sub(element, "AnyOf")
        for all_of in alternatives:
            group = _sub(any_of, "AllOf")
            for matcher in all_of:
                _matcher(group, matcher)


def _match(parent: ET.Element, match: Match, value: Any) -> None:
    plain = all(v.__class__ is str for v in match.values)
    function = "urn:oasis:names:tc:xacml:1.0:function:string-equal" if plain else names.PBGM_MATCH
    element = _sub(parent, "Match", {"MatchId": function})
    _literal(element, Literal(value) if plain else Literal(value, _JSON))
    data_type = names.STRING if plain else names.PBGM_VALUE
    _designator(element, AttributeRef(match.category, match.name, True, data_type))


_JSON = "json"


def _matcher(parent: ET.Element, matcher: Matcher) -> None:
    element = _sub(parent, "Match", {"MatchId": matcher.function})
    _expression(element, matcher.value)
    _designator(element, matcher.attribute)


# --- expressions -------------------------------------------------------------------------------


def _expression(parent: ET.Element, expr: Expr) -> None:
    if isinstance(expr, AttributeRef):
        _designator(parent, expr)
    elif isinstance(expr, Literal):
        _literal(parent, expr)
    elif isinstance(expr, Apply):
        _apply(parent, expr)


def _apply(parent: ET.Element, expr: Apply) -> None:
    xacml = expr.function.startswith(names.XACML)
    function = expr.function if xacml else names.PBGM_FUNCTION + expr.function
    element = _sub(parent, "Apply", {"FunctionId": function})
    args = expr.args
    if expr.function in HIGHER_ORDER and args and isinstance(args[0], Literal):
        _sub(element, "Function", {"FunctionId": str(args[0].value)})
        args = args[1:]
    for arg in args:
        _expression(element, arg)


def _designator(parent: ET.Element, ref: AttributeRef) -> None:
    _sub(
        parent,
        "AttributeDesignator",
        {
            "Category": names.category_urn(ref.category),
            "AttributeId": names.attribute_id(ref.category, ref.name),
            "DataType": ref.data_type or names.PBGM_VALUE,
            "MustBePresent": "false" if ref.may_be_absent else "true",
            "Issuer": ref.issuer,
        },
    )


def _literal(parent: ET.Element, lit: Literal) -> None:
    value = lit.value
    if lit.type == _JSON or (lit.type is None and value.__class__ not in _PLAIN_TYPES):
        if lit.type is None and isinstance(value, tuple):
            element = _sub(parent, "Apply", {"FunctionId": names.PBGM_LIST})
            for member in value:
                _literal(element, Literal(member))
            return
        text = json.dumps(thaw(value), sort_keys=True, separators=(",", ":"))
        _sub(parent, "AttributeValue", {"DataType": names.PBGM_VALUE}).text = text
        return
    if lit.type is None:
        data_type = _PLAIN_TYPES[value.__class__]
        _sub(parent, "AttributeValue", {"DataType": data_type}).text = lexical(value)
        return
    if lit.type in DATATYPES:
        text = value if isinstance(value, str) else lexical(value)
        _sub(parent, "AttributeValue", {"DataType": lit.type}).text = text
        return
    _sub(parent, "AttributeValue", {"DataType": names.PBGM_TYPED + lit.type}).text = str(value)


_PLAIN_TYPES = {
    str: names.STRING,
    bool: names.XS + "boolean",
    int: names.XS + "integer",
    float: names.XS + "double",
}


# --- obligations and advice -----------------------------------------------------------------------


def _outputs(
    parent: ET.Element,
    obligations: Sequence[ObligationExpression],
    advice: Sequence[ObligationExpression],
) -> None:
    for kind, items in (("Obligation", obligations), ("Advice", advice)):
        if not items:
            continue
        group = _sub(parent, f"{kind}Expressions")
        applies = "FulfillOn" if kind == "Obligation" else "AppliesTo"
        for item in items:
            element = _sub(
                group,
                f"{kind}Expression",
                {
                    f"{kind}Id": item.id,
                    applies: item.fulfill_on.value,
                },
            )
            for name, expr in item.attributes.items():
                _expression(
                    _sub(element, "AttributeAssignmentExpression", {"AttributeId": name}), expr
                )
            for a in item.assignments:
                assignment = _sub(
                    element,
                    "AttributeAssignmentExpression",
                    {
                        "AttributeId": a.attribute_id,
                        "Category": a.category,
                        "Issuer": a.issuer,
                    },
                )
                _expression(assignment, a.expression)
