"""The API's own access policy, written as a pbgm `PolicySet` and decided by a pbgm PDP.

Requests the enforcement hook asks about:

- subject: `id` (the token's `sub`, a service account), `kind` (`service`),
  `scopes` (the token's), and `admin` (from the `AdminGrants` attribute provider,
  only for administrative endpoints);
- action: `id` (the Flask endpoint, e.g. `policies.get_policy`), `method`;
- resource: what is addressed (`kind`, and for administration the `targets`:
  the policies and policy groups the call changes or reads).

The policy set is deny-unless-permit over one policy per scope. Each policy
holds first-applicable rules: Permit when the token has the scope (and, for
administration, an admin grant); otherwise Deny with advice saying why
(`insufficient_scope` or `permission_denied`). An endpoint missing from the
tables is NotApplicable, hence denied.

An admin grant is an `admin` grant (`pbgm grant ... admin`) on every policy or
policy group the call addresses, or on the policy group `*` (`GLOBAL_ADMIN_GROUP`):
a global administrator, needed for users, groups, service accounts, the audit
log and listings. Grants are the Access Point's, evaluated by its own PDP
(`pbgm.access.compile_grants`) and recompiled when the store revision moves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pbgm.access import AccessPoint, Principal
from pbgm.api.auth import PUBLIC_ENDPOINTS as AUTH_ENDPOINTS
from pbgm.auth import (
    SCOPE_ADMIN,
    SCOPE_DECISIONS_WRITE,
    SCOPE_DEVICES_ADMIN,
    SCOPE_DEVICES_READ,
    SCOPE_DEVICES_WRITE,
    SCOPE_FLEXOFFERS_WRITE,
    SCOPE_METRICS_READ,
    SCOPE_POLICIES_READ,
)
from pbgm.model import (
    Effect,
    Literal,
    Match,
    ObligationExpression,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)
from pbgm.pip import Attributes

API_POLICY_SET = "pbgm-api"
GLOBAL_ADMIN_GROUP = "*"
"""An `admin` grant on this policy group makes a global administrator."""

PUBLIC_ENDPOINTS = AUTH_ENDPOINTS | {"ops.healthz", "ops.readyz", "ops.openapi"}
"""Reachable without a token; `ops.metrics` joins them when `PBGM_METRICS_PUBLIC`
(otherwise it needs a token with `metrics:read`)."""

SCOPED_ENDPOINTS: Mapping[str, frozenset[str]] = {
    SCOPE_POLICIES_READ: frozenset({"policies.get_policy", "policies.list_policies"}),
    SCOPE_DECISIONS_WRITE: frozenset({"decisions.decide"}),
    SCOPE_FLEXOFFERS_WRITE: frozenset(
        {"flexoffers.submit", "flexoffers.get", "flexoffers.schedule"}
    ),
    SCOPE_METRICS_READ: frozenset({"ops.metrics"}),
    # -- 5G device management (docs/devices.md): device actions are also decided, device
    #    by device, by the `device_qos` policies (`pbgm.devices`); notifications carry
    #    the sink credential pbgm gave the operator, never a pbgm token
    SCOPE_DEVICES_READ: frozenset(
        {
            "devices.list", "devices.get", "devices.qos", "devices.connectivity",
            "device_groups.list", "device_groups.get", "device_groups.connectivity",
        }
    ),
    SCOPE_DEVICES_ADMIN: frozenset(
        {
            "devices.create", "devices.update", "devices.delete",
            "device_groups.create", "device_groups.delete", "device_groups.members",
        }
    ),
    SCOPE_DEVICES_WRITE: frozenset(
        {
            f"{blueprint}.{action}"
            for blueprint in ("devices", "device_groups")
            for action in (
                "start_qos", "extend_qos", "release_qos", "provision", "deprovision",
                "monitor", "subscribe",
            )
        }
    ),
    "devices:notify": frozenset({"device_notifications.notify"}),
}  # fmt: skip
"""Endpoints a scope alone opens; the handlers apply the caller's read grants.
`devices:notify` is no grantable scope: only a notification's sink credential has it."""

ADMIN_ENDPOINTS = frozenset(
    {
        "admin.list_policies",
        "admin.create_policy",
        "admin.get_policy",
        "admin.update_policy",
        "admin.publish_policy",
        "admin.retire_policy",
        "admin.policy_versions",
        "admin.rollback_policy",
        "admin.list_users",
        "admin.create_user",
        "admin.update_user",
        "admin.list_groups",
        "admin.create_group",
        "admin.get_group",
        "admin.add_member",
        "admin.remove_member",
        "admin.list_service_accounts",
        "admin.create_service_account",
        "admin.update_service_account",
        "admin.delete_service_account",
        "admin.list_grants",
        "admin.create_grant",
        "admin.update_grant",
        "admin.delete_grant",
        "admin.list_audit",
    }
)
"""Endpoints that need the `admin` scope and an admin grant on what they address."""

INSUFFICIENT_SCOPE = "insufficient_scope"
PERMISSION_DENIED = "permission_denied"


def protected_endpoints() -> frozenset[str]:
    return ADMIN_ENDPOINTS.union(*SCOPED_ENDPOINTS.values())


def _why(reason: str, scope: str) -> tuple[ObligationExpression, ...]:
    return (ObligationExpression(reason, Effect.DENY, {"required_scope": Literal(scope)}),)


def _has(scope: str) -> Match:
    return Match("subject", "scopes", frozenset({scope}))


def _scope_policy(scope: str, endpoints: frozenset[str]) -> Policy:
    return Policy(
        id=f"api:{scope}",
        type="data_access",
        policy_group=API_POLICY_SET,
        target=Target((Match("action", "id", endpoints),)),
        rule_combining="first-applicable",
        rules=(
            Rule("scope", Effect.PERMIT, Target((_has(scope),))),
            Rule("no-scope", Effect.DENY, advice=_why(INSUFFICIENT_SCOPE, scope)),
        ),
    )


def _admin_policy() -> Policy:
    admin = Match("subject", "admin", frozenset({True}))
    return Policy(
        id="api:admin",
        type="data_access",
        policy_group=API_POLICY_SET,
        target=Target((Match("action", "id", ADMIN_ENDPOINTS),)),
        rule_combining="first-applicable",
        rules=(
            Rule("scope-and-grant", Effect.PERMIT, Target((_has(SCOPE_ADMIN), admin))),
            Rule(
                "no-grant",
                Effect.DENY,
                Target((_has(SCOPE_ADMIN),)),
                advice=_why(PERMISSION_DENIED, SCOPE_ADMIN),
            ),
            Rule("no-scope", Effect.DENY, advice=_why(INSUFFICIENT_SCOPE, SCOPE_ADMIN)),
        ),
    )


def api_policy_set() -> PolicySet:
    """Scopes -> endpoints, administration behind an admin grant (module docstring)."""
    policies = [_scope_policy(s, e) for s, e in sorted(SCOPED_ENDPOINTS.items())]
    return PolicySet(
        id=API_POLICY_SET,
        policies=(*policies, _admin_policy()),
        policy_combining="deny-unless-permit",
        description="who may call which endpoint of the pbgm REST API",
    )


class AdminGrants:
    """Policy Information Point provider of `subject.admin` for administrative calls.

    True when the subject holds an admin grant on the policy group `*`, or on every
    target of `resource.targets` (a call with no target needs the global grant).
    """

    provides: Collection[str] = ("subject.admin",)

    def __init__(self, access: AccessPoint) -> None:
        self._access = access

    def provide(self, request: Request) -> Attributes:
        if request.action.get("id") not in ADMIN_ENDPOINTS:
            return {}
        subject_id = request.subject.get("id")
        if not isinstance(subject_id, str):
            return {}
        who = Principal(subject_id, kind=str(request.subject.get("kind", "service")))
        targets: Any = request.resource.get("targets", ())
        return {"subject": {"admin": self._admin(who, targets)}}

    def _admin(self, who: Principal, targets: Any) -> bool:
        if self._access.allowed(who, "admin", {"policy_group": GLOBAL_ADMIN_GROUP}):
            return True
        return bool(targets) and all(
            self._access.allowed(who, "admin", dict(target)) for target in targets
        )
