"""The Policy Information Point: attributes added before deciding, never
overwritten, and a failing provider leaves them missing (Indeterminate)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbgm.errors import ConfigurationError, NotFoundError, StoreUnavailableError
from pbgm.model import (
    Apply,
    AttributeRef,
    Decision,
    Effect,
    ExtendedRequest,
    Literal,
    Match,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)
from pbgm.pdp import PolicyDecisionPoint, with_current_time
from pbgm.pip import (
    AssetAttributeProvider,
    AttributeProvider,
    GroupMembershipProvider,
    PolicyInformationPoint,
    StaticAttributes,
)
from pbgm.policy.syntax import policy_set_from_documents

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MEMBERSHIPS = {"alice": ["operators"], "bob": ["admins", "operators"]}


def groups_of(subject_id: str) -> list[str]:
    if subject_id not in MEMBERSHIPS:
        raise NotFoundError(f"no user `{subject_id}`")
    return MEMBERSHIPS[subject_id]


def store_down(subject_id: str) -> list[str]:
    raise StoreUnavailableError("database is locked")


OPERATORS_READ = policy_set_from_documents(
    {"id": "grants", "policy_combining": "deny-overrides"},
    [
        {
            "id": "operators-read",
            "type": "operational_limits",
            "policy_group": "grants",
            "rules": [
                {
                    "id": "read",
                    "effect": "Permit",
                    "condition": {
                        "apply": "is-in",
                        "args": ["operators", {"attr": "subject.groups"}],
                    },
                }
            ],
        }
    ],
)


@pytest.mark.parametrize(
    ("what", "subject", "groups"),
    [
        ("groups of a known subject", {"id": "bob"}, ("admins", "operators")),
        ("an unknown subject is in no group", {"id": "mallory"}, ()),
        ("groups the request carries are kept", {"id": "bob", "groups": ["guests"]}, ["guests"]),
    ],
)
def test_group_membership_provider(what, subject, groups):
    pip = PolicyInformationPoint([GroupMembershipProvider(groups_of)])
    request, errors = pip.resolve(Request(subject=subject))
    assert request.subject["groups"] == groups
    assert errors == []


def test_no_subject_id_means_nothing_to_look_up():
    pip = PolicyInformationPoint([GroupMembershipProvider(groups_of)])
    request, errors = pip.resolve(Request(subject={"name": "alice"}))
    assert "groups" not in request.subject
    assert errors == []


def test_a_failing_provider_is_recorded_and_the_attribute_stays_missing():
    pip = PolicyInformationPoint([GroupMembershipProvider(store_down)])
    request, errors = pip.resolve(Request(subject={"id": "alice"}))
    assert "groups" not in request.subject
    assert [e.code for e in errors] == ["attribute_provider_failed"]
    assert "database" not in errors[0].message  # no internals in messages


def test_a_failing_provider_makes_the_decision_indeterminate_not_permit():
    pdp = PolicyDecisionPoint(
        OPERATORS_READ, pip=PolicyInformationPoint([GroupMembershipProvider(store_down)])
    )
    response = pdp.decide(Request(subject={"id": "alice"}), now=NOW)
    assert response.decision is Decision.INDETERMINATE
    assert response.status.code == "missing-attribute"
    assert response.errors[0].code == "attribute_provider_failed"


def test_group_membership_through_the_pdp():
    pdp = PolicyDecisionPoint(
        OPERATORS_READ, pip=PolicyInformationPoint([GroupMembershipProvider(groups_of)])
    )
    assert pdp.decide(Request(subject={"id": "alice"}), now=NOW).decision is Decision.PERMIT
    assert pdp.decide(Request(subject={"id": "eve"}), now=NOW).decision is Decision.NOT_APPLICABLE


ASSETS = {"bess-01": {"kind": "bess", "p_max_kw": 250, "owner": "dso-1"}}


@pytest.mark.parametrize(
    ("what", "names", "resource", "added"),
    [
        ("every attribute of a known asset", None, {"asset_id": "bess-01"}, ASSETS["bess-01"]),
        ("only the names asked for", ["kind"], {"asset_id": "bess-01"}, {"kind": "bess"}),
        ("nothing for an unknown asset", None, {"asset_id": "pv-09"}, {}),
        ("the request's own values win", None, {"asset_id": "bess-01", "kind": "pv"},
         {"p_max_kw": 250, "owner": "dso-1"}),
    ],
)  # fmt: skip
def test_asset_attribute_provider(what, names, resource, added):
    pip = PolicyInformationPoint([AssetAttributeProvider(ASSETS.get, names=names)])
    request, errors = pip.resolve(Request(resource=resource))
    assert dict(request.resource) == {**added, **resource}
    assert errors == []


def test_providers_run_in_order_and_see_earlier_results():
    pip = PolicyInformationPoint(
        [
            StaticAttributes({"resource": {"asset_id": "bess-01"}}),
            AssetAttributeProvider(ASSETS.get, names=["p_max_kw"]),
        ]
    )
    request, _ = pip.resolve(Request())
    assert request.resource == {"asset_id": "bess-01", "p_max_kw": 250}


class Counting:
    provides = ("environment.tariff", "environment.season")

    def __init__(self) -> None:
        self.calls = 0

    def provide(self, request: Request) -> dict:
        self.calls += 1
        return {"environment": {"tariff": "peak", "season": "winter", "undeclared": 1}}


def test_a_provider_is_asked_only_for_what_is_missing_and_only_what_it_declares():
    provider = Counting()
    assert isinstance(provider, AttributeProvider)
    pip = PolicyInformationPoint([provider])
    complete = Request(environment={"tariff": "off-peak", "season": "summer"})
    assert pip.resolve(complete)[0] is complete
    assert provider.calls == 0
    request, _ = pip.resolve(Request(environment={"tariff": "off-peak"}))
    assert request.environment == {"tariff": "off-peak", "season": "winter"}
    assert provider.calls == 1


@pytest.mark.parametrize("path", ["groups", "team.groups", "subject."])
def test_a_provider_must_name_category_and_attribute(path):
    provider = StaticAttributes({})
    provider.provides = (path,)
    with pytest.raises(ConfigurationError):
        PolicyInformationPoint([provider])


def test_an_extended_request_keeps_its_other_categories_through_the_pip():
    """A XACML request with a category beyond the four (here a codebase) still carries it
    once the PIP adds `subject.groups`, and once the decision point adds the current time:
    both used to rebuild a plain `Request` from the four bags."""
    codebase = "urn:oasis:names:tc:xacml:3.0:attribute-category:codebase"
    members = Apply("is-in", (Literal("operators"), AttributeRef("subject", "groups")))
    rule = Rule("read", Effect.PERMIT, condition=members)
    target = Target((Match(codebase, "app", frozenset({"scada"})),))
    policy = Policy("scada-read", "data_access", "g", (rule,), "deny-unless-permit", target)
    pdp = PolicyDecisionPoint(
        PolicySet("s", (policy,), "deny-unless-permit"),
        pip=PolicyInformationPoint([GroupMembershipProvider(groups_of)]),
    )
    request = ExtendedRequest({"id": "alice"}, others={codebase: {"app": "scada"}})
    resolved, errors = pdp._pip.resolve(request)  # type: ignore[union-attr]
    assert errors == [] and resolved.bag(codebase) == {"app": "scada"}
    assert dict(resolved.subject) == {"id": "alice", "groups": ("operators",)}
    assert pdp.decide(request, now=NOW).decision is Decision.PERMIT
    timed = with_current_time(request, NOW)
    assert timed.bag(codebase) == {"app": "scada"} and timed.environment["current_time"] == NOW
