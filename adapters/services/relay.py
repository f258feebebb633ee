"""`pbgm-service relay --config relay.yaml`: the bus relay (`adapters.relay`) as a service.

The `relay` section of the config names the repository the relay decides and audits
with, the policy group it decides against, and its routes::

    bus: {kind: mqtt, host: 127.0.0.1, port: 1883}
    relay:
      store: postgresql://pbgm@db/pbgm         # policies, group memberships, audit log
      policy_group: data-sharing
      routes:
        - {source: "/location_10003/+/#", subject: svc-kibernet, destination: /kibernet,
           codec: time_value}

A route's keys are those of `adapters.relay.Route` (`source`, `subject`,
`destination`, `action`, `codec`, `groups`, `qos`). The relay follows policy changes
in the repository by its revision. With `--metrics-port` its counters (`received`,
`forwarded`, `held`, `denied`, `malformed`, `loops`, `errors`) and the policy revision
it decides with are served as for every service.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.relay import Relay, Route
from adapters.services._runner import PolicySink, section
from pbgm.bus import Bus
from pbgm.errors import ConfigurationError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.store import open_store


def _route(item: Any) -> Route:
    if not isinstance(item, Mapping):
        raise ConfigurationError("each relay route must be a mapping")
    try:
        fields = {**item, "groups": tuple(item.get("groups", ()))}
        return Route(**fields)
    except TypeError as error:
        raise ConfigurationError(f"relay route: {error}") from None


class RelayService:
    """The relay, driven by the service runner (`adapters.services._runner`)."""

    name = "relay"

    def __init__(self, bus: Bus, config: Mapping[str, Any]) -> None:
        url, group = config.get("store"), config.get("policy_group")
        routes = config.get("routes")
        if not isinstance(url, str) or not isinstance(group, str):
            raise ConfigurationError("the `relay` section needs `store` and `policy_group`")
        if not isinstance(routes, list) or not routes:
            raise ConfigurationError("the `relay` section needs a non-empty list of `routes`")
        self.store = open_store(url)
        source = PolicyAdministrationPoint(self.store).policy_source(group)
        self.relay = Relay(
            bus, PolicyDecisionPoint(source=source), [_route(r) for r in routes], store=self.store
        )
        self._stopped = threading.Event()

    @property
    def policy_revision(self) -> int:
        """The repository revision of the policies the relay decides with (0 before)."""
        return self.relay.policies.revision or 0

    def sinks(self) -> Mapping[str, PolicySink]:
        return {}

    def start(self) -> None:
        self.relay.start()

    def run(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self.relay.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def state(self) -> Mapping[str, Any]:
        return self.relay.stats()


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> RelayService:
    """The runner's factory: the `relay` section of the service config."""
    return RelayService(bus, section(config, "relay"))
