"""What every page of the admin GUI works with: the store, the PAP, the Access Point,
the clock, and what the signed-in user may see.

One `Gui` per app, built by `mount` from the API's own `Services`: the same store,
the same Access Point (grants compiled per revision), the same PAP rules. No rule
of the API is copied here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from flask import g
from flask_login import current_user

from pbgm.access import AccessPoint, Principal
from pbgm.model import Clock, Permission
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store.base import Store
from pbgm_admin._session import SignInThrottle
from pbgm_admin.access_policy import GuiGrants

DEFAULT_IDLE_TIMEOUT_S = 900


@dataclass(frozen=True)
class Visibility:
    """What a user may see: every group (`groups is None`), or these groups plus
    these individually granted policies."""

    groups: frozenset[str] | None
    ids: frozenset[str] = frozenset()

    def allows(self, policy_group: str, policy_id: str) -> bool:
        return self.groups is None or policy_group in self.groups or policy_id in self.ids


@dataclass
class Gui:
    store: Store
    access: AccessPoint
    clock: Clock
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    throttle: SignInThrottle = field(init=False)
    grants: GuiGrants = field(init=False)
    pap: PolicyAdministrationPoint = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = SignInThrottle(self.clock)
        self.grants = GuiGrants(self.access, self.access.store)  # reads memoised per revision
        self.pap = PolicyAdministrationPoint(self.store, clock=self.clock)

    def now(self) -> datetime:
        return self.clock()

    # -- the signed-in user --------------------------------------------------------

    def actor(self) -> str:
        return str(current_user.name)

    def principal(self) -> Principal:
        return Principal(self.actor(), kind="user")

    def is_global_admin(self) -> bool:
        if "gui_global" not in g:
            g.gui_global = current_user.is_authenticated and self.grants.global_admin(
                self.principal()
            )
        return bool(g.gui_global)

    def all_groups(self) -> list[str]:
        """Every policy group that holds a policy or is registered (but `*`)."""
        groups = {c.policy_group for c in self.store.policy_counts()}
        groups |= {p.id for p in self.store.list_policy_groups()}
        return sorted(groups - {"*"})

    def groups_with(self, permission: Permission) -> list[str]:
        if self.is_global_admin():
            return self.all_groups()
        who = self.principal()
        return [
            group
            for group in self.all_groups()
            if self.access.allowed(who, str(permission), {"policy_group": group})
        ]

    def groups_with_read(self) -> list[str]:
        return self.groups_with(Permission.READ)

    def visibility(self) -> Visibility:
        """The groups and policies the user may read (memoised for the request)."""
        if "gui_visibility" in g:
            seen: Visibility = g.gui_visibility
            return seen
        if self.is_global_admin():
            seen = Visibility(None)
        else:
            groups = frozenset(self.groups_with(Permission.READ))
            seen = Visibility(groups, frozenset(self._granted_policies()))
        g.gui_visibility = seen
        return seen

    def _granted_policies(self) -> Collection[str]:
        """Policies the user reads through a grant on the policy itself."""
        who = self.principal()
        names = [who.id, *self.store.groups_of(who.id)]
        ids = {
            grant.target
            for name in names
            for grant in self.store.list_grants(principal=name)
            if grant.enabled and grant.target_kind == "policy"
        }
        return {i for i in ids if self.access.allowed(who, "read", {"policy_id": i})}

    def may(self, permission: str, policy_id: str, policy_group: str) -> bool:
        """For showing or hiding buttons; the enforcement hook decides the request."""
        if self.is_global_admin():
            return True
        target = {"policy_id": policy_id, "policy_group": policy_group}
        return self.access.allowed(self.principal(), permission, target)
