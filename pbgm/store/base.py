"""The Policy Repository behind a Protocol.

Two implementations: `pbgm.store.memory.MemoryStore` (the reference, also used in
tests and embedded use) and `pbgm.store.sql.SqlStore` (SQLite or PostgreSQL via
SQLAlchemy). One contract suite (`tests/store/test_contract.py`) runs against both.

Conventions every implementation follows:
- Policy documents are stored as validated `pbgm/v1` JSON (dicts); validation is the
  caller's job (`pbgm.pap`), the store only persists.
- Every mutating call takes `actor` (who) and optionally `reason` (why) and writes
  an `AuditEntry` in the same transaction.
- Every change to policies, policy groups, principals, memberships or grants bumps
  the repository `revision()` by one (caches of the API's reads follow it).
- Beside it, `revisions()` gives two narrower counters. The *decision* revision moves
  only when what a PDP decides may change: a policy published, retired or deleted
  while published, a policy group written; each such change is also appended to the
  *change feed*, which `read_published(since=...)` reads back, so a decision point
  applies only what changed (`pbgm.pdp`). Drafts, audit entries, FlexOffers and
  principals leave it alone. The *access* revision moves when principals,
  memberships or grants change: what the Access Point compiles.
- `expected_version` on policy updates gives optimistic concurrency: a stale value
  raises `ConflictError` and changes nothing.
- Missing objects raise `NotFoundError`, duplicates `AlreadyExistsError`.
- `atomic()` returns a context manager yielding a store view whose calls form one
  transaction: on an exception nothing of it is kept.
- Timestamps are timezone-aware UTC `datetime`s from the store's injected clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pbgm.model import Permission, PolicyGroup, PolicyStatus

AUDIT_LOG, DECISION_LOG = "audit", "decisions"
LOGS = (AUDIT_LOG, DECISION_LOG)
DECISION_ACTIONS = ("decision",)
DECISION_ACTION_PREFIXES = ("relay.", "events.")
"""The decision log is the entries decision points write as they decide: the API's
`decision`, the relay's `relay.*` and the event service's `events.*`; every other
entry (administrative changes, tokens, refusals, prunes) is the audit log."""


def is_decision_entry(action: str) -> bool:
    """Whether an audit entry of `action` belongs to the decision log."""
    return action in DECISION_ACTIONS or action.startswith(DECISION_ACTION_PREFIXES)


MAX_ROW_ID = 2**31 - 1
"""The largest version number, grant id or audit id a store holds (an INTEGER column)."""


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A policy as the repository holds it: its latest document and lifecycle state.

    `version` is the latest version number (1, 2, ...). `published_version` is the
    version services receive and the PDP evaluates (None until published; kept when
    retired so history stays readable, but a retired policy is not evaluated).
    """

    id: str
    type: str
    policy_group: str
    asset_id: str | None
    version: int
    status: PolicyStatus
    document: Mapping[str, Any]
    published_version: int | None
    published_document: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One entry of a policy's history."""

    policy_id: str
    version: int
    document: Mapping[str, Any]
    author: str
    created_at: datetime
    reason: str
    action: str  # create | update | rollback


@dataclass(frozen=True, slots=True)
class User:
    name: str
    display_name: str = ""
    enabled: bool = True
    password_hash: str | None = None  # for the admin GUI; never the password itself
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A machine principal: OAuth2 client id and the hash of its secret.

    `token_generation` names this instance of the account for its tokens: a random
    text the store sets when the account is created and changes whenever it is
    disabled or enabled. A token carries the generation it was issued for and is
    refused once it differs, so deleting and re-creating an account, or disabling
    and enabling it, revokes every token issued before.
    """

    client_id: str
    secret_hash: str
    scopes: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""
    created_at: datetime | None = None
    token_generation: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    """`principal` (a user, group or service account) may `permission` on `target`
    (a policy id or a policy group id). `id` is assigned by the store."""

    principal_kind: str  # user | group | service
    principal: str
    target_kind: str  # policy | policy_group
    target: str
    permission: Permission
    id: int | None = None
    enabled: bool = True
    created_by: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str  # e.g. policy.create, policy.update, grant.add, user.disable
    object_type: str
    object_id: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditItem:
    """An audit entry to append (`Store.record_audits`): what `record_audit` takes."""

    actor: str
    action: str
    object_type: str
    object_id: str
    details: Mapping[str, Any] | None = None
    text: str | None = None
    """`details` as the text a store writes (`pbgm.policy.compact_json`), when the writer
    has it already: `record_audit_batch` then checks this text instead of encoding
    `details` again. It must encode `details`."""


@dataclass(frozen=True, slots=True)
class FlexOfferRecord:
    """A FlexOffer as received over the API, with the state pbgm gave it.

    `state` is `accepted` or `rejected` after validation against the template
    policy `policy_id` (`reasons` then lists every violation as `{path, code,
    message}`), and `assigned` once a schedule for it was accepted.
    """

    id: str
    policy_id: str
    state: str
    document: Mapping[str, Any]
    reasons: tuple[Mapping[str, str], ...] = ()
    offered_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One schedule (assignment) sent for a FlexOffer, numbered 1, 2, ... per offer."""

    offer_id: str
    number: int
    state: str  # accepted | rejected
    document: Mapping[str, Any]
    reasons: tuple[Mapping[str, str], ...]
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyQuery:
    """What a page of policies is filtered by (`Store.page_policies`).

    `visible_groups` and `visible_ids` restrict the result to what a caller may
    see: a policy is kept when its group is in `visible_groups` or its id in
    `visible_ids`; `visible_groups=None` means every group. The other fields
    narrow further; `search` is a case-insensitive substring of the id or the
    asset id; `text` is one of the latest document's JSON text (its id, asset id,
    description, content, rule ids and conditions, type and group; a word or
    phrase inside one value or key, ASCII letters folded to lower case).
    `order` is `id` (ascending) or `updated` (newest change first).
    """

    visible_groups: Collection[str] | None = None
    visible_ids: Collection[str] = ()
    policy_group: str | None = None
    policy_type: str | None = None
    status: PolicyStatus | None = None
    asset_id: str | None = None
    search: str | None = None
    order: str = "id"
    text: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyPage:
    """One page of policies and how many match in all."""

    records: tuple[PolicyRecord, ...]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class PolicyCount:
    """How many policies a (group, type, status) has: the facets of an overview."""

    policy_group: str
    type: str
    status: PolicyStatus
    count: int


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of `Store.search_audit`: who, what object, which period (`since`
    inclusive, `until` exclusive), and `before_id` to page back."""

    actor: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    action_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class Revisions:
    """The repository's counters (see the module docstring): every change, what a PDP
    decides, what the Access Point compiles."""

    repository: int
    decisions: int
    access: int


class PublishedPolicy(NamedTuple):
    """A published policy as a decision point loads it: its published document as
    compact JSON text without its `content` (no decision reads it), packed
    (`pbgm.policy.published.pack`; plain JSON text is read too), and that
    document's `target` as JSON text (None when it has none), read apart so that the
    policy can be indexed without decoding the rest; `windowed`: it has a validity
    window; `timed`: its text mentions `current_time` (both may err towards yes).
    A named tuple rather than a frozen dataclass: a decision point reads 100,000 of
    them at a time, and a row of the database is made one without a copy."""

    id: str
    policy_group: str
    version: int
    document: bytes | str
    target: str | None
    windowed: bool
    timed: bool


@dataclass(frozen=True, slots=True)
class PublishedSet:
    """What `Store.read_published` gives a decision point, read in one transaction.

    `full`: `policies` are all the published policies of the group (or of every group),
    at decision revision `revision`. Otherwise a *delta* from the revision asked for:
    `policies` are those changed since that are published in the group now, `removed`
    the ids changed since that are not (they may never have been there). `group` is the
    policy group's record (None when no group was named or it does not exist).
    """

    revision: int
    full: bool
    group: PolicyGroup | None
    policies: tuple[PublishedPolicy, ...]
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Device:
    """A field device's 5G connection (a PMU, an inverter, a battery gateway, an RTU).

    `identifiers` is the CAMARA `Device` object that names it to the operator's
    network: `phoneNumber` (E.164 with `+`), `networkAccessIdentifier`,
    `ipv4Address` (`publicAddress` with `privateAddress` or `publicPort`) and
    `ipv6Address`, at least one of them. `owner` is who answers for it, `asset_id`
    the asset it serves (the `asset_id` of that asset's policies).
    """

    id: str
    identifiers: Mapping[str, Any]
    owner: str = ""
    asset_id: str | None = None
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceGroup:
    """A group of devices acted on together. CAMARA has no groups: pbgm keeps them
    and fans a group action out into one call per member (`members`, sorted)."""

    id: str
    description: str = ""
    members: tuple[str, ...] = ()
    created_at: datetime | None = None


NETWORK_RESOURCE_KINDS = (
    "qos_session",
    "qos_assignment",
    "reachability_subscription",
    "roaming_subscription",
    "network_type_subscription",
)
"""What pbgm holds at the operator for a device: a Quality-On-Demand session, a QoS
Provisioning assignment, or a Device Status subscription."""


@dataclass(frozen=True, slots=True)
class NetworkResource:
    """A resource pbgm created at the operator's network API for a device.

    `remote_id` is the operator's id (`sessionId`, `assignmentId`, subscription
    `id`); `status` the last one the operator gave (`REQUESTED`, `AVAILABLE`,
    `UNAVAILABLE`, `ACTIVE`, `EXPIRED`, ...). `sink_token_hash` is the SHA-256 (hex)
    of the bearer credential pbgm gave the operator for its notifications: a
    notification is accepted only with that credential, for this resource.
    """

    kind: str
    remote_id: str
    device_id: str
    status: str
    qos_profile: str | None = None
    duration_s: int | None = None
    started_at: datetime | None = None
    expires_at: datetime | None = None
    sink_token_hash: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """The connectivity of a device as last seen (a retrieval or a notification).

    `None` means not known. `connectivity` lists `DATA` and/or `SMS` (Device
    Reachability Status); `network_type` is `2G` ... `5G` or `UNKNOWN`.
    """

    device_id: str
    reachable: bool | None = None
    connectivity: tuple[str, ...] = ()
    roaming: bool | None = None
    country_code: int | None = None
    network_type: str | None = None
    last_status_time: datetime | None = None
    source: str = ""
    updated_at: datetime | None = None


@runtime_checkable
class Store(Protocol):
    """What the PAP, the Access Point, the CLI and the API need from a repository."""

    # -- revision and transactions
    def revision(self) -> int: ...
    def revisions(self) -> Revisions: ...
    def atomic(self) -> AbstractContextManager[Store]: ...

    # -- policies
    def get_policy(self, policy_id: str) -> PolicyRecord: ...
    def list_policies(
        self,
        *,
        policy_group: str | None = None,
        policy_type: str | None = None,
        asset_id: str | None = None,
        status: PolicyStatus | None = None,
    ) -> list[PolicyRecord]: ...
    def create_policy(
        self, document: Mapping[str, Any], *, actor: str, reason: str = ""
    ) -> PolicyRecord: ...
    def update_policy(
        self,
        policy_id: str,
        document: Mapping[str, Any],
        *,
        expected_version: int,
        actor: str,
        reason: str = "",
        action: str = "update",
    ) -> PolicyRecord: ...
    def set_policy_status(
        self,
        policy_id: str,
        status: PolicyStatus,
        *,
        actor: str,
        reason: str = "",
        version: int | None = None,
        expected_version: int | None = None,
    ) -> PolicyRecord:
        """Publish (the given `version`, default the latest) or retire a policy."""
        ...

    def page_policies(self, query: PolicyQuery, *, offset: int = 0, limit: int = 50) -> PolicyPage:
        """One page of the policies `query` selects, with the total that match.

        Sorted in the database and read with a limit, so a page of 10,000
        policies costs what a page of 10 does.
        """
        ...

    def policy_counts(self) -> list[PolicyCount]:
        """Number of policies per (group, type, status), sorted."""
        ...

    def create_policies(
        self,
        documents: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        reason: str = "",
        publish: bool = False,
    ) -> int:
        """`create_policy` for each document (then, with `publish`, `set_policy_status`
        PUBLISHED), in one transaction and in bulk: all or none (an id that exists, or
        twice, refuses the batch). Revisions, audit entries and the change feed are
        as the calls one by one would leave them. Returns how many were created."""
        ...

    def policy_versions(self, policy_id: str) -> list[PolicyVersion]: ...
    def get_policy_version(self, policy_id: str, version: int) -> PolicyVersion: ...
    def delete_policy(self, policy_id: str, *, actor: str, reason: str = "") -> None: ...
    def read_published(
        self, policy_group: str | None = None, *, since: int | None = None
    ) -> PublishedSet:
        """The published policies of `policy_group` (of every group when None): all of
        them, or with `since` (a decision revision) only what changed since, as long
        as the change feed reaches back that far (else all of them: `full`)."""
        ...

    # -- policy groups
    def put_policy_group(self, group: PolicyGroup, *, actor: str) -> PolicyGroup: ...
    def get_policy_group(self, group_id: str) -> PolicyGroup: ...
    def list_policy_groups(self) -> list[PolicyGroup]: ...

    # -- users, groups, memberships
    def add_user(self, user: User, *, actor: str) -> User: ...
    def get_user(self, name: str) -> User: ...
    def list_users(self) -> list[User]: ...
    def set_user_enabled(self, name: str, enabled: bool, *, actor: str) -> User: ...
    def set_user_password_hash(self, name: str, password_hash: str, *, actor: str) -> User: ...
    def add_group(self, group: Group, *, actor: str) -> Group: ...
    def get_group(self, name: str) -> Group: ...
    def list_groups(self) -> list[Group]: ...
    def add_member(self, group: str, user: str, *, actor: str) -> None: ...
    def remove_member(self, group: str, user: str, *, actor: str) -> None: ...
    def groups_of(self, principal: str) -> list[str]: ...
    def members_of(self, group: str) -> list[str]: ...

    # -- service accounts
    def add_service_account(self, account: ServiceAccount, *, actor: str) -> ServiceAccount: ...
    def get_service_account(self, client_id: str) -> ServiceAccount: ...
    def list_service_accounts(self) -> list[ServiceAccount]: ...
    def set_service_account_enabled(
        self, client_id: str, enabled: bool, *, actor: str
    ) -> ServiceAccount: ...
    def set_service_account_secret(
        self, client_id: str, secret_hash: str, *, actor: str
    ) -> ServiceAccount:
        """Replace the secret's hash (rotation); the old secret stops working."""
        ...

    def delete_service_account(self, client_id: str, *, actor: str) -> None: ...

    # -- grants
    def add_grant(self, grant: Grant, *, actor: str) -> Grant: ...
    def list_grants(
        self, *, principal: str | None = None, target: str | None = None
    ) -> list[Grant]: ...
    def set_grant_enabled(self, grant_id: int, enabled: bool, *, actor: str) -> Grant: ...
    def delete_grant(self, grant_id: int, *, actor: str) -> None: ...

    # -- FlexOffers (recorded, audited, but no change of the revision: they are
    #    not part of what a PDP evaluates)
    def add_flexoffer(self, offer: FlexOfferRecord, *, actor: str) -> FlexOfferRecord: ...
    def get_flexoffer(self, offer_id: str) -> FlexOfferRecord: ...
    def add_flexoffer_schedule(
        self,
        offer_id: str,
        document: Mapping[str, Any],
        *,
        state: str,
        reasons: Sequence[Mapping[str, str]] = (),
        actor: str,
    ) -> ScheduleRecord:
        """Record a schedule; an accepted one makes the offer `assigned`."""
        ...

    def list_flexoffer_schedules(self, offer_id: str) -> list[ScheduleRecord]: ...
    def list_flexoffers(
        self,
        *,
        policy_ids: Collection[str] | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[FlexOfferRecord]:
        """Recorded offers, newest first (then by id); `policy_ids` keeps the
        offers of those template policies only."""
        ...

    # -- devices, device groups, network resources and connectivity (audited; no
    #    change of the revision: decisions read them fresh, `pbgm.devices`)
    def add_device(self, device: Device, *, actor: str) -> Device: ...
    def update_device(self, device: Device, *, actor: str) -> Device: ...
    def get_device(self, device_id: str) -> Device: ...
    def list_devices(
        self, *, group: str | None = None, asset_id: str | None = None
    ) -> list[Device]: ...
    def delete_device(self, device_id: str, *, actor: str) -> None:
        """Also forgets its memberships, network resources and status."""
        ...

    def add_device_group(self, group: DeviceGroup, *, actor: str) -> DeviceGroup: ...
    def get_device_group(self, group_id: str) -> DeviceGroup: ...
    def list_device_groups(self) -> list[DeviceGroup]: ...
    def delete_device_group(self, group_id: str, *, actor: str) -> None: ...
    def add_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        """Add devices (all or none: an unknown device is `NotFoundError`); members
        already in the group stay as they are."""
        ...

    def remove_device_members(
        self, group_id: str, device_ids: Sequence[str], *, actor: str
    ) -> DeviceGroup:
        """Remove devices; ids that are not members are ignored."""
        ...

    def device_groups_of(self, device_id: str) -> list[str]: ...
    def put_network_resource(
        self,
        resource: NetworkResource,
        *,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
    ) -> NetworkResource:
        """Record a resource (new, or a new state of a known one: same kind and
        remote id), audited as `action` with `details`."""
        ...

    def record_device_outcomes(
        self,
        *,
        actor: str,
        resources: Sequence[tuple[NetworkResource, str, Mapping[str, Any]]] = (),
        audits: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> None:
        """Many outcomes of a group action at once, all or nothing: new `resources`, each
        audited as its `(resource, action, details)`, and audit entries about devices,
        `(device_id, action, details)`. A resource that exists already, or an unknown
        device, raises and records nothing (record those one by one)."""
        ...

    def get_network_resource(self, kind: str, remote_id: str) -> NetworkResource: ...
    def find_network_resource(self, sink_token_hash: str) -> NetworkResource: ...
    def list_network_resources(
        self, *, device_id: str | None = None, kind: str | None = None
    ) -> list[NetworkResource]: ...
    def delete_network_resource(
        self, kind: str, remote_id: str, *, actor: str, details: Mapping[str, Any] | None = None
    ) -> None: ...
    def put_device_status(self, status: DeviceStatus, *, actor: str) -> DeviceStatus: ...
    def get_device_status(self, device_id: str) -> DeviceStatus: ...
    def list_device_status(self) -> list[DeviceStatus]: ...

    # -- audit
    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry: ...
    def record_audits(self, items: Sequence[AuditItem]) -> int:
        """Append several entries in one transaction (all or none: an item that breaks a
        rule refuses the batch); the revision stays. Returns how many were written."""
        ...

    def record_audit_batch(self, items: Sequence[AuditItem]) -> int:
        """`record_audits` for many entries at a time (the decision log's writer): the
        same rules and the same stored details, checked on each entry's JSON text
        (`pbgm.store._audit_text`) and written with one prepared multi-row insert."""
        ...

    def list_audit(
        self, *, limit: int = 100, object_id: str | None = None, before_id: int | None = None
    ) -> list[AuditEntry]: ...
    def search_audit(self, query: AuditQuery, *, limit: int = 100) -> list[AuditEntry]:
        """The entries `query` selects, newest first."""
        ...

    def prune_audit(self, *, log: str, before: datetime, actor: str) -> int:
        """Delete the entries of `log` (`audit` or `decisions`: `is_decision_entry`)
        made before `before`, record an `audit.prune` entry saying so, and return how many
        went. The revision stays."""
        ...


def iter_published(store: Store, *, policy_group: str | None = None) -> Iterator[PolicyRecord]:
    """The published policies, in id order: what a PDP evaluates."""
    yield from store.list_policies(policy_group=policy_group, status=PolicyStatus.PUBLISHED)
