"""Validation of `pbgm/v1` policy documents and policy groups, listing every problem.

`problems_of(doc)` never raises and returns every `Problem(path, code, message)`
found, located by a JSON path such as `$.rules[2].condition.args[0]` (keys that
are not plain identifiers are written `$.content.nodes["node 4"]`), sorted by
path. `validate_policy_document(doc)` returns the parsed `Policy` or raises
`ValidationError` carrying all of them. Checks run independently, so one
mistake does not hide another.

Ids (policy, policy group, asset, rule and obligation ids) are 1-200 characters
matching `ID_PATTERN`: a letter or digit, then letters, digits and `._:@/-`. No
spaces, no control characters, nothing that needs escaping in a URL path
segment other than `/` and `:`.

Codes (stable; the REST API and the CLI show them):

| code                            | meaning                                                  |
|---------------------------------|----------------------------------------------------------|
| `required`                      | a required member is missing (the path names it)         |
| `type`                          | wrong JSON type                                          |
| `enum`                          | a value outside a fixed list (e.g. an effect)            |
| `pattern`, `invalid_format`     | a string of the wrong shape                              |
| `invalid_length`, `invalid_size`| a string, list or object too short or too long           |
| `out_of_range`, `not_multiple`  | a number outside its bounds                              |
| `duplicate_item`                | a list whose items must be unique repeats one            |
| `additional_property`           | a member the schema does not know (typo?)                |
| `schema_violation`              | any other JSON Schema rule                               |
| `invalid_id`                    | an id breaking the id syntax above                       |
| `unknown_category`              | a target category other than subject/resource/action/env |
| `invalid_attribute`             | a bad attribute name or `attr` reference                 |
| `unsupported_format`            | `format` present and not `pbgm/v1`                       |
| `unknown_policy_type`           | `type` not in `pbgm.model.POLICY_TYPES`                  |
| `content_schema_missing`        | no `schemas/<type>.json` installed (fails closed)        |
| `unknown_combining_algorithm`   | not in `pbgm.model.COMBINING_ALGORITHMS`                 |
| `duplicate_rule_id`             | two rules of one policy share an id                      |
| `duplicate_policy_id`           | two policies of one policy set share an id and version   |
| `invalid_policy_set`            | a policy set lacking `policy_combining`, or with rules   |
| `obligation_effect_mismatch`    | a rule obligation for the other effect (never returned)  |
| `invalid_datetime`, `naive_datetime` | `valid_from`/`valid_until` unreadable or without zone |
| `invalid_validity_window`       | `valid_until` not after `valid_from`                     |
| `invalid_expression`, `invalid_literal`, `expression_too_deep` | malformed conditions |
| codes of `pbgm.decision.check_condition` | unknown function, arity, bad literals, not boolean |
| `asset_id_mismatch`             | `content.asset_id` differs from the policy's `asset_id`  |
| `min_greater_than_max`, `inconsistent_limits`, `unknown_reference` | content cross-checks |
| `missing_endpoint`, `unknown_placeholder`, `inconsistent_format` | `data_access` checks |
| `duplicate_signal`, `rate_limit_too_low`, `invalid_secret_reference` | (data_access) |
| `check_failed`                  | a checker failed; the policy is refused (fail closed)    |

Content cross-checks that JSON Schema cannot express (min <= max, references
between parts of the content) are registered per policy type with
`register_content_check`; they run on content that already passed its schema.
Likewise the function checks of a condition (`pbgm.decision.conditions.check_condition`)
run once its shape is sound, so a malformed expression shows its shape problems
first. Anything unexpected while checking (e.g. a document built in Python with
a cycle) is reported as `check_failed`, never raised. Loading, caching and error
conversion of the JSON Schemas live in `pbgm.policy.schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from pbgm.decision import check_condition, check_expression
from pbgm.decision.targets import check_any_of
from pbgm.errors import Problem, ValidationError
from pbgm.model import CATEGORIES, COMBINING_ALGORITHMS, POLICY_TYPES, Expr, Policy, PolicyGroup
from pbgm.policy.data_access import check_data_access
from pbgm.policy.schema import (
    TABLE_CHECKED_TYPES,
    choices,
    content_validator,
    envelope_validator,
    group_validator,
    member,
    ordered,
    schema_problems,
    show,
    table_check,
)
from pbgm.policy.syntax import (
    FORMAT,
    parse_any_of,
    parse_datetime,
    parse_expression,
    parse_policy,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$"
MAX_ID_LENGTH = 200
MAX_EXPRESSION_DEPTH = 32

ContentCheck = Callable[[Mapping[str, Any], str], list[Problem]]
_CONTENT_CHECKS: dict[str, list[ContentCheck]] = {}


def validate_policy_document(doc: Any) -> Policy:
    """The `Policy` of a valid document; otherwise `ValidationError` with every problem."""
    problems = problems_of(doc)
    if problems:
        raise ValidationError(problems)
    return parse_policy(doc)


def problems_of(doc: Any) -> list[Problem]:
    """Every problem of a policy document (empty when valid). Never raises."""
    return ordered(_guarded(lambda: _policy_problems(doc), "$"))


def _policy_problems(doc: Any) -> list[Problem]:
    problems = schema_problems(envelope_validator(), doc, "$")
    if isinstance(doc, Mapping):
        if "format" in doc and doc["format"] != FORMAT:
            message = f"format `{show(doc['format'])}` is not supported; use `{FORMAT}`"
            problems.append(Problem("$.format", "unsupported_format", message))
        problems += _content_problems(doc)
        problems += _validity_problems(doc)
        problems += _node_problems(doc, "$")
    return problems


def _node_problems(doc: Mapping[str, Any], path: str) -> list[Problem]:
    """The checks of a policy, or of a policy set and (recursively) its policies."""
    problems: list[Problem] = []
    problems += _target_problems(doc.get("target"), f"{path}.target")
    problems += _obligations_problems(doc.get("obligations"), f"{path}.obligations", None)
    problems += _obligations_problems(doc.get("advice"), f"{path}.advice", None)
    if "policies" not in doc and "policy_combining" not in doc:
        problems += _combining_problems(doc, "rule_combining", path)
        return problems + _rules_problems(doc.get("rules"), path)
    if "rules" in doc or "rule_combining" in doc or "policy_combining" not in doc:
        message = "a policy set has `policy_combining` and `policies`, and no rules"
        return [*problems, Problem(path, "invalid_policy_set", message)]
    problems += _combining_problems(doc, "policy_combining", path)
    children = doc.get("policies")
    if isinstance(children, list):
        seen: dict[tuple[Any, Any], int] = {}
        for i, child in enumerate(children):
            here = f"{path}.policies[{i}]"
            if not isinstance(child, Mapping):
                continue
            key = (child.get("id"), child.get("policy_version", ""))
            if key in seen:
                message = (
                    f"`{key[0]}` is already in the policy set at `{path}.policies[{seen[key]}]`"
                )
                problems.append(Problem(f"{here}.id", "duplicate_policy_id", message))
            seen.setdefault(key, i)
            problems += _node_problems(child, here)
    return problems


def _target_problems(target: Any, path: str) -> list[Problem]:
    """The XACML part of a target (`any_of`): its matches' functions and types."""
    if not isinstance(target, Mapping) or not isinstance(target.get("any_of"), list):
        return []
    try:
        any_of = parse_any_of(target["any_of"], f"{path}.any_of")
    except ValidationError as exc:
        return list(exc.problems)
    return _guarded(lambda: check_any_of(any_of, f"{path}.any_of"), path)


def validate_policy_set_document(doc: Any) -> PolicyGroup:
    """A policy group `{id, policy_combining, description}`, or `ValidationError`."""
    problems = policy_set_problems(doc)
    if problems:
        raise ValidationError(problems)
    return PolicyGroup(
        id=doc["id"],
        policy_combining=doc.get("policy_combining", "deny-overrides"),
        description=doc.get("description", ""),
    )


def policy_set_problems(doc: Any) -> list[Problem]:
    """Every problem of a policy group document. Never raises."""

    def collect() -> list[Problem]:
        problems = schema_problems(group_validator(), doc, "$")
        if isinstance(doc, Mapping):
            problems += _combining_problems(doc, "policy_combining")
        return problems

    return ordered(_guarded(collect, "$"))


def register_content_check(policy_type: str, check: ContentCheck) -> ContentCheck:
    """Add a cross-field check `check(content, "$.content") -> [Problem]` for a type.

    It runs only on content that passed the type's JSON Schema, after the
    checks registered before it.
    """
    _CONTENT_CHECKS.setdefault(policy_type, []).append(check)
    return check


def content_schema(policy_type: str) -> dict[str, Any] | None:
    """The JSON Schema of the `content` of a policy type (None if not installed)."""
    validator = content_validator(policy_type)
    return None if validator is None else dict(validator.schema)


# --- checks beyond the envelope schema ----------------------------------------


def _combining_problems(doc: Mapping[str, Any], key: str, path: str = "$") -> list[Problem]:
    value = doc.get(key)
    if not isinstance(value, str) or value in COMBINING_ALGORITHMS:
        return []
    message = (
        f"unknown combining algorithm `{show(value)}`; use one of {choices(COMBINING_ALGORITHMS)}"
    )
    return [Problem(f"{path}.{key}", "unknown_combining_algorithm", message)]


def _content_problems(doc: Mapping[str, Any]) -> list[Problem]:
    policy_type, content = doc.get("type"), doc.get("content")
    if not isinstance(policy_type, str):
        return []
    if policy_type not in POLICY_TYPES:
        message = f"unknown policy type `{show(policy_type)}`; use one of {choices(POLICY_TYPES)}"
        return [Problem("$.type", "unknown_policy_type", message)]
    if not isinstance(content, dict):
        return []
    validator = content_validator(policy_type)
    if validator is None:
        message = f"no content schema is installed for policy type `{policy_type}`"
        return [Problem("$.content", "content_schema_missing", message)]
    problems = schema_problems(validator, content, "$.content")
    problems += _asset_problems(doc.get("asset_id"), content.get("asset_id"))
    if not problems:
        for check in _CONTENT_CHECKS.get(policy_type, ()):
            problems += _guarded(partial(check, content, "$.content"), "$.content")
    return problems


def _asset_problems(envelope: Any, inner: Any) -> list[Problem]:
    if not (isinstance(envelope, str) and isinstance(inner, str)) or envelope == inner:
        return []
    message = f"`{show(inner)}` differs from the policy's asset id `{show(envelope)}`"
    return [Problem("$.content.asset_id", "asset_id_mismatch", message)]


def _guarded(run: Callable[[], Iterable[Problem]], path: str) -> list[Problem]:
    """Run a checker written elsewhere; if it fails, refuse the policy rather than crash."""
    try:
        return list(run())
    except Exception:  # fail closed: a broken checker must not let a policy through
        return [Problem(path, "check_failed", "this part could not be checked")]


def _validity_problems(doc: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    moments = {}
    for key in ("valid_from", "valid_until"):
        if isinstance(doc.get(key), str):
            try:
                moments[key] = parse_datetime(doc[key], f"$.{key}")
            except ValidationError as exc:
                problems += exc.problems
    if len(moments) == 2 and moments["valid_from"] >= moments["valid_until"]:
        message = "`valid_until` must be later than `valid_from`"
        problems.append(Problem("$.valid_until", "invalid_validity_window", message))
    return problems


def _rules_problems(rules: Any, base: str = "$") -> list[Problem]:
    if not isinstance(rules, list):
        return []
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    for i, rule in enumerate(rules):
        path = f"{base}.rules[{i}]"
        if not isinstance(rule, Mapping):
            continue
        rule_id = rule.get("id")
        if isinstance(rule_id, str) and rule_id in first_use:
            message = f"rule id `{rule_id}` is already used by `{base}.rules[{first_use[rule_id]}]`"
            problems.append(Problem(f"{path}.id", "duplicate_rule_id", message))
        elif isinstance(rule_id, str):
            first_use[rule_id] = i
        if "condition" in rule:
            condition = rule["condition"]
            problems += _expression_problems(condition, f"{path}.condition", check_condition)
        problems += _target_problems(rule.get("target"), f"{path}.target")
        effect = rule.get("effect") if rule.get("effect") in ("Permit", "Deny") else None
        for kind in ("obligations", "advice"):
            problems += _obligations_problems(rule.get(kind), f"{path}.{kind}", effect)
    return problems


def _obligations_problems(items: Any, path: str, rule_effect: str | None) -> list[Problem]:
    if not isinstance(items, list):
        return []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            continue
        fulfill_on = item.get("fulfill_on")
        if rule_effect and fulfill_on is not None and fulfill_on != rule_effect:
            message = f"a rule with effect `{rule_effect}` only returns `{rule_effect}` obligations"
            problems.append(Problem(f"{here}.fulfill_on", "obligation_effect_mismatch", message))
        attributes = item.get("attributes")
        if isinstance(attributes, Mapping):
            for name, value in attributes.items():
                target = member(f"{here}.attributes", str(name))
                problems += _expression_problems(value, target)
        assignments = item.get("assignments")
        for j, assignment in enumerate(assignments if isinstance(assignments, list) else ()):
            if isinstance(assignment, Mapping) and "value" in assignment:
                where = f"{here}.assignments[{j}].value"
                problems += _expression_problems(assignment["value"], where)
    return problems


# --- expressions --------------------------------------------------------------

_EXPRESSION_KEYS = {
    "attr": ("attr", "may_be_absent"),
    "apply": ("apply", "args"),
    "value": ("value", "type"),
    "designator": ("designator",),
}


def _expression_problems(
    data: Any, path: str, check: Callable[[Expr, str], list[Problem]] = check_expression
) -> list[Problem]:
    """Shape problems of the whole tree first; then `check` from `pbgm.decision.conditions`."""
    problems = _expression_shape(data, path, 1)
    if problems:
        return problems
    try:
        expr = parse_expression(data, path)
    except ValidationError as exc:
        return list(exc.problems)
    return _guarded(lambda: check(expr, path), path)


def _expression_shape(data: Any, path: str, depth: int) -> list[Problem]:
    if depth > MAX_EXPRESSION_DEPTH:
        message = f"expressions may nest at most {MAX_EXPRESSION_DEPTH} levels"
        return [Problem(path, "expression_too_deep", message)]
    if isinstance(data, Mapping):
        return _object_expression(data, path, depth)
    if isinstance(data, list):
        return [
            Problem(member(path, i), "invalid_literal", _LIST_LITERAL)
            for i, item in enumerate(data)
            if isinstance(item, Mapping | list)
        ]
    return []


_LIST_LITERAL = "a list literal holds strings, numbers, booleans or null; build values with `apply`"


def _object_expression(data: Mapping[str, Any], path: str, depth: int) -> list[Problem]:
    kinds = [k for k in _EXPRESSION_KEYS if k in data]
    if len(kinds) != 1:
        message = (
            "an expression object needs exactly one of `attr`, `apply`, `value` or `designator`"
        )
        return [Problem(path, "invalid_expression", message)]
    kind = kinds[0]
    problems = [
        Problem(member(path, str(k)), "additional_property", f"unknown property `{k}`")
        for k in data
        if k not in _EXPRESSION_KEYS[kind]
    ]
    if kind == "designator":
        problems += _designator_problems(data["designator"], f"{path}.designator")
    elif kind == "attr":
        problems += _attr_problems(data, path)
    elif kind == "apply":
        problems += _apply_problems(data, path, depth)
    elif "type" in data and not isinstance(data["type"], str):
        problems.append(Problem(f"{path}.type", "type", "a literal type is a string"))
    return problems


def _attr_problems(data: Mapping[str, Any], path: str) -> list[Problem]:
    problems = []
    ref = data["attr"]
    category, _, name = ref.partition(".") if isinstance(ref, str) else ("", "", "")
    if category not in CATEGORIES or not name:
        message = (
            f"`{show(ref)}` must be `<category>.<name>`, category one of {choices(CATEGORIES)}"
        )
        problems.append(Problem(f"{path}.attr", "invalid_attribute", message))
    if not isinstance(data.get("may_be_absent", False), bool):
        problems.append(Problem(f"{path}.may_be_absent", "type", "expected boolean"))
    return problems


def _designator_problems(data: Any, path: str) -> list[Problem]:
    if not isinstance(data, Mapping):
        return [Problem(path, "invalid_expression", "a designator is an object")]
    problems = [
        Problem(member(path, str(k)), "additional_property", f"unknown property `{k}`")
        for k in data
        if k not in ("category", "id", "type", "must_be_present", "issuer")
    ]
    for key in ("category", "id", "type"):
        value = data.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= 1000:
            message = f"`{key}` is a text of 1 to 1000 characters"
            problems.append(Problem(member(path, key), "invalid_attribute", message))
    if not isinstance(data.get("must_be_present", False), bool):
        problems.append(Problem(f"{path}.must_be_present", "type", "expected boolean"))
    if not isinstance(data.get("issuer", ""), str):
        problems.append(Problem(f"{path}.issuer", "type", "expected a string"))
    return problems


def _apply_problems(data: Mapping[str, Any], path: str, depth: int) -> list[Problem]:
    problems = []
    if not isinstance(data["apply"], str) or not data["apply"]:
        message = "`apply` names a function"
        problems.append(Problem(f"{path}.apply", "invalid_expression", message))
    args = data.get("args", [])
    if not isinstance(args, list):
        return [*problems, Problem(f"{path}.args", "invalid_expression", "`args` must be a list")]
    for i, arg in enumerate(args):
        problems += _expression_shape(arg, f"{path}.args[{i}]", depth + 1)
    return problems


for _policy_type in TABLE_CHECKED_TYPES:
    register_content_check(_policy_type, table_check(_policy_type))
register_content_check("data_access", check_data_access)
