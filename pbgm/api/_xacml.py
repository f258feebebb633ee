"""The XACML 3.0 JSON Profile (v1.1) for `POST /api/v1/decisions`: requests in, responses out.

Read: `{"Request": {...}}` with the shorthand categories `AccessSubject`,
`Resource`, `Action`, `Environment` (an object, or an array of objects for
several decisions), and/or the `Category` array with `CategoryId` URNs; each
category holds an `Attribute` array of `{"AttributeId", "Value", "DataType"?,
"IncludeInResult"?}`. Several decisions: repeated categories give every
combination (Multiple Decision Profile), or `MultiRequests.RequestReference`
names the categories (by their `Id`) of each request.

Attribute ids: the standard ids of subject, resource and action (`...:subject-id`,
`...:resource-id`, `...:action-id`) become pbgm's `id`, current time/date become
`current_time`/`current_date`; other `urn:oasis:names:tc:xacml:` ids become their
last segment with `-` read as `_` (`...:subject:role` -> `role`); any other id is
kept as written. A `dateTime` value becomes a date-time. Values given as an
array, or one id given twice, form a bag.

Read requests become `Request`s and attribute values are written back through
`pbgm.messages`, as pbgm's own JSON form is.

Bounds (each refusal a problem with a stable code, every check linear in the
body): at most `max_batch` requests (`batch_too_large`), counted before any
combination is built; a `RequestReference` names at most `MAX_REFERENCE_IDS`
distinct ids (`too_many_references`, `duplicate_reference`), an `Id` has at most
`MAX_ID_CHARS` characters (`invalid_id`); the requests of one call hold at most
`MAX_VALUES` attribute values in total, counted before they are built
(`request_too_complex`): a category named by 100 references counts 100 times, so
no reference can multiply the work of a small body.

Written: `{"Response": [{"Decision", "Status": {"StatusCode": {"Value"},
"StatusMessage"}, "Obligations", "AssociatedAdvice", "Category" (the attributes
asked with `IncludeInResult`), "PolicyIdentifierList"}]}`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.messages import json_value, request_from_json
from pbgm.model import Advice, Obligation, Request, Response
from pbgm.policy import parse_datetime

XACML = "urn:oasis:names:tc:xacml:"
CATEGORY_IDS = {
    "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject": "subject",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:resource": "resource",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:action": "action",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:environment": "environment",
}
SHORTHANDS = {
    "AccessSubject": "subject",
    "Resource": "resource",
    "Action": "action",
    "Environment": "environment",
}
URN_OF = {category: urn for urn, category in CATEGORY_IDS.items()}
ATTRIBUTE_IDS = {
    "urn:oasis:names:tc:xacml:1.0:subject:subject-id": "id",
    "urn:oasis:names:tc:xacml:1.0:resource:resource-id": "id",
    "urn:oasis:names:tc:xacml:1.0:action:action-id": "id",
    "urn:oasis:names:tc:xacml:1.0:environment:current-dateTime": "current_time",
    "urn:oasis:names:tc:xacml:1.0:environment:current-time": "current_time",
    "urn:oasis:names:tc:xacml:1.0:environment:current-date": "current_date",
}
DATETIME_TYPES = ("http://www.w3.org/2001/XMLSchema#dateTime", "dateTime")
STATUS_URNS = {
    "ok": "urn:oasis:names:tc:xacml:1.0:status:ok",
    "missing-attribute": "urn:oasis:names:tc:xacml:1.0:status:missing-attribute",
    "syntax-error": "urn:oasis:names:tc:xacml:1.0:status:syntax-error",
    "processing-error": "urn:oasis:names:tc:xacml:1.0:status:processing-error",
}
MAX_REFERENCE_IDS = 16
MAX_ID_CHARS = 200
MAX_VALUES = 100_000
REQUEST_KEYS = {
    *SHORTHANDS,
    "Category",
    "MultiRequests",
    "ReturnPolicyIdList",
    "CombinedDecision",
    "XPathVersion",
}


class XacmlCall:
    """The requests of one XACML JSON document and what each asks to see echoed."""

    def __init__(self, requests: list[Request], echoes: list[list[dict[str, Any]]]) -> None:
        self.requests = requests
        self.echoes = echoes


Part = tuple[str, Mapping[str, Any], str]  # (category, object, JSON path)


def parse_xacml(document: Mapping[str, Any], *, max_batch: int) -> XacmlCall:
    """The requests of a `{"Request": ...}` document; every problem listed at once."""
    problems: list[Problem] = []
    body = document.get("Request")
    if not isinstance(body, Mapping) or len(document) != 1:
        raise ValidationError([Problem("$", "invalid_request", 'expected `{"Request": {...}}`')])
    problems += [
        Problem(f"$.Request.{k}", "unsupported_member", f"`{k}` is not supported")
        for k in body
        if k not in REQUEST_KEYS
    ]
    parts = _parts(body, problems)
    combos = _combinations(body, parts, problems, max_batch)
    if not problems:
        _check_work(combos, problems)
    if problems:
        raise ValidationError(problems)
    requests, echoes = [], []
    for combo in combos:
        request, echo = _request(combo, problems)
        requests.append(request)
        echoes.append(echo)
    if problems:
        raise ValidationError(problems)
    return XacmlCall(requests, echoes)


def _parts(body: Mapping[str, Any], problems: list[Problem]) -> list[Part]:
    parts: list[Part] = []
    for key, category in SHORTHANDS.items():
        if key in body:
            parts += _objects(body[key], category, f"$.Request.{key}", problems)
    categories = body.get("Category", [])
    if not isinstance(categories, list):
        problems.append(Problem("$.Request.Category", "invalid_type", "`Category` is an array"))
        return parts
    for index, item in enumerate(categories):
        path = f"$.Request.Category[{index}]"
        urn = item.get("CategoryId") if isinstance(item, Mapping) else None
        if urn not in CATEGORY_IDS:
            problems.append(
                Problem(path, "unsupported_category", f"unsupported `CategoryId` `{urn}`")
            )
            continue
        parts += _objects(item, CATEGORY_IDS[urn], path, problems)
    return parts


def _objects(value: Any, category: str, path: str, problems: list[Problem]) -> list[Part]:
    items = value if isinstance(value, list) else [value]
    found = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]" if isinstance(value, list) else path
        if isinstance(item, Mapping):
            found.append((category, item, where))
        else:
            problems.append(Problem(where, "invalid_type", "a category is a JSON object"))
    return found


def _combinations(
    body: Mapping[str, Any], parts: list[Part], problems: list[Problem], max_batch: int
) -> list[list[Part]]:
    if "MultiRequests" in body:
        combos = _references(body["MultiRequests"], parts, problems, max_batch)
    else:
        by_category: dict[str, list[Part]] = {}
        for part in parts:
            by_category.setdefault(part[0], []).append(part)
        count = 1
        for options in by_category.values():
            count *= len(options)
        if count > max_batch:
            problems.append(_too_many(count, max_batch))
            return []
        combos = [list(combo) for combo in itertools.product(*by_category.values())]
    if len(combos) > max_batch:
        problems.append(_too_many(len(combos), max_batch))
    return combos


def _values_of(item: Mapping[str, Any]) -> int:
    """How many attribute values a category object adds to each request naming it."""
    attributes = item.get("Attribute", [])
    if not isinstance(attributes, list):
        return 1
    count = 0
    for attribute in attributes:
        value = attribute.get("Value") if isinstance(attribute, Mapping) else None
        count += len(value) + 1 if isinstance(value, list) else 1
    return count


def _check_work(combos: list[list[Part]], problems: list[Problem]) -> None:
    """Refuse a call whose requests would hold more than `MAX_VALUES` values in total."""
    sizes: dict[int, int] = {}
    total = 0
    for combo in combos:
        for _, item, _ in combo:
            key = id(item)
            if key not in sizes:
                sizes[key] = _values_of(item)
            total += sizes[key]
        if total > MAX_VALUES:
            message = f"the requests hold more than {MAX_VALUES} attribute values in total"
            problems.append(Problem("$.Request", "request_too_complex", message))
            return


def _too_many(count: int, max_batch: int) -> Problem:
    return Problem("$.Request", "batch_too_large", f"{count} requests, at most {max_batch}")


def _references(
    multi: Any, parts: list[Part], problems: list[Problem], max_batch: int
) -> list[list[Part]]:
    references = multi.get("RequestReference") if isinstance(multi, Mapping) else None
    if not isinstance(references, list) or not references:
        path = "$.Request.MultiRequests"
        problems.append(Problem(path, "invalid_type", "expected a `RequestReference` array"))
        return []
    if len(references) > max_batch:
        problems.append(_too_many(len(references), max_batch))
        return []
    by_id = _ids(parts, problems)
    combos = []
    for index, reference in enumerate(references):
        path = f"$.Request.MultiRequests.RequestReference[{index}]"
        combo = _reference(reference, by_id, path, problems)
        if combo is not None:
            combos.append(combo)
    return combos


def _ids(parts: list[Part], problems: list[Problem]) -> dict[str, Part]:
    by_id: dict[str, Part] = {}
    for part in parts:
        value = part[1].get("Id")
        if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS:
            by_id.setdefault(value, part)
        elif value is not None:
            message = f"an `Id` is a text of 1 to {MAX_ID_CHARS} characters"
            problems.append(Problem(f"{part[2]}.Id", "invalid_id", message))
    return by_id


def _reference(
    reference: Any, by_id: Mapping[str, Part], path: str, problems: list[Problem]
) -> list[Part] | None:
    ids = reference.get("ReferenceId") if isinstance(reference, Mapping) else None
    if not isinstance(ids, list) or not ids:
        problems.append(Problem(path, "unknown_reference", "every `ReferenceId` names an `Id`"))
        return None
    if len(ids) > MAX_REFERENCE_IDS:
        message = f"{len(ids)} ids, at most {MAX_REFERENCE_IDS}"
        problems.append(Problem(f"{path}.ReferenceId", "too_many_references", message))
        return None
    if not all(isinstance(i, str) and i in by_id for i in ids):
        problems.append(Problem(path, "unknown_reference", "every `ReferenceId` names an `Id`"))
        return None
    if len(set(ids)) != len(ids):
        message = "a `ReferenceId` names each `Id` once"
        problems.append(Problem(f"{path}.ReferenceId", "duplicate_reference", message))
        return None
    return [by_id[i] for i in ids]


def _request(
    parts: Sequence[Part], problems: list[Problem]
) -> tuple[Request, list[dict[str, Any]]]:
    bags: dict[str, dict[str, Any]] = {}
    echo: list[dict[str, Any]] = []
    for category, item, path in parts:
        attributes = item.get("Attribute", [])
        if not isinstance(attributes, list):
            problems.append(Problem(f"{path}.Attribute", "invalid_type", "`Attribute` is an array"))
            continue
        bag = bags.setdefault(category, {})
        shown = []
        for index, attribute in enumerate(attributes):
            read = _attribute(attribute, f"{path}.Attribute[{index}]", problems)
            if read is None:
                continue
            name, value = read
            if name in bag:
                _merge(bag, name, value)
            else:
                bag[name] = value
            if attribute.get("IncludeInResult") is True:
                shown.append({"AttributeId": attribute["AttributeId"], "Value": attribute["Value"]})
        if shown:
            echo.append({"CategoryId": URN_OF[category], "Attribute": shown})
    return request_from_json(bags), echo


def _attribute(attribute: Any, path: str, problems: list[Problem]) -> tuple[str, Any] | None:
    if not isinstance(attribute, Mapping) or not isinstance(attribute.get("AttributeId"), str):
        problems.append(Problem(path, "invalid_attribute", "an attribute needs an `AttributeId`"))
        return None
    if "Value" not in attribute:
        problems.append(Problem(path, "invalid_attribute", "an attribute needs a `Value`"))
        return None
    value = attribute["Value"]
    if attribute.get("DataType") in DATETIME_TYPES:
        try:
            value = (
                [parse_datetime(v, path) for v in value]
                if isinstance(value, list)
                else (parse_datetime(value, path))
            )
        except ValidationError as error:
            problems.extend(error.problems)
            return None
    return attribute_name(attribute["AttributeId"]), value


def attribute_name(attribute_id: str) -> str:
    """pbgm's name for a XACML attribute id (see the module docstring)."""
    if attribute_id in ATTRIBUTE_IDS:
        return ATTRIBUTE_IDS[attribute_id]
    if attribute_id.startswith(XACML):
        return attribute_id.rsplit(":", 1)[-1].replace("-", "_")
    return attribute_id


def _merge(bag: dict[str, Any], name: str, value: Any) -> None:
    """Add `value` to the bag `name` in place: linear however often the id repeats."""
    current = bag[name]
    if not isinstance(current, _Bag):
        current = bag[name] = _Bag(current if isinstance(current, list) else [current])
    current.extend(value if isinstance(value, list) else [value])


class _Bag(list[Any]):
    """A bag this reader built (and may extend), not a list given in the request."""


# --- responses -------------------------------------------------------------------


def _assignments(items: Sequence[Obligation | Advice]) -> list[dict[str, Any]]:
    return [
        {
            "Id": item.id,
            "AttributeAssignment": [
                {"AttributeId": name, "Value": json_value(value)}
                for name, value in item.attributes.items()
            ],
        }
        for item in items
    ]


def xacml_result(response: Response, echo: list[dict[str, Any]]) -> dict[str, Any]:
    """One `Result` of the XACML JSON response."""
    status: dict[str, Any] = {
        "StatusCode": {
            "Value": STATUS_URNS.get(response.status.code, STATUS_URNS["processing-error"])
        }
    }
    if response.status.message:
        status["StatusMessage"] = response.status.message
    result: dict[str, Any] = {
        "Decision": str(response.decision),
        "Status": status,
        "Obligations": _assignments(response.obligations),
        "AssociatedAdvice": _assignments(response.advice),
        "PolicyIdentifierList": {"PolicyIdReference": [{"Id": p} for p in response.policy_ids]},
    }
    if echo:
        result["Category"] = echo
    return result


def xacml_response(call: XacmlCall, responses: Sequence[Response]) -> dict[str, Any]:
    return {"Response": [xacml_result(r, e) for r, e in zip(responses, call.echoes, strict=True)]}
