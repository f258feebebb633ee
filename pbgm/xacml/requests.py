"""XACML 3.0 requests, XML and JSON Profile, read into pbgm requests.

A XACML `<Request>` (or `{"Request": ...}` of the JSON Profile 1.1) becomes one or more
`Individual` requests: `Attributes` elements repeating a category are the Multiple
Decision Profile's repeated categories (§2.3), one individual request per combination.
Each holds an `ExtendedRequest` whose bags map pbgm names (`pbgm.xacml.names`) to the
tuple of the attribute's typed values, and the same values under a key per data type and
per issuer (`pbgm.model.typed_key`), what a designator reads; the attributes asked back
with `IncludeInResult`; and whether the policy identifiers are wanted.

Refused (`XacmlError`, the request's syntax error): an unknown data type, a value that
does not read as its type, an attribute without a value, `MultiRequests` and
`Attributes` with XML `<Content>` used by XPath (both accepted when they change nothing:
`<Content>` is ignored, as no XPath is evaluated), more than `MAX_INDIVIDUAL` individual
requests. `CombinedDecision="true"` is answered with one Indeterminate (pbgm does not
combine decisions), as §5.42 asks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pbgm.errors import Problem
from pbgm.functions import DATATYPES
from pbgm.functions.datatypes import XDate, XTime
from pbgm.model import ExtendedRequest, typed_key
from pbgm.xacml import names
from pbgm.xacml.elements import (
    XacmlError,
    children,
    local,
    namespace,
    text_of,
    unexpected_attributes,
)
from pbgm.xacml.safexml import Element

MAX_INDIVIDUAL = 1_000
MAX_VALUES = 100_000


@dataclass(frozen=True, slots=True)
class Attribute:
    """One `<Attribute>` of a request: its id, issuer, values and whether it is echoed."""

    category: str  # the XACML category id
    attribute_id: str
    values: tuple[tuple[str, Any], ...]  # (data type, value)
    issuer: str | None = None
    include: bool = False


@dataclass(frozen=True, slots=True)
class Individual:
    """One decision to make: the attributes of one combination of categories."""

    attributes: tuple[Attribute, ...]

    def included(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.include)

    def request(self, now: datetime | None = None) -> ExtendedRequest:
        """The pbgm request, with the current time, date and dateTime the context handler
        supplies (from `now`) when the request does not carry them (§10.2.5)."""
        bags: dict[str, dict[str, Any]] = {}
        present: set[str] = set()
        for attribute in self.attributes:
            category = names.category_name(attribute.category)
            if category == "environment":
                present.add(attribute.attribute_id)
            name = names.attribute_name(category, attribute.attribute_id)
            bag = bags.setdefault(category, {})
            for data_type, value in attribute.values:
                _add(bag, name, value)
                _add(bag, typed_key(name, data_type), value)
                if attribute.issuer is not None:
                    _add(bag, typed_key(name, data_type, attribute.issuer), value)
        if now is not None:
            environment = bags.setdefault("environment", {})
            for attribute_id, data_type, value in _current(now):
                if attribute_id not in present:
                    name = names.attribute_name("environment", attribute_id)
                    _add(environment, name, value)
                    _add(environment, typed_key(name, data_type), value)
        frozen = {c: {k: tuple(v) for k, v in bag.items()} for c, bag in bags.items()}
        subject, resource, action, environment = (
            frozen.pop(c, {}) for c in ("subject", "resource", "action", "environment")
        )
        return ExtendedRequest(subject, resource, action, environment, frozen)


def _add(bag: dict[str, Any], key: str, value: Any) -> None:
    found = bag.get(key)
    if found is None:
        bag[key] = [value]
    else:
        found.append(value)


def _current(now: datetime) -> list[tuple[str, str, Any]]:
    offset = now.utcoffset() or timedelta(0)
    return [
        (names.CURRENT_DATETIME, names.XS + "dateTime", now),
        (names.CURRENT_DATE, names.XS + "date", XDate(now.date(), offset)),
        (names.CURRENT_TIME, names.XS + "time", XTime(now.time().replace(tzinfo=None), offset)),
    ]


@dataclass(frozen=True, slots=True)
class XacmlRequest:
    """A read request: its individual requests and what the response should carry."""

    individuals: tuple[Individual, ...]
    return_policy_ids: bool = False
    combined: bool = False
    problems: tuple[Problem, ...] = field(default=())


# --- XML -------------------------------------------------------------------------------------


def read_request(element: Element) -> XacmlRequest:
    """A XACML 3.0 `<Request>` element; `XacmlError` with every problem otherwise."""
    problems: list[Problem] = []
    if local(element) != "Request" or namespace(element) != names.NS:
        raise XacmlError(
            [
                Problem(
                    "/Request", "not_a_request", f"expected a XACML 3.0 `Request` in `{names.NS}`"
                )
            ]
        )
    groups: dict[str, list[list[Attribute]]] = {}
    _refuse_attributes(element, "/Request", problems)
    for i, child in enumerate(children(element), 1):
        name = local(child)
        path = f"/Request/{name}[{i}]"
        _refuse_attributes(child, path, problems)
        if name == "Attributes":
            category = child.get("Category")
            if not category:
                problems.append(Problem(path, "required", "`Attributes` needs a `Category`"))
                continue
            groups.setdefault(category, []).append(_attributes(child, category, path, problems))
        elif name == "MultiRequests":
            problems.append(Problem(path, "unsupported", _MULTI))
        elif name != "RequestDefaults":
            problems.append(Problem(path, "unexpected_element", f"`{name}` is not allowed here"))
    return _finish(
        groups,
        _flag(element.get("ReturnPolicyIdList"), "ReturnPolicyIdList", problems),
        _flag(element.get("CombinedDecision"), "CombinedDecision", problems),
        problems,
    )


def _refuse_attributes(element: Element, path: str, problems: list[Problem]) -> None:
    for name in unexpected_attributes(element):
        shown = name.rsplit("}", 1)[-1]
        problems.append(
            Problem(path, "unexpected_attribute", f"`{local(element)}` has no attribute `{shown}`")
        )


def _flag(value: str | None, name: str, problems: list[Problem]) -> bool:
    if value is None:
        problems.append(Problem("/Request", "required", f"`Request` needs `{name}`"))
        return False
    if value not in ("true", "false", "1", "0"):
        problems.append(Problem("/Request", "invalid_flag", f"`{name}` is `true` or `false`"))
    return value in ("true", "1")


def _attributes(
    element: Element, category: str, path: str, problems: list[Problem]
) -> list[Attribute]:
    found = []
    for i, child in enumerate(children(element), 1):
        name = local(child)
        here = f"{path}/{name}[{i}]"
        if name == "Content":
            continue  # no XPath is evaluated: the content changes no decision
        if name != "Attribute":
            problems.append(Problem(here, "unexpected_element", f"`{name}` is not allowed here"))
            continue
        _refuse_attributes(child, here, problems)
        attribute_id = child.get("AttributeId")
        include = child.get("IncludeInResult")
        values = []
        for j, value in enumerate(children(child), 1):
            where = f"{here}/AttributeValue[{j}]"
            if local(value) != "AttributeValue" or children(value):
                problems.append(
                    Problem(where, "invalid_value", "expected a simple `AttributeValue`")
                )
                continue
            read = _typed(value.get("DataType"), text_of(value), where, problems)
            if read is not None:
                values.append(read)
        if not attribute_id or include is None or not values:
            problems.append(
                Problem(
                    here,
                    "required",
                    "an `Attribute` needs `AttributeId`, "
                    "`IncludeInResult` and at least one `AttributeValue`",
                )
            )
            continue
        found.append(
            Attribute(
                category, attribute_id, tuple(values), child.get("Issuer"), include in ("true", "1")
            )
        )
    return found


def _typed(
    data_type: str | None, text: Any, path: str, problems: list[Problem]
) -> tuple[str, Any] | None:
    found = DATATYPES.get(data_type or "")
    if found is None:
        problems.append(
            Problem(
                path,
                "unknown_data_type",
                f"`{data_type}` is not a data type pbgm supports (XPath expressions are not)",
            )
        )
        return None
    if not isinstance(text, str):
        if text.__class__ is found.cls:
            return found.uri, text
        if found.cls is float and isinstance(text, int) and not isinstance(text, bool):
            return found.uri, float(text)
        problems.append(Problem(path, "invalid_value", f"a {found.name} is written as text"))
        return None
    try:
        return found.uri, found.parse(text)
    except ValueError as exc:
        problems.append(Problem(path, "invalid_value", str(exc)))
        return None


def _finish(
    groups: Mapping[str, list[list[Attribute]]],
    return_policy_ids: bool,
    combined: bool,
    problems: list[Problem],
) -> XacmlRequest:
    count = 1
    for options in groups.values():
        count *= len(options)
    if count > MAX_INDIVIDUAL:
        problems.append(
            Problem(
                "/Request",
                "too_many_requests",
                f"the repeated categories make {count} requests, at most {MAX_INDIVIDUAL}",
            )
        )
    values = sum(len(a.values) for options in groups.values() for o in options for a in o)
    if values > MAX_VALUES:
        problems.append(
            Problem("/Request", "request_too_complex", f"more than {MAX_VALUES} values")
        )
    if problems:
        raise XacmlError(problems)
    combos = itertools.product(*groups.values())
    individuals = tuple(Individual(tuple(itertools.chain.from_iterable(c))) for c in combos)
    return XacmlRequest(individuals, return_policy_ids, combined)


_MULTI = (
    "`MultiRequests` is a scheme of the Multiple Decision Profile pbgm does not support; "
    "repeat `Attributes` of a category instead"
)


# --- the JSON Profile ----------------------------------------------------------------------------

SHORTHANDS = {
    "AccessSubject": names.ACCESS_SUBJECT,
    "Resource": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
    "Action": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
    "Environment": "urn:oasis:names:tc:xacml:3.0:attribute-category:environment",
    "RecipientSubject": "urn:oasis:names:tc:xacml:1.0:subject-category:recipient-subject",
    "IntermediarySubject": "urn:oasis:names:tc:xacml:1.0:subject-category:intermediary-subject",
    "Codebase": "urn:oasis:names:tc:xacml:1.0:subject-category:codebase",
    "RequestingMachine": "urn:oasis:names:tc:xacml:1.0:subject-category:requesting-machine",
}
"""The category shorthands of the JSON Profile (§4.2.2)."""
JSON_TYPES = {t.name: t.uri for t in DATATYPES.values()}
"""The data type shorthands of the JSON Profile (§3.3.1): `string`, `dateTime`..."""


def read_json_request(document: Any) -> XacmlRequest:
    """A `{"Request": {...}}` document of the XACML JSON Profile 1.1."""
    problems: list[Problem] = []
    body = document.get("Request") if isinstance(document, Mapping) else None
    if not isinstance(body, Mapping):
        raise XacmlError([Problem("$", "invalid_request", 'expected `{"Request": {...}}`')])
    groups: dict[str, list[list[Attribute]]] = {}
    for key, value in body.items():
        path = f"$.Request.{key}"
        if key in SHORTHANDS or key == "Category":
            for i, item in enumerate(value if isinstance(value, list) else [value]):
                here = f"{path}[{i}]" if isinstance(value, list) else path
                category = SHORTHANDS.get(key) or (
                    item.get("CategoryId") if isinstance(item, Mapping) else None
                )
                if not isinstance(item, Mapping) or not isinstance(category, str):
                    problems.append(
                        Problem(
                            here,
                            "invalid_category",
                            "a category is an object (with a `CategoryId`)",
                        )
                    )
                    continue
                found = _json_attributes(item, category, here, problems)
                groups.setdefault(category, []).append(found)
        elif key == "MultiRequests":
            problems.append(Problem(path, "unsupported", _MULTI))
        elif key not in ("ReturnPolicyIdList", "CombinedDecision", "XPathVersion"):
            problems.append(Problem(path, "unsupported_member", f"`{key}` is not supported"))
    flags = [body.get(k, False) for k in ("ReturnPolicyIdList", "CombinedDecision")]
    for k, v in zip(("ReturnPolicyIdList", "CombinedDecision"), flags, strict=True):
        if not isinstance(v, bool):
            problems.append(Problem(f"$.Request.{k}", "invalid_flag", f"`{k}` is true or false"))
    return _finish(groups, flags[0] is True, flags[1] is True, problems)


def _json_attributes(
    item: Mapping[str, Any], category: str, path: str, problems: list[Problem]
) -> list[Attribute]:
    attributes = item.get("Attribute", [])
    if not isinstance(attributes, list):
        attributes = [attributes]
    found = []
    for i, attribute in enumerate(attributes):
        here = f"{path}.Attribute[{i}]"
        if not isinstance(attribute, Mapping) or not isinstance(attribute.get("AttributeId"), str):
            problems.append(
                Problem(here, "invalid_attribute", "an attribute needs an `AttributeId`")
            )
            continue
        if "Value" not in attribute:
            problems.append(Problem(here, "invalid_attribute", "an attribute needs a `Value`"))
            continue
        raw = attribute["Value"]
        items = raw if isinstance(raw, list) else [raw]
        data_type = attribute.get("DataType")
        if data_type is None:
            data_type = _infer(items, here, problems)
        data_type = JSON_TYPES.get(data_type, data_type)
        values = [_typed(data_type, v, f"{here}.Value", problems) for v in items]
        issuer = attribute.get("Issuer")
        found.append(
            Attribute(
                category,
                attribute["AttributeId"],
                tuple(v for v in values if v),
                issuer if isinstance(issuer, str) else None,
                attribute.get("IncludeInResult") is True,
            )
        )
    return found


def _infer(items: Iterable[Any], path: str, problems: list[Problem]) -> str:
    """The data type of JSON values without one (§3.3.2): string, boolean, integer or
    double, the same for every value of an array."""
    kinds = set()
    for value in items:
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("double")
        else:
            kinds.add("string")
    if kinds == {"integer", "double"}:
        return "double"
    if len(kinds) > 1:
        problems.append(Problem(path, "invalid_value", "the values of one attribute have one type"))
    return kinds.pop() if kinds else "string"
