"""A repository set up for device management tests: the `device-management` policy
group with one `device_qos` policy, operators, devices in groups."""

from __future__ import annotations

import copy
from typing import Any

from pbgm.model import PolicyGroup
from pbgm.pap import PolicyAdministrationPoint
from pbgm.store import Group, Store, User
from pbgm.store.base import Device, DeviceGroup

ALL_ACTIONS = [
    "provisioning",
    "deprovisioning",
    "qos_change",
    "qos_extend",
    "qos_release",
    "connectivity_monitoring",
]
POLICY: dict[str, Any] = {
    "id": "pmu-qos",
    "type": "device_qos",
    "policy_group": "device-management",
    "rule_combining": "deny-overrides",
    "rules": [
        {
            "id": "operators-and-the-event-service-act",
            "effect": "Permit",
            "condition": {
                "apply": "at-least-one-member-of",
                "args": [{"attr": "subject.groups"}, ["operators", "event-services"]],
            },
        }
    ],
    "content": {
        "device_groups": {"pmus": {"default_qos_profile": "LOW_LATENCY"}},
        "qos_profiles": {
            "LOW_LATENCY": {"min_duration_s": 60, "max_duration_s": 86_400},
            "QOS_E": {"min_duration_s": 1},
            "THROUGHPUT_M": {"min_duration_s": 60, "max_duration_s": 43_200},
        },
        "permissions": [
            {
                "group": "pmus",
                "actions": ALL_ACTIONS,
                "qos_profiles": ["LOW_LATENCY", "QOS_E"],
                "max_session_duration_s": 86_400,
            },
            {"group": "backup-links", "actions": ALL_ACTIONS},
        ],
    },
}


def phone(n: int) -> str:
    return f"+49151{n:08d}"


def device(n: int, **fields: Any) -> Device:
    values: dict[str, Any] = {
        "id": f"pmu-{n}",
        "identifiers": {"phoneNumber": phone(n)},
        "owner": "dso",
        "asset_id": f"substation-{n}",
    }
    values.update(fields)
    return Device(**values)


def camara_device(n: int) -> dict[str, str]:
    return {"phoneNumber": phone(n)}


def seed(store: Store, devices: int = 3, *, policy: dict[str, Any] | None = None) -> None:
    """The policy (published), `op-anna` in `operators`, `op-eve` in no group, and
    devices `pmu-1` .. `pmu-<devices>` in the group `pmus`."""
    store.put_policy_group(PolicyGroup("device-management", "deny-unless-permit"), actor="seed")
    for group in ("operators", "event-services"):
        store.add_group(Group(group), actor="seed")
    for name, groups in (
        ("op-anna", ["operators"]),
        ("op-eve", []),
        ("svc-events", ["event-services"]),
    ):
        store.add_user(User(name), actor="seed")
        for group in groups:
            store.add_member(group, name, actor="seed")
    pap = PolicyAdministrationPoint(store)
    pap.create(copy.deepcopy(policy or POLICY), actor="seed")
    pap.publish((policy or POLICY)["id"], actor="seed")
    with store.atomic() as view:
        for n in range(1, devices + 1):
            view.add_device(device(n), actor="seed")
    store.add_device_group(
        DeviceGroup("pmus", members=tuple(f"pmu-{n}" for n in range(1, devices + 1))), actor="seed"
    )
