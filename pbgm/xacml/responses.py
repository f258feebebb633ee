"""XACML 3.0 responses: made from pbgm's, written as XML or JSON, read, and compared.

`XacmlResult` is one `<Result>` as data: the decision, the status (code, message,
missing attributes), obligations and advice with their attribute assignments (each
with its data type), the attributes asked back with `IncludeInResult`, and the policy
identifier list. `result_of` makes one from a pbgm `Response`; `response_xml` and
`response_json` write a response; `read_response` reads an XML `<Response>`.

`same_results` compares two responses as XACML defines their meaning: the same
decisions and status codes (the status message and detail are informative), the same
obligations and advice, each with the same attribute assignments (same id, category,
issuer, data type and value; values compared as their type says, so `27.50` equals
`27.5`), the same included attributes and the same policy identifiers; results,
obligations, advice, assignments, attributes and identifiers in any order.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pbgm.functions import DATATYPES, lexical, type_of
from pbgm.model import Advice, MissingAttribute, Obligation, Response
from pbgm.policy.syntax import thaw
from pbgm.xacml import names
from pbgm.xacml.elements import XacmlError, children, local, text_of
from pbgm.xacml.requests import Attribute
from pbgm.xacml.safexml import Element

N = ""  # plain tags; the root element declares the XACML namespace as the default


@dataclass(frozen=True, slots=True)
class AssignedValue:
    """One `<AttributeAssignment>`."""

    attribute_id: str
    data_type: str
    value: str  # lexical form
    category: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """An obligation or advice of a result."""

    id: str
    assignments: tuple[AssignedValue, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRef:
    kind: str  # "Policy" or "PolicySet"
    id: str
    version: str = "1.0"


@dataclass(frozen=True, slots=True)
class XacmlResult:
    decision: str
    status: str = names.STATUS_OK
    message: str = ""
    missing: tuple[MissingAttribute, ...] = ()
    obligations: tuple[Output, ...] = ()
    advice: tuple[Output, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    policy_ids: tuple[PolicyRef, ...] = ()


# --- from pbgm ---------------------------------------------------------------------------------


def typed_lexical(value: Any) -> tuple[str, str]:
    """(data type, lexical form) of a value: its XACML type, or pbgm's untyped value (JSON)."""
    found = type_of(value)
    if found is not None:
        return found.uri, found.lexical(value)
    return names.PBGM_VALUE, json.dumps(thaw(value), sort_keys=True, default=str)


def _assigned(
    attribute_id: str, value: Any, category: str | None, issuer: str | None
) -> list[AssignedValue]:
    """One assignment per value (a bag gives one per member, the empty bag none)."""
    values = value if isinstance(value, tuple) else (value,)
    return [AssignedValue(attribute_id, *typed_lexical(v), category, issuer) for v in values]


def output_of(item: Obligation | Advice) -> Output:
    assignments: list[AssignedValue] = []
    for name, value in item.attributes.items():
        assignments += _assigned(name, value, None, None)
    for assignment in item.assignments:
        assignments += _assigned(
            assignment.attribute_id, assignment.value, assignment.category, assignment.issuer
        )
    return Output(item.id, tuple(assignments))


def result_of(
    response: Response,
    included: tuple[Attribute, ...] = (),
    policy_ids: tuple[PolicyRef, ...] = (),
) -> XacmlResult:
    status = response.status
    return XacmlResult(
        str(response.decision),
        names.STATUS_CODES.get(status.code, names.STATUS_CODES["processing-error"]),
        status.message,
        status.missing,
        tuple(output_of(o) for o in response.obligations),
        tuple(output_of(a) for a in response.advice),
        included,
        policy_ids,
    )


# --- XML ------------------------------------------------------------------------------------------


def _sub(
    parent: ET.Element, tag: str, attrib: Mapping[str, str | None] | None = None
) -> ET.Element:
    clean = {k: v for k, v in (attrib or {}).items() if v is not None}
    return ET.SubElement(parent, N + tag, clean)


def response_element(results: Sequence[XacmlResult]) -> ET.Element:
    root = ET.Element(N + "Response")
    for result in results:
        node = _sub(root, "Result")
        _sub(node, "Decision").text = result.decision
        status = _sub(node, "Status")
        _sub(status, "StatusCode", {"Value": result.status})
        if result.message:
            _sub(status, "StatusMessage").text = result.message
        if result.missing:
            detail = _sub(status, "StatusDetail")
            for missing in result.missing:
                _sub(
                    detail,
                    "MissingAttributeDetail",
                    {
                        "Category": names.category_urn(missing.category),
                        "AttributeId": names.attribute_id(missing.category, missing.attribute_id),
                        "DataType": missing.data_type or names.STRING,
                        "Issuer": missing.issuer,
                    },
                )
        for kind, outputs in (("Obligation", result.obligations), ("Advice", result.advice)):
            if not outputs:
                continue
            group = _sub(node, "Obligations" if kind == "Obligation" else "AssociatedAdvice")
            for output in outputs:
                item = _sub(group, kind, {f"{kind}Id": output.id})
                for a in output.assignments:
                    _sub(
                        item,
                        "AttributeAssignment",
                        {
                            "AttributeId": a.attribute_id,
                            "DataType": a.data_type,
                            "Category": a.category,
                            "Issuer": a.issuer,
                        },
                    ).text = a.value
        _write_attributes(node, result.attributes)
        if result.policy_ids:
            listed = _sub(node, "PolicyIdentifierList")
            for ref in result.policy_ids:
                _sub(listed, f"{ref.kind}IdReference", {"Version": ref.version}).text = ref.id
    return root


def _write_attributes(node: ET.Element, attributes: Iterable[Attribute]) -> None:
    groups: dict[str, list[Attribute]] = {}
    for attribute in attributes:
        groups.setdefault(attribute.category, []).append(attribute)
    for category, members in groups.items():
        group = _sub(node, "Attributes", {"Category": category})
        for attribute in members:
            item = _sub(
                group,
                "Attribute",
                {
                    "AttributeId": attribute.attribute_id,
                    "Issuer": attribute.issuer,
                    "IncludeInResult": "true",
                },
            )
            for data_type, value in attribute.values:
                _sub(item, "AttributeValue", {"DataType": data_type}).text = lexical(value)


def response_xml(results: Sequence[XacmlResult]) -> str:
    element = response_element(results)
    ET.indent(element)
    element.set("xmlns", names.NS)
    body = ET.tostring(element, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def response_json(results: Sequence[XacmlResult]) -> dict[str, Any]:
    """The response in the JSON Profile 1.1 (§4.2.4)."""
    out = []
    for result in results:
        item: dict[str, Any] = {"Decision": result.decision}
        status: dict[str, Any] = {"StatusCode": {"Value": result.status}}
        if result.message:
            status["StatusMessage"] = result.message
        if result.missing:
            status["StatusDetail"] = {
                "MissingAttributeDetail": [
                    {
                        "Category": names.category_urn(m.category),
                        "AttributeId": names.attribute_id(m.category, m.attribute_id),
                        "DataType": m.data_type or names.STRING,
                        **({"Issuer": m.issuer} if m.issuer else {}),
                    }
                    for m in result.missing
                ]
            }
        item["Status"] = status
        for key, outputs in (
            ("Obligations", result.obligations),
            ("AssociatedAdvice", result.advice),
        ):
            if outputs:
                item[key] = [
                    {"Id": o.id, "AttributeAssignment": [_json_assigned(a) for a in o.assignments]}
                    for o in outputs
                ]
        if result.attributes:
            groups: dict[str, list[Any]] = {}
            for a in result.attributes:
                groups.setdefault(a.category, []).append(_json_attribute(a))
            item["Category"] = [{"CategoryId": c, "Attribute": v} for c, v in groups.items()]
        if result.policy_ids:
            listed: dict[str, list[Any]] = {}
            for ref in result.policy_ids:
                listed.setdefault(f"{ref.kind}IdReference", []).append(
                    {"Id": ref.id, "Version": ref.version}
                )
            item["PolicyIdentifierList"] = listed
        out.append(item)
    return {"Response": out}


def _json_assigned(a: AssignedValue) -> dict[str, Any]:
    out: dict[str, Any] = {"AttributeId": a.attribute_id, "Value": a.value, "DataType": a.data_type}
    if a.category:
        out["Category"] = a.category
    if a.issuer:
        out["Issuer"] = a.issuer
    return out


def _json_attribute(a: Attribute) -> dict[str, Any]:
    values = [lexical(v) if not isinstance(v, bool | int | float | str) else v for _, v in a.values]
    out: dict[str, Any] = {
        "AttributeId": a.attribute_id,
        "Value": values[0] if len(values) == 1 else values,
        "DataType": a.values[0][0] if a.values else names.STRING,
        "IncludeInResult": True,
    }
    if a.issuer:
        out["Issuer"] = a.issuer
    return out


# --- reading ----------------------------------------------------------------------------------


def read_response(element: Element) -> list[XacmlResult]:
    """The results of an XML `<Response>` (for comparison; lenient about what it ignores)."""
    if local(element) != "Response":
        raise XacmlError([])
    return [_read_result(r) for r in children(element) if local(r) == "Result"]


def _read_result(element: Element) -> XacmlResult:
    decision, status, message = "", names.STATUS_OK, ""
    obligations: list[Output] = []
    advice: list[Output] = []
    attributes: list[Attribute] = []
    policy_ids: list[PolicyRef] = []
    for child in children(element):
        name = local(child)
        if name == "Decision":
            decision = text_of(child).strip()
        elif name == "Status":
            for part in children(child):
                if local(part) == "StatusCode":
                    status = _status_code(part)
                elif local(part) == "StatusMessage":
                    message = text_of(part)
        elif name in ("Obligations", "AssociatedAdvice"):
            kind = "Obligation" if name == "Obligations" else "Advice"
            found = obligations if kind == "Obligation" else advice
            for item in children(child):
                found.append(
                    Output(
                        item.get(f"{kind}Id", ""),
                        tuple(
                            AssignedValue(
                                a.get("AttributeId", ""),
                                a.get("DataType", names.STRING),
                                text_of(a),
                                a.get("Category"),
                                a.get("Issuer"),
                            )
                            for a in children(item)
                        ),
                    )
                )
        elif name == "Attributes":
            category = child.get("Category", "")
            for item in children(child):
                values = tuple(
                    (v.get("DataType", names.STRING), text_of(v)) for v in children(item)
                )
                attributes.append(
                    Attribute(
                        category, item.get("AttributeId", ""), values, item.get("Issuer"), True
                    )
                )
        elif name == "PolicyIdentifierList":
            for ref in children(child):
                kind = local(ref).removesuffix("IdReference")
                policy_ids.append(PolicyRef(kind, text_of(ref).strip(), ref.get("Version", "1.0")))
    return XacmlResult(
        decision,
        status,
        message,
        (),
        tuple(obligations),
        tuple(advice),
        tuple(attributes),
        tuple(policy_ids),
    )


def _status_code(element: Element) -> str:
    """The code and its nested codes, joined by spaces."""
    codes = [element.get("Value", "")]
    nested = [c for c in children(element) if local(c) == "StatusCode"]
    while nested:
        codes.append(nested[0].get("Value", ""))
        nested = [c for c in children(nested[0]) if local(c) == "StatusCode"]
    return " ".join(codes)


# --- comparing ---------------------------------------------------------------------------------


def _value_key(data_type: str, value: Any) -> Any:
    """A value as its data type compares it (its lexical form if it does not read)."""
    found = DATATYPES.get(data_type)
    if isinstance(value, str):
        if found is None:
            return value.strip()
        try:
            return found.parse(value)
        except ValueError:
            return value.strip()
    return value


def _output_key(output: Output) -> tuple[Any, ...]:
    assignments = Counter(
        (a.attribute_id, a.category, a.issuer, a.data_type, _value_key(a.data_type, a.value))
        for a in output.assignments
    )
    return (output.id, frozenset(assignments.items()))


def _attribute_key(attribute: Attribute) -> tuple[Any, ...]:
    values = Counter((t, _value_key(t, v)) for t, v in attribute.values)
    return (attribute.category, attribute.attribute_id, attribute.issuer, frozenset(values.items()))


def result_key(result: XacmlResult) -> tuple[Any, ...]:
    """What XACML's equality of results looks at, order-insensitive (see the module)."""
    return (
        result.decision,
        result.status,
        frozenset(Counter(_output_key(o) for o in result.obligations).items()),
        frozenset(Counter(_output_key(a) for a in result.advice).items()),
        frozenset(Counter(_attribute_key(a) for a in result.attributes).items()),
        frozenset(Counter(result.policy_ids).items()),
    )


def same_results(expected: Sequence[XacmlResult], actual: Sequence[XacmlResult]) -> bool:
    return Counter(result_key(r) for r in expected) == Counter(result_key(r) for r in actual)


def differences(expected: Sequence[XacmlResult], actual: Sequence[XacmlResult]) -> str:
    """A short account of how two responses differ (for the conformance runner)."""
    if len(expected) != len(actual):
        return f"{len(actual)} result(s), expected {len(expected)}"
    for want, got in zip(expected, actual, strict=True):
        for label, a, b in (
            ("decision", want.decision, got.decision),
            ("status", want.status, got.status),
        ):
            if a != b:
                detail = f" ({got.message})" if label == "status" and got.message else ""
                return f"{label} {b}{detail}, expected {a}"
        for label in ("obligations", "advice", "attributes", "policy_ids"):
            key = (
                _output_key
                if label in ("obligations", "advice")
                else (_attribute_key if label == "attributes" else (lambda r: r))
            )
            if Counter(map(key, getattr(want, label))) != Counter(map(key, getattr(got, label))):
                return f"{label} differ: got {getattr(got, label)}, expected {getattr(want, label)}"
    return "results differ"
