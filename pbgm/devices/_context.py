"""What device management is configured with, and the network opened on first use."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from pbgm.devices._decide import DEFAULT_POLICY_GROUP
from pbgm.errors import ConfigurationError, Problem
from pbgm.functions import topic_prefix_problem
from pbgm.network import (
    Network,
    NetworkConfig,
    NetworkError,
    Sink,
    device_problems,
    open_network,
)
from pbgm.store._device_rules import token_hash

DEFAULT_TOPIC_PREFIX = "/pbgm/devices"
MAX_BATCH = 10_000
"""The most results of a group action recorded in one transaction."""


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """`policy_group`: where the `device_qos` policies are; `topic_prefix`: device
    events go to `<prefix>/<device id>/events`; `concurrency`: calls of one group
    action in flight; `batch`: results recorded per transaction in a group action; the
    rest comes from the network configuration (`from_network`)."""

    policy_group: str = DEFAULT_POLICY_GROUP
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    concurrency: int = 16
    batch: int = 100
    sink_url: str | None = None
    sink_token_lifetime_s: int = 86_400
    application_server: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({"ipv4Address": "198.51.100.10"})
    )

    def __post_init__(self) -> None:
        """Checked however it was made (from a network configuration or in code): the
        rules of what a network configuration passes on (`pbgm.network.device_problems`),
        a topic prefix, a policy group and a batch of 1 to 10,000."""
        problems = device_problems(self)
        message = topic_prefix_problem(self.topic_prefix)
        if message is not None:
            problems.append(Problem("$.topic_prefix", "invalid_setting", message))
        if not isinstance(self.policy_group, str) or not self.policy_group:
            problems.append(Problem("$.policy_group", "invalid_setting", "must be a group id"))
        if (
            isinstance(self.batch, bool)
            or not isinstance(self.batch, int)
            or not 0 < self.batch <= MAX_BATCH
        ):
            problems.append(Problem("$.batch", "invalid_setting", f"must be 1 to {MAX_BATCH}"))
        if problems:
            names = ", ".join(f"`{p.path}`" for p in problems)
            raise ConfigurationError(
                f"{len(problems)} bad device setting(s): {names}",
                problems=[p.as_dict() for p in problems],
            )

    @classmethod
    def from_network(cls, config: NetworkConfig | None, **changes: Any) -> DeviceSettings:
        if config is None:
            return cls(**changes)
        values: dict[str, Any] = {
            "concurrency": config.concurrency,
            "sink_url": config.sink_url,
            "sink_token_lifetime_s": config.sink_token_lifetime_s,
            "application_server": config.application_server,
        }
        values.update(changes)
        return cls(**values)

    def new_sink(self, now: datetime) -> tuple[Sink | None, str | None]:
        """A fresh sink credential for one resource, and the hash the store keeps."""
        if self.sink_url is None:
            return None, None
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self.sink_token_lifetime_s)
        return Sink(self.sink_url, token, expires), token_hash(token)


class NetworkHolder:
    """The network API, opened on first use (an app factory opens no connection).

    `NetworkHolder.of(config)` opens it through `pbgm.network.open_network`;
    `NetworkHolder(network)` holds one made elsewhere; `NetworkHolder(None)` has none,
    and using it is `network_not_configured`.
    """

    def __init__(
        self, network: Network | None = None, *, opener: Callable[[], Network] | None = None
    ) -> None:
        self._network, self._opener = network, opener
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: NetworkConfig | None) -> NetworkHolder:
        if config is None:
            return cls()
        return cls(opener=lambda: open_network(config))

    @property
    def configured(self) -> bool:
        return self._network is not None or self._opener is not None

    def get(self) -> Network:
        if self._network is None:
            with self._lock:
                if self._network is None and self._opener is not None:
                    self._network = self._opener()
        if self._network is None:
            raise NetworkError(
                "no network API is configured: set `PBGM_NETWORK_CONFIG` to a network "
                "configuration file",
                code="network_not_configured",
            )
        return self._network

    def close(self) -> None:
        with self._lock:
            if self._network is not None and self._opener is not None:
                self._network.close()
                self._network = None
