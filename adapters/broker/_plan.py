"""What the broker must enforce, compiled from pbgm's principals and `data_access` policies.

`compile_plan(directory, settings, now)` is a pure function of what the repository says
at `now`; its result, an `AccessPlan`, is broker-neutral (a `BrokerAccessControl`
turns it into the broker's own objects). The rules:

- **Default deny.** A client may neither publish, subscribe nor receive anything it is
  not granted; `$SYS/#` and `$CONTROL/#` are granted to nobody.
- **Clients.** Every user and service account of the repository is a broker client
  (username = principal id), enabled as its account is, plus the relay and the
  principals the settings name (devices, pbgm's own services). Its password is derived
  by pbgm (`adapters.broker.broker_password`).
- **Reading data.** For every principal P and every topic filter T of a published
  `data_access` policy whose `consumers` name P (a subject or a service) or one of
  P's groups, pbgm's decision point is asked, with the policy's group, whether P may
  `subscribe` to T (resource `{"topic": T, "kind": "broker"}`, at `now`). A Permit
  without obligations grants P T itself (subscribe and receive). Anything else (a
  Permit with obligations such as `drop-fields`, `downsample` or `audit`, which no
  broker ACL can discharge; a decision that needs the message) grants nothing raw:
  P gets the data only through the relay, which decides each message.
- **The relay.** Every consumer of some `data_access` policy may read its own relay
  output, `<prefix><P>/#`; only the relay principal may publish under `<prefix>`
  (every other client carries a guard that denies it, whatever else it is
  granted); the relay may subscribe to every topic filter of the `data_access`
  policies.
- **Named grants.** `settings.principals` adds publish and subscribe filters for
  principals the policies do not describe (who publishes measurements, the event
  service, the services' change notices).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pbgm.functions import parse_topic_filter
from pbgm.model import Decision, Request
from pbgm.pep import Decider

PUBLISH, SUBSCRIBE = "publish", "subscribe"
GUARD_PRIORITY = 1000


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One ACL: `kind` (`publish` or `subscribe`: subscribing and receiving) on a topic
    filter, allowed or denied; a higher `priority` is evaluated first."""

    kind: str
    topic: str
    allow: bool = True
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """A broker client: its credentials, whether it may connect, and its grants."""

    username: str
    password: str = field(repr=False)
    enabled: bool
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class AccessPlan:
    """Everything the broker enforces; two plans are equal when nothing changed."""

    clients: tuple[ClientPlan, ...]
    relay_prefix: str

    def client(self, username: str) -> ClientPlan | None:
        return next((c for c in self.clients if c.username == username), None)


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or service account as the repository has it."""

    id: str
    groups: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """A published `data_access` policy: its group, topic filters and consumers."""

    id: str
    policy_group: str
    topics: tuple[str, ...]
    subjects: frozenset[str]
    groups: frozenset[str]

    def names(self, principal: Principal) -> bool:
        return principal.id in self.subjects or bool(self.groups & set(principal.groups))


@dataclass(frozen=True, slots=True)
class Directory:
    """What the plan is compiled from: principals, data policies, their deciders."""

    principals: tuple[Principal, ...]
    policies: tuple[DataPolicy, ...]
    deciders: Mapping[str, Decider]


@dataclass(frozen=True, slots=True)
class NamedGrants:
    """Grants the settings give one principal."""

    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()


def data_policy(policy_id: str, policy_group: str, content: Mapping[str, Any]) -> DataPolicy:
    """The broker's view of a `data_access` policy content."""
    consumers = content.get("consumers") or {}
    subjects = frozenset([*consumers.get("subjects", ()), *consumers.get("services", ())])
    topics = tuple((content.get("data") or {}).get("topics", ()))
    return DataPolicy(
        policy_id, policy_group, topics, subjects, frozenset(consumers.get("groups", ()))
    )


def compile_plan(
    directory: Directory,
    *,
    relay_principal: str,
    relay_prefix: str,
    named: Mapping[str, NamedGrants],
    password: Any,
    now: datetime,
) -> AccessPlan:
    """The plan for `directory` at `now` (see the module docstring); `password(id)`
    gives each client's broker password."""
    principals = {p.id: p for p in directory.principals}
    for name in (relay_principal, *named):
        principals.setdefault(name, Principal(name))
    guard = Grant(PUBLISH, relay_prefix + "#", allow=False, priority=GUARD_PRIORITY)
    clients = []
    for principal in sorted(principals.values(), key=lambda p: p.id):
        grants: set[Grant] = set()
        if principal.id == relay_principal:
            grants |= _relay_grants(directory.policies, relay_prefix)
        else:
            grants.add(guard)
            grants |= _read_grants(principal, directory, relay_prefix, now)
        extra = named.get(principal.id, NamedGrants())
        grants |= {Grant(PUBLISH, t) for t in extra.publish}
        grants |= {Grant(SUBSCRIBE, t) for t in extra.subscribe}
        clients.append(
            ClientPlan(
                principal.id, password(principal.id), principal.enabled, tuple(sorted(grants))
            )
        )
    return AccessPlan(tuple(clients), relay_prefix)


def _relay_grants(policies: Iterable[DataPolicy], prefix: str) -> set[Grant]:
    grants = {Grant(PUBLISH, prefix + "#")}
    grants |= {Grant(SUBSCRIBE, topic) for p in policies for topic in p.topics}
    return grants


def _read_grants(
    principal: Principal, directory: Directory, prefix: str, now: datetime
) -> set[Grant]:
    grants: set[Grant] = set()
    for policy in directory.policies:
        if not policy.names(principal):
            continue
        grants.add(Grant(SUBSCRIBE, f"{prefix}{principal.id}/#"))  # what the relay sends
        decider = directory.deciders.get(policy.policy_group)
        if decider is None:
            continue
        for topic in policy.topics:
            if _plainly_permitted(decider, principal, topic, now):
                grants.add(Grant(SUBSCRIBE, topic))
    return grants


def _plainly_permitted(decider: Decider, principal: Principal, topic: str, now: datetime) -> bool:
    """A Permit without obligations: what a broker ACL can enforce by itself."""
    request = Request(
        {"id": principal.id, "groups": principal.groups},
        {"topic": topic, "kind": "broker"},
        {"id": SUBSCRIBE},
        {"current_time": now},
    )
    try:
        response = decider.decide(request, now=now)
    except Exception:
        return False  # fail closed: no raw grant, the relay decides each message
    return response.decision is Decision.PERMIT and not response.obligations


def check_filters(topics: Iterable[str], where: str) -> tuple[str, ...]:
    """Topic filters from settings, each valid (`ValueError` naming `where` otherwise)."""
    out = []
    for topic in topics:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"{where}: a topic filter must be a non-empty string")
        try:
            parse_topic_filter(topic)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        out.append(topic)
    return tuple(out)


def next_boundary(policies: Iterable[Any], now: datetime) -> float:
    """Seconds until the next `valid_from`/`valid_until` after `now` among `policies`
    (records or documents with those fields), or infinity."""
    later = [
        moment
        for policy in policies
        for moment in (getattr(policy, "valid_from", None), getattr(policy, "valid_until", None))
        if isinstance(moment, datetime) and moment > now
    ]
    return min(((m - now).total_seconds() for m in later), default=math.inf)
