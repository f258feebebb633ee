"""The domain model: policies, requests and responses as frozen dataclasses.

Nothing here knows about JSON, databases or HTTP. `pbgm.policy.syntax` turns documents
into these objects; `pbgm.decision.conditions` compiles the expressions; the PDP evaluates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pbgm.errors import InvalidInputError

CATEGORIES = ("subject", "resource", "action", "environment")

POLICY_TYPES = (
    "flexoffer",
    "operational_limits",
    "data_access",
    "service_trigger",
    "service_config",
    "device_qos",
    "access_control",
)

COMBINING_ALGORITHMS = (
    "deny-overrides",
    "permit-overrides",
    "first-applicable",
    "only-one-applicable",
    "deny-unless-permit",
    "permit-unless-deny",
    "ordered-deny-overrides",
    "ordered-permit-overrides",
    "legacy-deny-overrides",
    "legacy-permit-overrides",
    "legacy-ordered-deny-overrides",
    "legacy-ordered-permit-overrides",
)
"""The combining algorithms: XACML 3.0's, their ordered forms (children evaluated in
order, stopping at the first that overrides) and the legacy ones of XACML 1.0/1.1
(`pbgm.decision.combining` has their meaning)."""

EMPTY_BAG: Mapping[str, Any] = MappingProxyType({})
"""The empty, read-only attribute bag: a `Request` category nobody gave."""

Clock = Callable[[], datetime]
"""What pbgm reads the time from: injected everywhere a time is taken (never in the PDP's
decision itself, which is given `now`), so that tests and replays fix it."""


def utc_now() -> datetime:
    """The default clock: timezone-aware UTC."""
    return datetime.now(UTC)


class Effect(StrEnum):
    PERMIT = "Permit"
    DENY = "Deny"


class Decision(StrEnum):
    PERMIT = "Permit"
    DENY = "Deny"
    NOT_APPLICABLE = "NotApplicable"
    INDETERMINATE = "Indeterminate"


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class Permission(StrEnum):
    """What a grant allows; each level includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def includes(self, other: Permission) -> bool:
        order = (Permission.READ, Permission.WRITE, Permission.ADMIN)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True, slots=True)
class PolicyGroup:
    """A policy set: the `policy_group` of the REST query."""

    id: str
    policy_combining: str = "deny-overrides"
    description: str = ""


# --- expressions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """A reference to an attribute of the request, e.g. `subject.groups`.

    A missing attribute makes the enclosing rule Indeterminate unless
    `may_be_absent` is set, in which case it evaluates to an empty bag.

    With a `data_type` (a XACML data type URI) it is a XACML attribute designator: it
    yields the bag (a tuple) of the attribute's values of that type, issued by `issuer`
    when one is named (any issuer otherwise); an empty bag is missing unless
    `may_be_absent` (XACML's `MustBePresent="false"`). `category` is then one of the four
    or a XACML category id of another category (see `ExtendedRequest`).
    """

    category: str
    name: str
    may_be_absent: bool = False
    data_type: str | None = None
    issuer: str | None = None

    @property
    def path(self) -> str:
        return f"{self.category}.{self.name}"


def typed_key(name: str, data_type: str, issuer: str | None = None) -> str:
    """The key under which a request bag holds the values of attribute `name` of one
    data type (and one issuer), as XACML requests are read (`pbgm.xacml`): a designator
    finds its bag in one lookup. A bag without such keys (a pbgm request) is filtered by
    the values' types instead."""
    return f"{name}\x1f{data_type}" if issuer is None else f"{name}\x1f{data_type}\x1f{issuer}"


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant. `type` is `None` for plain JSON values, or a datatype name
    (`datetime`, `time`, `duration`) for values parsed from strings."""

    value: Any
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Apply:
    """Application of a named function to argument expressions."""

    function: str
    args: tuple[Expr, ...]


Expr = AttributeRef | Literal | Apply


# --- targets ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class Match:
    """`category.name` has at least one value in `values` (an indexable equality).

    Built like `Request`, without the frozen dataclass `__init__`: a decision point
    reads one per stored policy when it loads 100,000."""

    category: str
    name: str
    values: frozenset[Any]

    def __init__(self, category: str, name: str, values: frozenset[Any]) -> None:
        _set_category(self, category)
        _set_name(self, name)
        _set_values(self, values)

    @property
    def path(self) -> str:
        return f"{self.category}.{self.name}"


_set_category = vars(Match)["category"].__set__
_set_name = vars(Match)["name"].__set__
_set_values = vars(Match)["values"].__set__


@dataclass(frozen=True, slots=True)
class Matcher:
    """A XACML `<Match>`: `function(value, v)` for the values `v` of a designator; it
    holds when one of them gives true, is Indeterminate when none does and one fails."""

    function: str
    value: Expr
    attribute: AttributeRef


AllOf = tuple[Matcher, ...]
AnyOf = tuple[AllOf, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """A conjunction of matches. The empty target matches every request.

    A request that lacks a matched attribute does not match (NotApplicable),
    as a XACML Match with MustBePresent=false.

    `any_of` holds the rest of a XACML target: a conjunction of `<AnyOf>`, each a
    disjunction of `<AllOf>`, each a conjunction of `Matcher`s. Unlike `matches` it may
    be Indeterminate (a designator that must be present, a failing match function),
    which makes the rule or policy Indeterminate as XACML's tables 5 to 7 say.
    """

    matches: tuple[Match, ...] = ()
    any_of: tuple[AnyOf, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.matches and not self.any_of


# --- obligations and advice --------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssignmentExpression:
    """A XACML `<AttributeAssignmentExpression>` that `attributes` cannot hold: one of
    several with the same id, or one naming a category or an issuer."""

    attribute_id: str
    expression: Expr
    category: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class ObligationExpression:
    """An obligation (or advice) as written in a policy: its attribute values
    are expressions evaluated when the decision is made (`attributes`, then the
    XACML `assignments`)."""

    id: str
    fulfill_on: Effect
    attributes: Mapping[str, Expr] = field(default_factory=lambda: EMPTY_BAG)
    assignments: tuple[AssignmentExpression, ...] = ()


@dataclass(frozen=True, slots=True)
class Assignment:
    """A resolved `AssignmentExpression`: its value, or a bag (tuple) of values."""

    attribute_id: str
    value: Any
    category: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class Obligation:
    """An obligation in a response, with its attribute values resolved.
    The PEP must discharge every one of them or deny."""

    id: str
    attributes: Mapping[str, Any] = field(default_factory=lambda: EMPTY_BAG)
    assignments: tuple[Assignment, ...] = ()


@dataclass(frozen=True, slots=True)
class Advice:
    """Like an obligation, but the PEP may ignore it."""

    id: str
    attributes: Mapping[str, Any] = field(default_factory=lambda: EMPTY_BAG)
    assignments: tuple[Assignment, ...] = ()


# --- rules, policies, policy sets -------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    effect: Effect
    target: Target = Target()
    condition: Expr | None = None
    obligations: tuple[ObligationExpression, ...] = ()
    advice: tuple[ObligationExpression, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    type: str
    policy_group: str
    rules: tuple[Rule, ...] = ()
    rule_combining: str = "deny-overrides"
    target: Target = Target()
    asset_id: str | None = None
    description: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    obligations: tuple[ObligationExpression, ...] = ()
    advice: tuple[ObligationExpression, ...] = ()
    content: Mapping[str, Any] = field(default_factory=lambda: EMPTY_BAG)
    version: int = 1
    policies: tuple[Policy, ...] = ()
    policy_combining: str | None = None
    policy_version: str = ""

    @property
    def is_set(self) -> bool:
        """A XACML policy set: child `policies` combined by `policy_combining`, no rules.
        (A set's children are `Policy` objects too; only the top one is stored.)"""
        return self.policy_combining is not None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Policies combined by one algorithm. `revision` identifies the store
    state it was built from, so a PDP can tell when to recompile."""

    id: str
    policies: tuple[Policy, ...] = ()
    policy_combining: str = "deny-overrides"
    target: Target = Target()
    obligations: tuple[ObligationExpression, ...] = ()
    advice: tuple[ObligationExpression, ...] = ()
    revision: int = 0
    description: str = ""


# --- requests and responses -------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class Request:
    """Four attribute bags. A value may be a scalar or a list/tuple/set (a bag).

    Each bag must be a mapping of attribute names to values: `Request(resource="oops")`
    raises `InvalidInputError` (code `invalid_request`) instead of deciding
    NotApplicable. The check costs four type lookups when the bags are dicts.

    Immutable like every model object, but built without the cost of a generated
    frozen `__init__` (which sets each field through `object.__setattr__`): a request
    is built per decision, so its construction is part of every decision's cost.
    Positional arguments are the cheapest form: `Request(subject, resource, action)`.
    """

    subject: Mapping[str, Any]
    resource: Mapping[str, Any]
    action: Mapping[str, Any]
    environment: Mapping[str, Any]

    def __init__(
        self,
        subject: Mapping[str, Any] = EMPTY_BAG,
        resource: Mapping[str, Any] = EMPTY_BAG,
        action: Mapping[str, Any] = EMPTY_BAG,
        environment: Mapping[str, Any] = EMPTY_BAG,
    ) -> None:
        bags = _BAG_TYPES
        if (
            type(subject) not in bags
            or type(resource) not in bags
            or type(action) not in bags
            or type(environment) not in bags
        ):
            _check_bags(subject, resource, action, environment)
        _set_subject(self, subject)
        _set_resource(self, resource)
        _set_action(self, action)
        _set_environment(self, environment)

    def bag(self, category: str) -> Mapping[str, Any]:
        if category not in CATEGORIES:
            return other_bag(self, category)
        bag: Mapping[str, Any] = getattr(self, category)
        return bag

    def with_bag(self, category: str, bag: Mapping[str, Any]) -> Request:
        """This request with the bag of `category` (one of the four) replaced; an
        `ExtendedRequest` keeps its other categories."""
        return Request(
            bag if category == "subject" else self.subject,
            bag if category == "resource" else self.resource,
            bag if category == "action" else self.action,
            bag if category == "environment" else self.environment,
        )


# The slots' own setters: they bypass the frozen `__setattr__`; only `__init__` uses them.
_set_subject = vars(Request)["subject"].__set__
_set_resource = vars(Request)["resource"].__set__
_set_action = vars(Request)["action"].__set__
_set_environment = vars(Request)["environment"].__set__

_BAG_TYPES = frozenset({dict, MappingProxyType})


def _check_bags(*bags: Any) -> None:
    """The slow path of `Request.__init__`'s check: any `Mapping` will do."""
    for category, bag in zip(CATEGORIES, bags, strict=True):
        if not isinstance(bag, Mapping):
            raise InvalidInputError(
                f"`{category}` of a request must be a mapping of attribute names to values "
                f'such as {{"id": ...}}, not `{type(bag).__name__}`',
                code="invalid_request",
            )


@dataclass(frozen=True, slots=True, init=False)
class ExtendedRequest(Request):
    """A request with attributes in categories other than the four, by category id
    (XACML's `recipient-subject`, `codebase`, or a category of one's own)."""

    others: Mapping[str, Mapping[str, Any]]

    def __init__(
        self,
        subject: Mapping[str, Any] = EMPTY_BAG,
        resource: Mapping[str, Any] = EMPTY_BAG,
        action: Mapping[str, Any] = EMPTY_BAG,
        environment: Mapping[str, Any] = EMPTY_BAG,
        others: Mapping[str, Mapping[str, Any]] = EMPTY_BAG,
    ) -> None:
        Request.__init__(self, subject, resource, action, environment)
        _set_others(self, others)

    def with_bag(self, category: str, bag: Mapping[str, Any]) -> Request:
        plain = Request.with_bag(self, category, bag)
        return ExtendedRequest(
            plain.subject, plain.resource, plain.action, plain.environment, self.others
        )


_set_others = vars(ExtendedRequest)["others"].__set__


def other_bag(request: Request, category: str) -> Mapping[str, Any]:
    """The attributes of a category beyond the four (empty for a plain `Request`)."""
    if request.__class__ is ExtendedRequest:
        others: Mapping[str, Mapping[str, Any]] = request.others
        return others.get(category, EMPTY_BAG)
    return EMPTY_BAG


@dataclass(frozen=True, slots=True)
class MissingAttribute:
    """An attribute a designator needed and the request lacked (XACML's
    `<MissingAttributeDetail>`)."""

    category: str
    attribute_id: str
    data_type: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """XACML-style status: `ok`, `missing-attribute`, `processing-error`, `syntax-error`;
    `missing` says which attributes were missing."""

    code: str = "ok"
    message: str = ""
    missing: tuple[MissingAttribute, ...] = ()


STATUS_OK = Status()


@dataclass(frozen=True, slots=True)
class EvaluationError:
    """An error met while evaluating; recorded in the response, never raised."""

    code: str
    message: str
    policy_id: str | None = None
    rule_id: str | None = None
    missing: tuple[MissingAttribute, ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """The decision and everything that explains it."""

    decision: Decision
    status: Status = STATUS_OK
    obligations: tuple[Obligation, ...] = ()
    advice: tuple[Advice, ...] = ()
    policy_ids: tuple[str, ...] = ()
    errors: tuple[EvaluationError, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.PERMIT
