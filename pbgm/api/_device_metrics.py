"""Connectivity as Prometheus metrics, read from the repository at each scrape.

A collector in the app's registry (`pbgm.api._metrics.Metrics`), so every worker and
every server answers the same values whatever handled the notifications:

=========================================  ===========================================
`pbgm_device_reachable{device}`            1 reachable, 0 not (devices with a status)
`pbgm_device_roaming{device}`              1 roaming, 0 not
`pbgm_device_network_type{device,type}`    1 for the network type last seen
`pbgm_device_status_age_seconds{device}`   seconds since the status was last updated
`pbgm_device_qos_session_expiry_timestamp  the live QoS session's expiry, Unix seconds
{device,qos_profile}`                      (Grafana: `... - time()` is the time left)
`pbgm_devices`, `pbgm_devices_reachable`   how many devices, how many reachable
=========================================  ===========================================

A counter of this process: `pbgm_device_notifications_total{result}` (device actions
are counted with every request in `pbgm_http_requests_total{endpoint,status}`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pbgm.api._metrics import Metrics
from pbgm.devices._views import LIVE
from pbgm.errors import PbgmError
from pbgm.model import Clock
from pbgm.store.base import Store

log = logging.getLogger(__name__)


NAMES = (
    "pbgm_device_reachable",
    "pbgm_device_roaming",
    "pbgm_device_network_type",
    "pbgm_device_status_age_seconds",
    "pbgm_device_qos_session_expiry_timestamp",
    "pbgm_devices",
    "pbgm_devices_reachable",
)


class ConnectivityCollector(Collector):
    """The gauges of the module table, from three reads of the repository."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric names, without reading the repository (registering reads nothing)."""
        for name in NAMES:
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            devices = self.store.list_devices()
            statuses = self.store.list_device_status()
            sessions = self.store.list_network_resources(kind="qos_session")
        except PbgmError as error:
            log.warning("connectivity metrics unavailable: %s", error.code)
            return
        now = self.clock()
        reachable = GaugeMetricFamily(
            "pbgm_device_reachable", "1 reachable, 0 not", labels=["device"]
        )
        roaming = GaugeMetricFamily("pbgm_device_roaming", "1 roaming, 0 not", labels=["device"])
        kind = GaugeMetricFamily(
            "pbgm_device_network_type", "Network type last seen", labels=["device", "type"]
        )
        age = GaugeMetricFamily(
            "pbgm_device_status_age_seconds", "Seconds since the status was seen", labels=["device"]
        )
        for status in statuses:
            if status.reachable is not None:
                reachable.add_metric([status.device_id], float(status.reachable))
            if status.roaming is not None:
                roaming.add_metric([status.device_id], float(status.roaming))
            if status.network_type is not None:
                kind.add_metric([status.device_id, status.network_type], 1.0)
            if status.updated_at is not None:
                age.add_metric([status.device_id], (now - status.updated_at).total_seconds())
        expiry = GaugeMetricFamily(
            "pbgm_device_qos_session_expiry_timestamp",
            "Expiry of the live QoS session, Unix seconds",
            labels=["device", "qos_profile"],
        )
        for session in sessions:
            if session.status in LIVE and session.expires_at is not None:
                labels = [session.device_id, session.qos_profile or ""]
                expiry.add_metric(labels, session.expires_at.timestamp())
        count = sum(1 for s in statuses if s.reachable)
        yield from (reachable, roaming, kind, age, expiry)
        yield GaugeMetricFamily("pbgm_devices", "Devices in the registry", value=len(devices))
        yield GaugeMetricFamily(
            "pbgm_devices_reachable", "Devices last seen reachable", value=count
        )


class DeviceCounters:
    """The counter of this process (module docstring)."""

    def __init__(self, metrics: Metrics) -> None:
        self.notifications = metrics.counter(
            "pbgm_device_notifications",
            "CAMARA notifications received, by result (accepted, duplicate, refused)",
            ["result"],
        )


def install_device_metrics(metrics: Metrics, store: Store, clock: Clock) -> DeviceCounters:
    metrics.collector(ConnectivityCollector(store, clock))
    return DeviceCounters(metrics)
