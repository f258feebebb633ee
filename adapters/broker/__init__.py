"""Broker-side enforcement: pbgm's users, groups, service accounts and `data_access`
policies compiled into the broker's own access control, and kept in sync.

The relay and the event service enforce policy for clients that go through them; a
client connected to the broker directly is stopped only by the broker. This package
makes the broker stop it:

- `compile_plan` (`adapters.broker._plan`): a pure function from the repository at a
  moment (`read_directory`) to an `AccessPlan`: per principal, its broker client and
  grants (default deny; a topic granted raw only where pbgm's PDP permits the
  `subscribe` without obligations; else only the principal's relay output; only the
  relay publishes relay output; `$SYS/#` for nobody);
- `BrokerAccessControl`: the seam to a broker, `apply(plan)`; `MosquittoDynsec` does
  it with Mosquitto 2's dynamic-security plugin over `$CONTROL/dynamic-security/v1`;
- `BrokerSync`: applies the plan again whenever the repository revision moves (checked
  every 0.2 s, and at once on a change notice), a policy becomes valid or expires, and
  at least every minute;
- `broker_password`: each principal's broker password, derived from one secret;
- `pbgm-broker sync|plan|password --config FILE` (`adapters.broker._cli`).

docs/bus.md ("Broker-side enforcement") says what the broker enforces, what the relay
adds, how to deploy both, and what another broker (EMQX, HiveMQ, VerneMQ) needs.
"""

from adapters.broker._config import BrokerConfig
from adapters.broker._control import Applied, BrokerAccessControl, BrokerControlError
from adapters.broker._credentials import broker_password, fingerprint, read_secret
from adapters.broker._directory import Snapshot, read_directory
from adapters.broker._mosquitto import MosquittoDynsec, acls_of
from adapters.broker._plan import (
    PUBLISH,
    SUBSCRIBE,
    AccessPlan,
    ClientPlan,
    DataPolicy,
    Directory,
    Grant,
    NamedGrants,
    Principal,
    compile_plan,
)
from adapters.broker._sync import BrokerSync, PlanSettings

__all__ = [
    "PUBLISH",
    "SUBSCRIBE",
    "AccessPlan",
    "Applied",
    "BrokerAccessControl",
    "BrokerConfig",
    "BrokerControlError",
    "BrokerSync",
    "ClientPlan",
    "DataPolicy",
    "Directory",
    "Grant",
    "MosquittoDynsec",
    "NamedGrants",
    "PlanSettings",
    "Principal",
    "Snapshot",
    "acls_of",
    "broker_password",
    "compile_plan",
    "fingerprint",
    "read_directory",
    "read_secret",
]
