"""5G device management under policy (D4.3 §8; domain.md §7; docs/devices.md).

Operators and services ask pbgm to act on field devices (PMUs, inverters, battery
gateways, RTUs); pbgm's PDP decides with the `device_qos` policies; the operator's
network API (CAMARA, through `pbgm.network`) carries the action out; the repository
records what was done and why.

- `DeviceManager`: `act(action, actor, device_id, ...)` on one device,
  `act_on_group(...)` fanned out over a group with bounded concurrency and an
  aggregate result (`GroupResult`: all, some or none, naming each failure). Actions:
  `start`, `extend`, `release` (QoS sessions), `provision`, `deprovision` (QoS
  profile assignments), `refresh` (reachability, roaming, network type), `subscribe`
  (status notifications).
- `DeviceDecisions`: the decision (rules, then the policy content, then durations
  capped as CAMARA caps them).
- `NotificationSink`: CAMARA CloudEvents in: credential, event and resource checked,
  status recorded, the event published on the bus for the event service.
- `read_device`, `read_group`, `read_membership`, `read_action`: untrusted input,
  every problem listed.

Core module: no HTTP client, no Flask; the network is found at run time.
"""

from pbgm.devices._actions import POLICY_ACTION, SUBSCRIPTION_TYPES, DeviceActions
from pbgm.devices._context import DEFAULT_TOPIC_PREFIX, DeviceSettings, NetworkHolder
from pbgm.devices._decide import ACTIONS, DEFAULT_POLICY_GROUP, Ask, DeviceDecisions, Verdict
from pbgm.devices._documents import (
    ACTION_FIELDS,
    read_action,
    read_device,
    read_group,
    read_membership,
)
from pbgm.devices._manager import GROUP_ACTIONS, DeviceManager, Recorder
from pbgm.devices._notifications import (
    MAX_NOTIFICATION_BYTES,
    NotificationSink,
    bus_payload,
    kind_of,
    parse_event,
)
from pbgm.devices._results import DeviceResult, GroupResult, Outcome
from pbgm.devices._views import (
    connectivity_json,
    connectivity_of,
    device_json,
    group_connectivity,
    group_json,
)

__all__ = [
    "ACTIONS",
    "ACTION_FIELDS",
    "DEFAULT_POLICY_GROUP",
    "DEFAULT_TOPIC_PREFIX",
    "GROUP_ACTIONS",
    "MAX_NOTIFICATION_BYTES",
    "POLICY_ACTION",
    "SUBSCRIPTION_TYPES",
    "Ask",
    "DeviceActions",
    "DeviceDecisions",
    "DeviceManager",
    "DeviceResult",
    "DeviceSettings",
    "GroupResult",
    "NetworkHolder",
    "NotificationSink",
    "Outcome",
    "Recorder",
    "Verdict",
    "bus_payload",
    "connectivity_json",
    "connectivity_of",
    "device_json",
    "group_connectivity",
    "group_json",
    "kind_of",
    "parse_event",
    "read_action",
    "read_device",
    "read_group",
    "read_membership",
]
