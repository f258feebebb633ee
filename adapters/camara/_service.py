"""The grid service `device-qos-session`: a QoS session started by an event.

A `service_trigger` policy names it in a `run_service` action, e.g. when a PMU becomes
unreachable (its device event on `/pbgm/devices/<id>/events` carries `reachable: 0`),
start a QoS session for its backup link. Parameters of the action:

- `qos_profile` (default: the device group's default) and `duration_s` (required);
- which devices: `device` (one id), or `group` (the members of that device group
  that serve the same asset as the event's device; `same_asset: false` takes every
  member), else the event's device itself.

Each session is a device action like any other: decided by the `device_qos` policies
for the event service's principal (`actor`, default `pbgm-event-service`), recorded,
audited. A denied or failed one is logged and counted, never raised into the event
service.

`create_service(bus, options)` is the `pbgm.services` factory: options `store` (the
repository URL), `network_config` (the network configuration file), `actor`,
`policy_group`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pbgm.bus import Bus
from pbgm.devices import DeviceManager, DeviceSettings, NetworkHolder
from pbgm.errors import ConfigurationError, NotFoundError, PbgmError
from pbgm.events import GridService, ServiceRun
from pbgm.network import NetworkConfig
from pbgm.store import Store, open_store

log = logging.getLogger(__name__)

OPTIONS = {"store", "network_config", "actor", "policy_group"}


def _event_device(run: ServiceRun) -> str | None:
    for sample in reversed(run.window):
        device = sample.fields.get("device")
        if isinstance(device, str) and device:
            return device
    return None


def targets(store: Store, event_device: str | None, parameters: Mapping[str, Any]) -> list[str]:
    """The devices a run acts on (module docstring)."""
    if isinstance(parameters.get("device"), str):
        return [parameters["device"]]
    group = parameters.get("group")
    if isinstance(group, str):
        members = store.list_devices(group=group)
        if parameters.get("same_asset", True) is False or event_device is None:
            return [d.id for d in members]
        try:
            asset = store.get_device(event_device).asset_id
        except NotFoundError:
            return []
        return [d.id for d in members if asset is not None and d.asset_id == asset]
    return [event_device] if event_device else []


def device_qos_service(manager: DeviceManager, actor: str) -> GridService:
    """The grid service over a `DeviceManager` (module docstring)."""

    def run(service_run: ServiceRun) -> list[str]:
        parameters = service_run.parameters
        wanted = targets(manager.store, _event_device(service_run), parameters)
        started = []
        for device_id in wanted:
            try:
                manager.act(
                    "start",
                    actor,
                    device_id,
                    qos_profile=parameters.get("qos_profile"),
                    duration_s=int(parameters["duration_s"]),
                )
            except PbgmError as error:
                log.warning("no QoS session for `%s`: %s: %s", device_id, error.code, error.message)
                continue
            started.append(device_id)
        return started

    return run


def create_service(bus: Bus, options: Mapping[str, Any]) -> GridService:
    """The `pbgm.services` factory of `device-qos-session` (module docstring)."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ConfigurationError(f"unknown device-qos-session option `{unknown[0]}`")
    if not options.get("store") or not options.get("network_config"):
        raise ConfigurationError("device-qos-session needs `store` and `network_config`")
    config = NetworkConfig.load(str(options["network_config"]))
    settings = DeviceSettings.from_network(
        config, policy_group=str(options.get("policy_group", "device-management"))
    )
    store = open_store(str(options["store"]))
    manager = DeviceManager(store, NetworkHolder.of(config), settings=settings)
    return device_qos_service(manager, str(options.get("actor", "pbgm-event-service")))
