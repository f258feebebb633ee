"""Everything the memory store holds, as one value that `atomic()` can copy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pbgm.model import PolicyGroup
from pbgm.store.base import (
    AuditEntry,
    Device,
    DeviceGroup,
    DeviceStatus,
    FlexOfferRecord,
    Grant,
    Group,
    NetworkResource,
    PolicyRecord,
    PolicyVersion,
    ScheduleRecord,
    ServiceAccount,
    User,
)


@dataclass
class State:
    """Everything the memory store holds. Records are immutable, so copying the
    containers is enough to get an independent draft for `atomic()`."""

    revision: int = 0
    decision_revision: int = 0
    access_revision: int = 0
    feed: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    policies: dict[str, PolicyRecord] = field(default_factory=dict)
    versions: dict[str, list[PolicyVersion]] = field(default_factory=dict)
    policy_groups: dict[str, PolicyGroup] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    members: set[tuple[str, str]] = field(default_factory=set)  # (group, user)
    services: dict[str, ServiceAccount] = field(default_factory=dict)
    grants: dict[int, Grant] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    last_audit_id: int = 0  # ids are never reused, even after a prune
    next_grant_id: int = 1
    flexoffers: dict[str, FlexOfferRecord] = field(default_factory=dict)
    schedules: dict[str, list[ScheduleRecord]] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    device_groups: dict[str, DeviceGroup] = field(default_factory=dict)  # members kept apart
    device_members: set[tuple[str, str]] = field(default_factory=set)  # (group, device)
    resources: dict[tuple[str, str], NetworkResource] = field(default_factory=dict)
    statuses: dict[str, DeviceStatus] = field(default_factory=dict)

    def copy(self) -> State:
        return replace(
            self,
            policies=dict(self.policies),
            versions={key: list(items) for key, items in self.versions.items()},
            policy_groups=dict(self.policy_groups),
            users=dict(self.users),
            groups=dict(self.groups),
            members=set(self.members),
            services=dict(self.services),
            grants=dict(self.grants),
            audit=list(self.audit),
            feed=list(self.feed),
            flexoffers=dict(self.flexoffers),
            schedules={key: list(items) for key, items in self.schedules.items()},
            devices=dict(self.devices),
            device_groups=dict(self.device_groups),
            device_members=set(self.device_members),
            resources=dict(self.resources),
            statuses=dict(self.statuses),
        )
