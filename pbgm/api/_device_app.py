"""How the app factory wires 5G device management (docs/devices.md).

The network configuration (`PBGM_NETWORK_CONFIG`) is read here; the network API
itself is opened on first use (`pbgm.devices.NetworkHolder`), so making the app
connects to nothing. Device events go on the app's bus (the change-notice bus,
`PBGM_NOTIFY_BUS_URL`) when it has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Blueprint

from pbgm.api._device_metrics import install_device_metrics
from pbgm.api._device_notify import ENDPOINT, notifications_blueprint, sink_authenticator
from pbgm.api._devices import device_groups_blueprint, devices_blueprint
from pbgm.api._metrics import Metrics
from pbgm.api.settings import Settings
from pbgm.auth import Claims
from pbgm.bus import Bus
from pbgm.devices import DeviceManager, DeviceSettings, NetworkHolder, NotificationSink
from pbgm.model import Clock
from pbgm.network import Network, NetworkConfig
from pbgm.store.base import Store


@dataclass(frozen=True)
class DeviceParts:
    """What the factory registers: the blueprints, the sink's authenticator, the manager."""

    manager: DeviceManager
    sink: NotificationSink
    blueprints: tuple[Blueprint, ...]
    authenticators: Mapping[str, Callable[[], Claims]]


def device_parts(
    settings: Settings,
    store: Store,
    clock: Clock,
    *,
    bus: Bus | None,
    network: Network | None,
    metrics: Metrics,
) -> DeviceParts:
    config = NetworkConfig.load(settings.network_config) if settings.network_config else None
    holder = NetworkHolder(network) if network is not None else NetworkHolder.of(config)
    device_settings = DeviceSettings.from_network(
        config,
        policy_group=settings.device_policy_group,
        topic_prefix=settings.device_topic_prefix,
    )
    manager = DeviceManager(store, holder, settings=device_settings, clock=clock)
    sink = NotificationSink(store, bus=bus, topic_prefix=settings.device_topic_prefix, clock=clock)
    counters = install_device_metrics(metrics, store, clock)
    blueprints = (
        devices_blueprint(store, manager, clock),
        device_groups_blueprint(store, manager, clock),
        notifications_blueprint(sink, lambda result: counters.notifications.labels(result).inc()),
    )
    return DeviceParts(manager, sink, blueprints, {ENDPOINT: sink_authenticator(sink, clock)})
