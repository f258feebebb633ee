"""The CAMARA adapter: `pbgm.network.Network` over the operator's CAMARA APIs.

`open_camara_network(config)` is the `pbgm.network` entry point `camara`
(`open_network(NetworkConfig(kind="camara", ...))`). It speaks Quality-On-Demand,
QoS Profiles, QoS Provisioning, Device Reachability Status, Device Roaming Status,
Connected Network Type and their subscriptions (domain.md §7) with httpx: OAuth2
client credentials with the token reused until it nearly expires, an `x-correlator`
on every call, timeouts, and retries only for idempotent operations
(`adapters.camara._http`). CAMARA errors become `pbgm.network.NetworkError`s whose
codes and messages say what to do (`adapters.camara._errors`).

`create_service` is the grid service `device-qos-session` (entry-point group
`pbgm.services`): a `service_trigger` policy starts it, e.g. a QoS session for a
PMU's backup link when the PMU becomes unreachable (`adapters.camara._service`).
"""

from __future__ import annotations

from adapters.camara._network import EVENT_TYPES, PATHS, CamaraNetwork
from adapters.camara._service import create_service, device_qos_service, targets
from pbgm.network import NetworkConfig

__all__ = [
    "EVENT_TYPES",
    "PATHS",
    "CamaraNetwork",
    "create_service",
    "device_qos_service",
    "open_camara_network",
    "targets",
]


def open_camara_network(config: NetworkConfig) -> CamaraNetwork:
    """The `pbgm.network` entry point `camara`."""
    return CamaraNetwork(config)
