"""Device actions decided by pbgm's PDP with the `device_qos` policies, then checked
against their content. Deny-biased at every step.

1. **The rules.** A `Request` is decided by a PDP over the policy group of the device
   policies (`device-management` by default), through a `PolicyEnforcementPoint`:
   `subject.id` the caller (its `subject.groups` from the repository), `action.id`
   one of `ACTIONS`, `resource` the device (`kind` `device`, `id`, `device_id`,
   `asset_id`, `owner`, `device_groups`, and `group` for a group action,
   `qos_profile`, `duration_s`). Only a Permit with every obligation discharged goes
   on; the one obligation pbgm knows here is `limit-duration` (`max_duration_s`), which
   caps the duration.
2. **The content.** A permitting `device_qos` policy must also list the action in a
   permission for one of the device's groups (or `*`); a QoS profile must be one of
   that policy's `qos_profiles` and of the permission's (when it lists some).
3. **Durations** (CAMARA int32 seconds). A session shorter than the profile's
   `min_duration_s` is refused; a longer one than the permission's
   `max_session_duration_s`, the profile's `max_duration_s` or a `limit-duration`
   obligation is capped to it, and an extension is capped so that the whole session
   stays within it, as CAMARA caps an extension at the profile's maximum. A session
   already at that maximum cannot be extended.

Device facts (groups, asset) are read from the repository for every decision: they
do not move the repository revision, so they are never compiled into the policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pbgm.errors import InvalidInputError
from pbgm.model import Clock, Obligation, PolicySet, Request, Response
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.pep import PolicyEnforcementPoint
from pbgm.pip import GroupMembershipProvider, PolicyInformationPoint
from pbgm.policy import thaw
from pbgm.store.base import Device, Store

ACTIONS = (
    "provisioning",
    "deprovisioning",
    "qos_change",
    "qos_extend",
    "qos_release",
    "connectivity_monitoring",
)
MAX_DURATION_S = 2**31 - 1
DEFAULT_POLICY_GROUP = "device-management"


@dataclass(frozen=True, slots=True)
class Ask:
    """What is asked: `duration_s` is the whole session for `qos_change` and the time
    to add for `qos_extend` (then `current_duration_s` is the session's now)."""

    subject: str
    action: str
    device: Device
    groups: tuple[str, ...]
    qos_profile: str | None = None
    duration_s: int | None = None
    current_duration_s: int | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: `allowed`, else `code` and `reason`; `duration_s` the granted one."""

    allowed: bool
    response: Response
    code: str = ""
    reason: str = ""
    duration_s: int | None = None
    capped: bool = False
    limit_s: int | None = None
    obligations: tuple[str, ...] = field(default=())

    def audit(self) -> dict[str, Any]:
        """What the audit log keeps of the decision."""
        out: dict[str, Any] = {
            "decision": self.response.decision.value,
            "policy_ids": list(self.response.policy_ids),
            "obligations": [o.id for o in self.response.obligations],
        }
        if not self.allowed:
            out.update(denied=self.code, reason=self.reason)
        if self.duration_s is not None:
            out.update(granted_duration_s=self.duration_s, capped=self.capped)
        return out


def _positive(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return int(value) if ok else None


class DeviceDecisions:
    """The PDP of the device policies and the content checks (module docstring)."""

    def __init__(
        self, store: Store, *, policy_group: str = DEFAULT_POLICY_GROUP, clock: Clock
    ) -> None:
        self._store, self._group, self._clock = store, policy_group, clock
        self._pap = PolicyAdministrationPoint(store, clock=clock)
        self._contents: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
        self._groups_of: dict[str, tuple[str, ...]] = {}
        pip = PolicyInformationPoint([GroupMembershipProvider(self._subject_groups)])
        self.pdp = PolicyDecisionPoint(source=self._load, pip=pip, clock=clock)

    @property
    def policy_group(self) -> str:
        return self._group

    def _load(self) -> PolicySet:
        """The group's published policies, stamped with the decision revision read before
        them (a change made meanwhile shows up as a newer one)."""
        revision = self._store.revisions().decisions
        policy_set = replace(self._pap.load_policy_set(self._group), revision=revision)
        self._contents = MappingProxyType(
            {p.id: thaw(p.content) for p in policy_set.policies if p.type == "device_qos"}
        )
        return policy_set

    def refresh(self) -> None:
        """Recompile when the decision revision moved (checked once per call or group
        action): a draft, an audit entry or a change of users, groups or grants leaves
        the compiled policies as they are. The callers' groups are read again from then on.
        """
        self._groups_of = {}
        self.pdp.refresh(self._store.revisions().decisions)

    def _subject_groups(self, principal: str) -> tuple[str, ...]:
        """A caller's groups, read once per call or group action (not once per device)."""
        found = self._groups_of.get(principal)
        if found is None:
            found = self._groups_of[principal] = tuple(self._store.groups_of(principal))
        return found

    def default_profile(self, groups: Iterable[str]) -> str:
        """The `default_qos_profile` the device policies give the device's groups."""
        wanted = set(groups)
        found = {
            spec["default_qos_profile"]
            for content in self._contents.values()
            for name, spec in (content.get("device_groups") or {}).items()
            if name in wanted and "default_qos_profile" in spec
        }
        if len(found) == 1:
            return str(found.pop())
        reason = (
            "no device policy gives the device's groups a default"
            if not found
            else f"the device's groups have different defaults ({', '.join(sorted(found))})"
        )
        raise InvalidInputError(f"name a `qos_profile`: {reason}", code="qos_profile_required")

    def decide(self, ask: Ask, *, now: datetime | None = None) -> Verdict:
        caps: list[int] = []
        pep = PolicyEnforcementPoint(self.pdp, {"limit-duration": _limit_duration(caps)})
        request = Request(
            subject={"id": ask.subject}, resource=_resource(ask), action={"id": ask.action}
        )
        enforcement = pep.check(request, now=now or self._clock())
        if not enforcement.allowed:
            reason = f"denied by policy: {enforcement.reason}"
            return Verdict(False, enforcement.response, "permission_denied", reason)
        return self._content_check(ask, enforcement.response, caps)

    def _content_check(self, ask: Ask, response: Response, caps: list[int]) -> Verdict:
        permits = [
            (content, permission)
            for policy_id in response.policy_ids
            for content in (self._contents.get(policy_id),)
            if content is not None
            for permission in content.get("permissions") or ()
            if permission.get("group") == "*" or permission.get("group") in ask.groups
            if ask.action in permission.get("actions", ())
        ]
        if not permits:
            groups = ", ".join(f"`{g}`" for g in ask.groups) or "none"
            reason = (
                f"no device policy that permitted this lets `{ask.action}` act on device "
                f"`{ask.device.id}` (its groups: {groups})"
            )
            return Verdict(False, response, "action_not_in_policy", reason)
        if ask.qos_profile is not None:
            permits = [(c, p) for c, p in permits if _profile_allowed(ask.qos_profile, c, p)]
            if not permits:
                reason = (
                    f"QoS profile `{ask.qos_profile}` is not allowed for device `{ask.device.id}`"
                )
                return Verdict(False, response, "qos_profile_not_allowed", reason)
        if ask.duration_s is None:
            return Verdict(True, response)
        return _durations(ask, response, permits, caps)


def _resource(ask: Ask) -> dict[str, Any]:
    device = ask.device
    resource: dict[str, Any] = {
        "kind": "device",
        "id": device.id,
        "device_id": device.id,
        "owner": device.owner,
        "device_groups": list(ask.groups),
    }
    optional = {
        "asset_id": device.asset_id,
        "group": ask.group,
        "qos_profile": ask.qos_profile,
        "duration_s": ask.duration_s,
    }
    resource.update({k: v for k, v in optional.items() if v is not None})
    return resource


def _limit_duration(caps: list[int]) -> Callable[[Obligation, Request], None]:
    def limit(obligation: Obligation, request: Request) -> None:
        value = _positive(obligation.attributes.get("max_duration_s"))
        if value is None:
            raise InvalidInputError("`limit-duration` needs a positive `max_duration_s`")
        caps.append(value)

    return limit


def _profile_allowed(
    profile: str, content: Mapping[str, Any], permission: Mapping[str, Any]
) -> bool:
    listed = permission.get("qos_profiles")
    return profile in (content.get("qos_profiles") or {}) and (not listed or profile in listed)


def _bounds(
    ask: Ask, permits: list[tuple[Mapping[str, Any], Mapping[str, Any]]], caps: list[int]
) -> tuple[int, int]:
    """(shortest, longest) session the permits allow for the asked profile."""
    limits, minimums = [], []
    for content, permission in permits:
        spec = (content.get("qos_profiles") or {}).get(ask.qos_profile or "") or {}
        bound = min(
            _positive(permission.get("max_session_duration_s")) or MAX_DURATION_S,
            _positive(spec.get("max_duration_s")) or MAX_DURATION_S,
        )
        limits.append(bound)
        minimums.append(_positive(spec.get("min_duration_s")) or 1)
    return min(minimums), min([max(limits), *caps])


def _durations(
    ask: Ask,
    response: Response,
    permits: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
    caps: list[int],
) -> Verdict:
    asked = ask.duration_s or 0
    shortest, longest = _bounds(ask, permits, caps)
    if ask.action == "qos_extend":
        current = ask.current_duration_s or 0
        room = longest - current
        if room <= 0:
            reason = (
                f"the session already lasts {current} s, the most the policy allows ({longest} s)"
            )
            return Verdict(False, response, "session_at_maximum", reason, limit_s=longest)
        granted = min(asked, room)
        return Verdict(True, response, duration_s=granted, capped=granted < asked, limit_s=longest)
    if asked < shortest:
        reason = (
            f"a `{ask.qos_profile}` session lasts at least {shortest} s by policy, not {asked} s"
        )
        return Verdict(False, response, "duration_below_minimum", reason, limit_s=longest)
    granted = min(asked, longest)
    return Verdict(True, response, duration_s=granted, capped=granted < asked, limit_s=longest)
