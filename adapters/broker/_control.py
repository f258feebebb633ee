"""The seam between pbgm and a broker's own access control.

`BrokerAccessControl` is what `BrokerSync` drives: `apply(plan)` makes the broker
enforce an `AccessPlan` (idempotent: the broker's state is read, only what differs is
changed) and reports what it did; `close()` lets go of the broker. Mosquitto 2
(`MosquittoDynsec`, its dynamic-security plugin) is built in; another broker is added
by implementing these two methods (docs/bus.md, "Broker-side enforcement", says what
EMQX, HiveMQ and VerneMQ offer for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from adapters.broker._plan import AccessPlan
from pbgm.errors import PbgmError


class BrokerControlError(PbgmError):
    """The broker's access control could not be read or changed."""

    code = "broker_control_failed"


@dataclass(slots=True)
class Applied:
    """What one `apply` did: commands sent, errors the broker answered, and the
    principals whose broker account exists but is not pbgm's (left as they are)."""

    commands: int = 0
    errors: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@runtime_checkable
class BrokerAccessControl(Protocol):
    """A broker whose access control pbgm keeps equal to an `AccessPlan`."""

    def apply(self, plan: AccessPlan) -> Applied: ...

    def close(self) -> None: ...
