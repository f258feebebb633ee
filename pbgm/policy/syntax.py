"""The `pbgm/v1` policy format: JSON documents to model objects and back.

A policy document::

    {"format": "pbgm/v1", "id": "...", "type": "operational_limits",
     "policy_group": "voltage-control", "asset_id": "bess-01",
     "valid_from": "2026-01-01T00:00:00Z", "valid_until": null,
     "target": {"resource": {"asset_id": "bess-01"}, "action": {"id": ["read", "write"]}},
     "rule_combining": "deny-overrides",
     "rules": [{"id": "r1", "effect": "Permit", "target": {...},
                "condition": {"apply": "at-least-one-member-of",
                              "args": [{"attr": "subject.groups"}, ["operators"]]},
                "obligations": [{"id": "audit", "attributes": {"level": "info"}}],
                "advice": []}],
     "obligations": [{"id": "notify", "fulfill_on": "Deny", "attributes": {}}],
     "content": {...}}

Expressions: `{"attr": "category.name", "may_be_absent": false}`, `{"apply": "fn",
"args": [...]}`, `{"value": X, "type": "datetime"}` or a bare JSON scalar or list
(a literal). Targets: `{category: {name: value-or-list-of-values}}`, a conjunction.

What XACML policies need (`pbgm.xacml`, docs/xacml.md), all optional: the expression
`{"designator": {"category", "id", "type", "must_be_present", "issuer"}}` (a XACML
attribute designator), typed literals of the XACML data types (`"type"` a data type
URI), functions by their XACML URNs; the target member `"any_of"` (XACML `<AnyOf>`s: a
list of lists (`<AllOf>`) of `{"match": fn, "value": literal, "designator": {...}}`);
obligation `"assignments"` (`[{"id", "value", "category", "issuer"}]`); and policy
sets: a document with `"policy_combining"` and `"policies"` (nested documents, each a
policy or again a set) instead of rules, and `"policy_version"`.

`parse_policy` assumes a structurally sound document and raises `ValidationError`
at the first structural fault; `pbgm.policy.validate` is what lists every problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pbgm.errors import Problem, ValidationError
from pbgm.model import (
    CATEGORIES,
    AnyOf,
    Apply,
    AssignmentExpression,
    AttributeRef,
    Effect,
    Expr,
    Literal,
    Match,
    Matcher,
    ObligationExpression,
    Policy,
    PolicySet,
    Rule,
    Target,
)

FORMAT = "pbgm/v1"


def _fail(path: str, code: str, message: str) -> ValidationError:
    return ValidationError([Problem(path, code, message)])


_LEAVES = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Deep-freeze JSON data: dicts become read-only mappings, lists tuples."""
    kind = type(value)
    if kind in _LEAVES:  # the common cases first, without the ABC checks below
        return value
    if kind is dict or isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of `freeze`: plain dicts and lists, ready for `json.dumps`."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(thaw(v) for v in value)
    return value


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a JSON value (object keys included), for checks that refuse a
    character anywhere in a document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from json_strings(key)
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


# --- datetimes --------------------------------------------------------------


LEAP_SECOND = re.compile(r"[T ]\d{2}:?\d{2}:?60(?:[.,]\d+)?(?:Z|[+-]\d|$)", re.IGNORECASE)
"""A time whose second is 60: valid ISO 8601 (a leap second), but no `datetime` holds it."""


def parse_datetime(text: Any, path: str = "$") -> datetime:
    """ISO 8601 with a timezone (`Z` or an offset). Naive times and leap seconds are refused."""
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            if LEAP_SECOND.search(text):
                raise _fail(
                    path,
                    "invalid_datetime",
                    f"`{text}` is a leap second; leap seconds are not supported, "
                    "give the second before or after it",
                ) from None
            raise _fail(
                path, "invalid_datetime", f"`{text}` is not an ISO 8601 date-time"
            ) from None
    else:
        raise _fail(path, "invalid_datetime", "expected an ISO 8601 date-time string")
    if moment.tzinfo is None:
        raise _fail(path, "naive_datetime", f"`{text}` has no timezone; add `Z` or an offset")
    return moment


def format_datetime(moment: datetime) -> str:
    """UTC, second precision unless there are microseconds, `Z` suffix."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


# --- expressions ------------------------------------------------------------


def parse_expression(data: Any, path: str = "$") -> Expr:
    if isinstance(data, Mapping):
        if "attr" in data:
            return _parse_attr(data, path)
        if "designator" in data:
            return parse_designator(data["designator"], f"{path}.designator")
        if "apply" in data:
            args = data.get("args", [])
            if not isinstance(args, list | tuple):
                raise _fail(f"{path}.args", "invalid_expression", "`args` must be a list")
            return Apply(
                str(data["apply"]),
                tuple(parse_expression(a, f"{path}.args[{i}]") for i, a in enumerate(args)),
            )
        if "value" in data:
            return Literal(freeze(data["value"]), data.get("type"))
        raise _fail(path, "invalid_expression", "expected `attr`, `apply` or `value`")
    return Literal(freeze(data))


def _parse_attr(data: Mapping[str, Any], path: str) -> AttributeRef:
    ref = data["attr"]
    category, _, name = str(ref).partition(".")
    if category not in CATEGORIES or not name:
        raise _fail(
            f"{path}.attr",
            "invalid_attribute",
            f"`{ref}` must be `<category>.<name>` with a category among {', '.join(CATEGORIES)}",
        )
    return AttributeRef(category, name, bool(data.get("may_be_absent", False)))


def parse_designator(data: Any, path: str) -> AttributeRef:
    """`{"category", "id", "type", "must_be_present", "issuer"}`: a XACML designator."""
    if not isinstance(data, Mapping):
        raise _fail(path, "invalid_expression", "a designator is an object")
    fields = [data.get(k) for k in ("category", "id", "type")]
    if not all(isinstance(f, str) and f for f in fields):
        raise _fail(path, "invalid_attribute", "a designator names `category`, `id` and `type`")
    issuer = data.get("issuer")
    return AttributeRef(
        str(fields[0]),
        str(fields[1]),
        not bool(data.get("must_be_present", False)),
        str(fields[2]),
        None if issuer is None else str(issuer),
    )


def dump_designator(ref: AttributeRef) -> dict[str, Any]:
    out: dict[str, Any] = {"category": ref.category, "id": ref.name, "type": ref.data_type}
    out["must_be_present"] = not ref.may_be_absent
    if ref.issuer is not None:
        out["issuer"] = ref.issuer
    return out


def dump_expression(expr: Expr) -> Any:
    if isinstance(expr, AttributeRef) and expr.data_type is not None:
        return {"designator": dump_designator(expr)}
    if isinstance(expr, AttributeRef):
        out: dict[str, Any] = {"attr": expr.path}
        if expr.may_be_absent:
            out["may_be_absent"] = True
        return out
    if isinstance(expr, Apply):
        return {"apply": expr.function, "args": [dump_expression(a) for a in expr.args]}
    value = thaw(expr.value)
    if expr.type is not None or isinstance(value, dict):
        out = {"value": value}
        if expr.type is not None:
            out["type"] = expr.type
        return out
    return value


# --- targets ----------------------------------------------------------------


def parse_target(data: Any, path: str = "$.target") -> Target:
    if data is None:
        return Target()
    if not isinstance(data, Mapping):
        raise _fail(path, "invalid_target", "a target maps categories to `{name: values}`")
    matches = []
    any_of = parse_any_of(data.get("any_of"), f"{path}.any_of")
    for category in sorted(data):
        if category == "any_of":
            continue
        attrs = data[category]
        if category not in CATEGORIES:
            raise _fail(f"{path}.{category}", "invalid_target", f"unknown category `{category}`")
        if not isinstance(attrs, Mapping):
            raise _fail(f"{path}.{category}", "invalid_target", "expected `{name: values}`")
        for name in sorted(attrs):
            raw = attrs[name]
            values = raw if isinstance(raw, list | tuple) else [raw]
            matches.append(Match(category, name, frozenset(values)))
    return Target(tuple(matches), any_of)


def parse_any_of(data: Any, path: str) -> tuple[AnyOf, ...]:
    """XACML `<AnyOf>`s: a list (all must hold) of lists (one must) of lists (all must) of
    `{"match", "value", "designator"}`."""
    if data is None:
        return ()
    if not isinstance(data, list | tuple):
        raise _fail(path, "invalid_target", "`any_of` is a list of lists of lists of matches")
    out = []
    for i, alternatives in enumerate(data):
        if not isinstance(alternatives, list | tuple) or not alternatives:
            raise _fail(f"{path}[{i}]", "invalid_target", "an `<AnyOf>` is a list of `<AllOf>`s")
        all_ofs = []
        for j, all_of in enumerate(alternatives):
            if not isinstance(all_of, list | tuple) or not all_of:
                raise _fail(f"{path}[{i}][{j}]", "invalid_target", "an `<AllOf>` lists matches")
            all_ofs.append(
                tuple(_matcher(m, f"{path}[{i}][{j}][{k}]") for k, m in enumerate(all_of))
            )
        out.append(tuple(all_ofs))
    return tuple(out)


def _matcher(data: Any, path: str) -> Matcher:
    if not isinstance(data, Mapping) or not isinstance(data.get("match"), str):
        raise _fail(path, "invalid_target", "a match is `{match, value, designator}`")
    return Matcher(
        data["match"],
        parse_expression(data.get("value"), f"{path}.value"),
        parse_designator(data.get("designator"), f"{path}.designator"),
    )


def dump_target(target: Target) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for match in target.matches:
        values = sorted(match.values, key=repr)
        out.setdefault(match.category, {})[match.name] = values[0] if len(values) == 1 else values
    if target.any_of:
        out["any_of"] = [
            [
                [
                    {"match": m.function, "value": dump_expression(m.value),
                     "designator": dump_designator(m.attribute)}
                    for m in all_of
                ]
                for all_of in alternatives
            ]
            for alternatives in target.any_of
        ]  # fmt: skip
    return out


# --- obligations, rules, policies --------------------------------------------


def _parse_obligations(
    items: Any, path: str, default_effect: Effect | None
) -> tuple[ObligationExpression, ...]:
    out = []
    for i, item in enumerate(items or ()):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping) or "id" not in item:
            raise _fail(p, "invalid_obligation", "an obligation needs an `id`")
        effect = item.get("fulfill_on")
        if effect is None and default_effect is None:
            raise _fail(f"{p}.fulfill_on", "invalid_obligation", "say `Permit` or `Deny`")
        attrs = item.get("attributes") or {}
        out.append(
            ObligationExpression(
                id=str(item["id"]),
                fulfill_on=Effect(effect) if effect else default_effect,  # type: ignore[arg-type]
                attributes=MappingProxyType(
                    {k: parse_expression(v, f"{p}.attributes.{k}") for k, v in attrs.items()}
                ),
                assignments=tuple(
                    _assignment(a, f"{p}.assignments[{j}]")
                    for j, a in enumerate(item.get("assignments") or ())
                ),
            )
        )
    return tuple(out)


def _assignment(data: Any, path: str) -> AssignmentExpression:
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or "value" not in data:
        raise _fail(path, "invalid_obligation", "an assignment is `{id, value, category, issuer}`")
    category, issuer = data.get("category"), data.get("issuer")
    return AssignmentExpression(
        data["id"],
        parse_expression(data["value"], f"{path}.value"),
        None if category is None else str(category),
        None if issuer is None else str(issuer),
    )


def _dump_obligations(items: Sequence[ObligationExpression], with_effect: bool) -> list[Any]:
    out = []
    for o in items:
        d: dict[str, Any] = {"id": o.id}
        if with_effect:
            d["fulfill_on"] = o.fulfill_on.value
        d["attributes"] = {k: dump_expression(v) for k, v in sorted(o.attributes.items())}
        if o.assignments:
            d["assignments"] = [_dump_assignment(a) for a in o.assignments]
        out.append(d)
    return out


def _dump_assignment(assignment: AssignmentExpression) -> dict[str, Any]:
    out: dict[str, Any] = {"id": assignment.attribute_id}
    out["value"] = dump_expression(assignment.expression)
    if assignment.category is not None:
        out["category"] = assignment.category
    if assignment.issuer is not None:
        out["issuer"] = assignment.issuer
    return out


def parse_rule(data: Mapping[str, Any], path: str) -> Rule:
    try:
        effect = Effect(str(data.get("effect")))
    except ValueError:
        raise _fail(
            f"{path}.effect", "invalid_effect", "effect must be `Permit` or `Deny`"
        ) from None
    condition = data.get("condition")
    return Rule(
        id=str(data.get("id", "")),
        effect=effect,
        target=parse_target(data.get("target"), f"{path}.target"),
        condition=None if condition is None else parse_expression(condition, f"{path}.condition"),
        obligations=_parse_obligations(data.get("obligations"), f"{path}.obligations", effect),
        advice=_parse_obligations(data.get("advice"), f"{path}.advice", effect),
        description=str(data.get("description", "")),
    )


def _optional_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return None if value is None else parse_datetime(value, f"$.{key}")


def parse_policy(data: Mapping[str, Any], *, version: int = 1) -> Policy:
    """Build a `Policy` from a `pbgm/v1` document (already validated)."""
    return _parse_node(data, "$", version, str(data["type"]), str(data["policy_group"]))


def _parse_node(
    data: Mapping[str, Any], path: str, version: int, policy_type: str, group: str
) -> Policy:
    """A policy document, or a nested one (of a policy set) with the type and group of its
    top."""
    rules = data.get("rules") or []
    combining = data.get("policy_combining")
    return Policy(
        id=str(data["id"]),
        type=policy_type,
        policy_group=group,
        rules=tuple(parse_rule(r, f"{path}.rules[{i}]") for i, r in enumerate(rules)),
        rule_combining=str(data.get("rule_combining", "deny-overrides")),
        target=parse_target(data.get("target"), f"{path}.target"),
        asset_id=data.get("asset_id"),
        description=str(data.get("description", "")),
        valid_from=_optional_datetime(data, "valid_from"),
        valid_until=_optional_datetime(data, "valid_until"),
        obligations=_parse_obligations(data.get("obligations"), f"{path}.obligations", None),
        advice=_parse_obligations(data.get("advice"), f"{path}.advice", None),
        content=freeze(data.get("content") or {}),
        version=version,
        policies=tuple(
            _parse_node(p, f"{path}.policies[{i}]", version, policy_type, group)
            for i, p in enumerate(data.get("policies") or ())
        ),
        policy_combining=None if combining is None else str(combining),
        policy_version=str(data.get("policy_version", "")),
    )


def dump_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "effect": rule.effect.value}
    if rule.description:
        out["description"] = rule.description
    if not rule.target.is_empty:
        out["target"] = dump_target(rule.target)
    if rule.condition is not None:
        out["condition"] = dump_expression(rule.condition)
    if rule.obligations:
        out["obligations"] = _dump_obligations(rule.obligations, with_effect=False)
    if rule.advice:
        out["advice"] = _dump_obligations(rule.advice, with_effect=False)
    return out


def dump_policy(policy: Policy) -> dict[str, Any]:
    """The canonical document of a policy (key order fixed, empty parts omitted)."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "id": policy.id,
        "type": policy.type,
        "policy_group": policy.policy_group,
    }
    return _dump_node(policy, out, top=True)


def _dump_node(policy: Policy, out: dict[str, Any], *, top: bool) -> dict[str, Any]:
    if policy.asset_id is not None and top:
        out["asset_id"] = policy.asset_id
    if policy.description:
        out["description"] = policy.description
    if policy.valid_from is not None:
        out["valid_from"] = format_datetime(policy.valid_from)
    if policy.valid_until is not None:
        out["valid_until"] = format_datetime(policy.valid_until)
    if policy.policy_version:
        out["policy_version"] = policy.policy_version
    if not policy.target.is_empty:
        out["target"] = dump_target(policy.target)
    if policy.is_set:
        out["policy_combining"] = policy.policy_combining
        out["policies"] = [_dump_node(p, {"id": p.id}, top=False) for p in policy.policies]
    else:
        out["rule_combining"] = policy.rule_combining
        out["rules"] = [dump_rule(r) for r in policy.rules]
    if policy.obligations:
        out["obligations"] = _dump_obligations(policy.obligations, with_effect=True)
    if policy.advice:
        out["advice"] = _dump_obligations(policy.advice, with_effect=True)
    if top:
        out["content"] = thaw(policy.content)
    return out


def parse_policy_set(
    data: Mapping[str, Any], policies: Sequence[Policy], *, revision: int = 0
) -> PolicySet:
    """A policy set (a policy group) from its document and its member policies."""
    return PolicySet(
        id=str(data["id"]),
        policies=tuple(policies),
        policy_combining=str(data.get("policy_combining", "deny-overrides")),
        target=parse_target(data.get("target")),
        obligations=_parse_obligations(data.get("obligations"), "$.obligations", None),
        advice=_parse_obligations(data.get("advice"), "$.advice", None),
        revision=revision,
        description=str(data.get("description", "")),
    )


def policy_set_from_documents(
    set_document: Mapping[str, Any], policy_documents: Sequence[Mapping[str, Any]]
) -> PolicySet:
    """Convenience for tests and the CLI: `{"id", "policy_combining"}` + policy docs."""
    return parse_policy_set(set_document, [parse_policy(d) for d in policy_documents])
