"""The admin GUI's own access policy, a pbgm `PolicySet` decided by a pbgm PDP.

The enforcement hook (`pbgm_admin._enforce`) asks about every request:

- subject: `id` (the signed-in user's name, or empty), and from the `GuiGrants`
  attribute provider `signed_in`, `member` (holds at least one enabled grant,
  directly or through a group), `global_admin` (an `admin` grant on the policy
  group `*`, as for the REST API) and `levels` (the permissions the user holds
  on every target of the request: `read`, `write`, `admin`);
- action: `id` (the Flask endpoint, e.g. `gui.policy`), `method`;
- resource: `targets`, the policies and policy groups the request reads or
  changes (`pbgm_admin._targets`).

Endpoints are listed by what they need; the set is deny-unless-permit, so an
endpoint missing from every table is denied. Reading a policy needs `read`,
editing or creating one `write`, publishing, retiring and rolling back `admin`
(a writer drafts, an administrator publishes); users, groups, service accounts,
grants, the audit log, import and export need a global administrator. The
other pages need a signed-in user who holds some grant (they show only what
the user may read).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pbgm.access import AccessPoint, Principal
from pbgm.api.access_policy import GLOBAL_ADMIN_GROUP
from pbgm.errors import NotFoundError
from pbgm.model import (
    Effect,
    Literal,
    Match,
    ObligationExpression,
    Permission,
    Policy,
    PolicySet,
    Request,
    Rule,
    Target,
)
from pbgm.pip import Attributes
from pbgm.store.base import Store

GUI_POLICY_SET = "pbgm-admin-gui"
SIGN_IN_REQUIRED = "sign_in_required"
PERMISSION_DENIED = "permission_denied"
NO_GRANTS = "no_grants"

PUBLIC_ENDPOINTS = frozenset({"gui.sign_in", "gui.sign_out", "gui.static"})
"""Reachable without signing in (signing out needs no permission either)."""

MEMBER_ENDPOINTS = frozenset(
    {
        "gui.overview",
        "gui.policies",
        "gui.policy_groups",
        "gui.new_policy",
        "gui.try_it",
        "gui.flexoffers",
        "gui.validate_offer_form",
    }
)
"""Pages for any signed-in user with a grant; they show only what the user may read."""

LEVEL_ENDPOINTS: Mapping[str, frozenset[str]] = {
    "read": frozenset(
        {
            "gui.policy",
            "gui.policy_group",
            "gui.history",
            "gui.diff",
            "gui.run_try_it",
            "gui.validate_offer",
        }
    ),
    "write": frozenset({"gui.create_policy", "gui.edit_policy", "gui.save_policy"}),
    "admin": frozenset({"gui.publish", "gui.retire", "gui.rollback"}),
}
"""Endpoints that need a permission on every target of the request."""

GLOBAL_ENDPOINTS = frozenset(
    {
        "gui.users",
        "gui.create_user",
        "gui.set_user_enabled",
        "gui.set_password",
        "gui.groups",
        "gui.create_group",
        "gui.add_member",
        "gui.remove_member",
        "gui.accounts",
        "gui.create_account",
        "gui.rotate_account",
        "gui.set_account_enabled",
        "gui.delete_account",
        "gui.grants",
        "gui.create_grant",
        "gui.set_grant_enabled",
        "gui.delete_grant",
        "gui.audit",
        "gui.transfer",
        "gui.import_preview",
        "gui.import_apply",
        "gui.export",
    }
)
"""Endpoints for global administrators only."""


def protected_endpoints() -> frozenset[str]:
    return MEMBER_ENDPOINTS | GLOBAL_ENDPOINTS | frozenset().union(*LEVEL_ENDPOINTS.values())


def _advice(reason: str) -> tuple[ObligationExpression, ...]:
    return (ObligationExpression(reason, Effect.DENY, {"reason": Literal(reason)}),)


def _endpoints(endpoints: frozenset[str]) -> Target:
    return Target((Match("action", "id", endpoints),))


def _signed_in() -> Match:
    return Match("subject", "signed_in", frozenset({True}))


def _gated(policy_id: str, endpoints: frozenset[str], need: Match, reason: str) -> Policy:
    """Permit a signed-in subject matching `need`; otherwise Deny with advice saying why."""
    return Policy(
        id=policy_id,
        type="data_access",
        policy_group=GUI_POLICY_SET,
        target=_endpoints(endpoints),
        rule_combining="first-applicable",
        rules=(
            Rule("allowed", Effect.PERMIT, Target((_signed_in(), need))),
            Rule("signed-in", Effect.DENY, Target((_signed_in(),)), advice=_advice(reason)),
            Rule("anonymous", Effect.DENY, advice=_advice(SIGN_IN_REQUIRED)),
        ),
    )


def gui_policy_set() -> PolicySet:
    """Who may open which page of the admin GUI (module docstring)."""
    public = Policy(
        id="gui:public",
        type="data_access",
        policy_group=GUI_POLICY_SET,
        target=_endpoints(PUBLIC_ENDPOINTS),
        rules=(Rule("anyone", Effect.PERMIT),),
    )
    member = Match("subject", "member", frozenset({True}))
    levels = [
        _gated(
            f"gui:{level}",
            endpoints,
            Match("subject", "levels", frozenset({level})),
            PERMISSION_DENIED,
        )
        for level, endpoints in LEVEL_ENDPOINTS.items()
    ]
    global_admin = Match("subject", "global_admin", frozenset({True}))
    return PolicySet(
        id=GUI_POLICY_SET,
        policies=(
            public,
            _gated("gui:member", MEMBER_ENDPOINTS, member, NO_GRANTS),
            *levels,
            _gated("gui:global", GLOBAL_ENDPOINTS, global_admin, PERMISSION_DENIED),
        ),
        policy_combining="deny-unless-permit",
        description="who may open which page of the pbgm admin GUI",
    )


class GuiGrants:
    """Policy Information Point provider of the subject attributes the policy reads."""

    provides: Collection[str] = (
        "subject.signed_in",
        "subject.member",
        "subject.global_admin",
        "subject.levels",
    )

    def __init__(self, access: AccessPoint, store: Store) -> None:
        self._access = access
        self._store = store

    def provide(self, request: Request) -> Attributes:
        name = request.subject.get("id")
        if not isinstance(name, str) or not name:
            return {"subject": {"signed_in": False}}
        who = Principal(name, kind="user")
        is_global = self.global_admin(who)
        targets: Any = request.resource.get("targets", ())
        levels = [str(p) for p in Permission] if is_global else self._levels(who, targets)
        return {
            "subject": {
                "signed_in": True,
                "member": is_global or self.member(who),
                "global_admin": is_global,
                "levels": tuple(levels),
            }
        }

    def global_admin(self, who: Principal) -> bool:
        return self._access.allowed(who, "admin", {"policy_group": GLOBAL_ADMIN_GROUP})

    def member(self, who: Principal) -> bool:
        """Holds an enabled grant, directly or through one of its groups."""
        try:
            groups = self._store.groups_of(who.id)
        except NotFoundError:
            return False
        principals = [("user", who.id), *(("group", g) for g in groups)]
        return any(
            grant.enabled and grant.principal_kind == kind
            for kind, name in principals
            for grant in self._store.list_grants(principal=name)
        )

    def _levels(self, who: Principal, targets: Any) -> list[str]:
        if not targets:
            return []
        return [
            str(level)
            for level in Permission
            if all(self._access.allowed(who, str(level), dict(t)) for t in targets)
        ]
