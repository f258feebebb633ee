"""`pbgm-service kibernet --config kibernet.yaml`: the KIBERNet poller as a service.

    bus: {kind: mqtt, host: 127.0.0.1, port: 1883}
    loader:                      # pbgm.loader: the data_access policy, kept current
      server: https://pbgm.example
      ...
      policies:
        - {name: kibernet, policy_id: kibernet-data-access, deliver_to: data_access}
    kibernet:
      store: postgresql://pbgm@db/pbgm   # the PDP's policies, group memberships, audit log
      policy_group: data-sharing
      subject: svc-voltage-control       # on whose behalf the data points are read
      groups: [vpp-services]             # optional: else the subject's groups in the store
      secrets_dir: /run/secrets          # where `secret_ref` names are resolved
      audit_interval_s: 60

The loader's sink is `data_access`; `policy_files: {data_access: [FILE]}` works too.
Counters (`published`, `denied`, `obligation_refused`, `rate_limited`, `failed`,
`refused_answer`, `unchanged`, `held`, `config_applied`, `config_refused`, ...) are
served with `--metrics-port`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.kibernet._plan import DEFAULT_SECRETS_DIR
from adapters.kibernet._poller import KibernetPoller
from adapters.services._runner import PolicySink, number, section
from pbgm.bus import Bus
from pbgm.errors import ConfigurationError
from pbgm.pap import PolicyAdministrationPoint
from pbgm.pdp import PolicyDecisionPoint
from pbgm.store import open_store


class KibernetService:
    """The poller, driven by the service runner (`adapters.services._runner`)."""

    name = "kibernet"

    def __init__(self, bus: Bus, config: Mapping[str, Any], base: Path = Path()) -> None:
        url, group, subject = config.get("store"), config.get("policy_group"), config.get("subject")
        if not all(isinstance(v, str) and v for v in (url, group, subject)):
            raise ConfigurationError(
                "the `kibernet` section needs `store`, `policy_group`, `subject`"
            )
        groups = config.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ConfigurationError("`kibernet.groups` must be a list of group names")
        audit_interval_s = number(config, "audit_interval_s", 60.0, 0.0, 86400.0)
        self.store = open_store(str(url))
        source = PolicyAdministrationPoint(self.store).policy_source(str(group))
        self.poller = KibernetPoller(
            bus,
            PolicyDecisionPoint(source=source),
            subject=str(subject),
            groups=groups,
            store=self.store,
            secrets_dir=base / str(config.get("secrets_dir", DEFAULT_SECRETS_DIR)),
            audit_interval_s=audit_interval_s,
        )
        self._stopped = threading.Event()

    def sinks(self) -> Mapping[str, PolicySink]:
        return {"data_access": self.poller.apply}

    def missing_policies(self) -> list[str]:
        return [] if self.poller.plan is not None else ["data_access"]

    def start(self) -> None:
        self.poller.start()

    def run(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self.poller.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def stats(self) -> dict[str, int]:
        return self.poller.stats()

    def state(self) -> Mapping[str, Any]:
        return {**self.poller.stats(), "stale_points": len(self.poller.stale())}


def make_service(config: Mapping[str, Any], bus: Bus, base: Path = Path()) -> KibernetService:
    """The runner's factory: the `kibernet` section of the service config."""
    return KibernetService(bus, section(config, "kibernet"), base)
