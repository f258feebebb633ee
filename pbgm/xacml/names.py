"""XACML 3.0 identifiers and how pbgm names them.

- Categories: the four of pbgm are XACML's `access-subject`, `resource`, `action` and
  `environment`; any other category keeps its XACML id (`recipient-subject`, a custom
  one) and lives in an `ExtendedRequest`'s `others`.
- Attribute ids are kept as written, but for four aliases that make pbgm's own names
  XACML's standard ones: `subject.id` is `...:subject:subject-id`, `resource.id`
  `...:resource:resource-id`, `action.id` `...:action:action-id` and
  `environment.current_time` `...:environment:current-dateTime` (so pbgm's decision
  point, which sets `current_time`, also gives a XACML policy its current dateTime).
- Combining algorithms: the XACML ids of each pbgm algorithm, rule and policy level, 3.0
  and the legacy 1.0/1.1 ones.
"""

from __future__ import annotations

NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
XACML = "urn:oasis:names:tc:xacml:"
XS = "http://www.w3.org/2001/XMLSchema#"
STRING = XS + "string"
PBGM = "urn:pbgm:xacml:"

ACCESS_SUBJECT = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"
CATEGORY_IDS = {
    ACCESS_SUBJECT: "subject",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:resource": "resource",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:action": "action",
    "urn:oasis:names:tc:xacml:3.0:attribute-category:environment": "environment",
}
CATEGORY_URNS = {name: urn for urn, name in CATEGORY_IDS.items()}

CURRENT_TIME = "urn:oasis:names:tc:xacml:1.0:environment:current-time"
CURRENT_DATE = "urn:oasis:names:tc:xacml:1.0:environment:current-date"
CURRENT_DATETIME = "urn:oasis:names:tc:xacml:1.0:environment:current-dateTime"
ALIASES = {
    ("subject", "urn:oasis:names:tc:xacml:1.0:subject:subject-id"): "id",
    ("resource", "urn:oasis:names:tc:xacml:1.0:resource:resource-id"): "id",
    ("action", "urn:oasis:names:tc:xacml:1.0:action:action-id"): "id",
    ("environment", CURRENT_DATETIME): "current_time",
}
ALIASED = {(category, name): urn for (category, urn), name in ALIASES.items()}

STATUS = "urn:oasis:names:tc:xacml:1.0:status:"
STATUS_OK = STATUS + "ok"
STATUS_CODES = {
    "ok": STATUS_OK,
    "missing-attribute": STATUS + "missing-attribute",
    "syntax-error": STATUS + "syntax-error",
    "processing-error": STATUS + "processing-error",
}

_R1 = "urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:"
_R11 = "urn:oasis:names:tc:xacml:1.1:rule-combining-algorithm:"
_R3 = "urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:"
_P1 = "urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:"
_P11 = "urn:oasis:names:tc:xacml:1.1:policy-combining-algorithm:"
_P3 = "urn:oasis:names:tc:xacml:3.0:policy-combining-algorithm:"

RULE_ALGORITHMS = {
    _R3 + "deny-overrides": "deny-overrides",
    _R3 + "permit-overrides": "permit-overrides",
    _R1 + "first-applicable": "first-applicable",
    _R3 + "ordered-deny-overrides": "ordered-deny-overrides",
    _R3 + "ordered-permit-overrides": "ordered-permit-overrides",
    _R3 + "deny-unless-permit": "deny-unless-permit",
    _R3 + "permit-unless-deny": "permit-unless-deny",
    _R1 + "deny-overrides": "legacy-deny-overrides",
    _R1 + "permit-overrides": "legacy-permit-overrides",
    _R11 + "ordered-deny-overrides": "legacy-ordered-deny-overrides",
    _R11 + "ordered-permit-overrides": "legacy-ordered-permit-overrides",
}
"""Rule-combining algorithm ids (only-one-applicable has none over rules in XACML)."""
POLICY_ALGORITHMS = {
    _P3 + "deny-overrides": "deny-overrides",
    _P3 + "permit-overrides": "permit-overrides",
    _P1 + "first-applicable": "first-applicable",
    _P1 + "only-one-applicable": "only-one-applicable",
    _P3 + "ordered-deny-overrides": "ordered-deny-overrides",
    _P3 + "ordered-permit-overrides": "ordered-permit-overrides",
    _P3 + "deny-unless-permit": "deny-unless-permit",
    _P3 + "permit-unless-deny": "permit-unless-deny",
    _P1 + "deny-overrides": "legacy-deny-overrides",
    _P1 + "permit-overrides": "legacy-permit-overrides",
    _P11 + "ordered-deny-overrides": "legacy-ordered-deny-overrides",
    _P11 + "ordered-permit-overrides": "legacy-ordered-permit-overrides",
}
RULE_ALGORITHM_IDS = {name: urn for urn, name in RULE_ALGORITHMS.items()}
RULE_ALGORITHM_IDS["only-one-applicable"] = PBGM + "rule-combining-algorithm:only-one-applicable"
RULE_ALGORITHMS[RULE_ALGORITHM_IDS["only-one-applicable"]] = "only-one-applicable"
POLICY_ALGORITHM_IDS = {name: urn for urn, name in POLICY_ALGORITHMS.items()}

PBGM_FUNCTION = "urn:pbgm:function:"
"""The prefix of pbgm's own functions in XACML: `urn:pbgm:function:topic-matches`."""
PBGM_VALUE = "urn:pbgm:data-type:value"
"""The data type of pbgm's untyped attributes and literals (any JSON value)."""
PBGM_TYPED = "urn:pbgm:data-type:"
"""pbgm's typed literals: `urn:pbgm:data-type:datetime`, `...:time`, `...:duration`."""
PBGM_LIST = PBGM_FUNCTION + "list"
"""A list literal of pbgm, written as a call of this function of its members."""
PBGM_MATCH = PBGM_FUNCTION + "target-match"
"""A target match of pbgm on a value that is not a string (pbgm compares untyped)."""
PBGM_PARAMETER = "urn:pbgm:policy:"
"""The combiner parameters that carry what pbgm keeps beside the XACML of a policy."""
PBGM_VALIDITY = PBGM_PARAMETER + "validity"


def category_name(urn: str) -> str:
    """pbgm's name of a XACML category."""
    return CATEGORY_IDS.get(urn, urn)


def category_urn(name: str) -> str:
    return CATEGORY_URNS.get(name, name)


def attribute_name(category: str, attribute_id: str) -> str:
    """pbgm's name of a XACML attribute (of pbgm category `category`)."""
    return ALIASES.get((category, attribute_id), attribute_id)


def attribute_id(category: str, name: str) -> str:
    return ALIASED.get((category, name), name)
