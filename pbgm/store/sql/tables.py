"""The tables of the SQL store: SQLAlchemy classes, separate from the domain records.

`metadata` is what Alembic compares against (`migrations/env.py` imports it and
nothing else); the schema itself is only ever created by the migrations. Every
constraint is named through `NAMING_CONVENTION`, so that autogenerate sees no drift
and later migrations can drop constraints by name on SQLite and PostgreSQL alike.

Foreign keys and a decision on grants: grants name their principal through one of
`user_name`, `group_name` or `client_id` (each a foreign key, cascading on delete)
and repeat it in `principal`; a grant on a policy group references
`policy_groups`, but a grant on a policy does not reference `policies`, because
grants are often imported before the policies they cover and survive a policy
being deleted and re-created under the same id. Check constraints keep the
columns consistent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    cast,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pbgm.store._flexoffer_rules import FLEXOFFER_STATES, SCHEDULE_STATES
from pbgm.store.base import NETWORK_RESOURCE_KINDS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 255
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


def _name(*args: Any, **kwargs: Any) -> Mapped[Any]:
    return mapped_column(String(NAME_LENGTH), *args, **kwargs)


def _in(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({listed})"


class PolicyRow(Base):
    """A policy: its latest document plus the indexed fields queries filter on."""

    __tablename__ = "policies"
    __table_args__ = (
        CheckConstraint(_in("status", ("draft", "published", "retired")), name="status"),
        Index("ix_policies_asset_id_type", "asset_id", "type"),
    )

    id: Mapped[str] = _name(primary_key=True)
    type: Mapped[str] = _name(index=True)
    policy_group: Mapped[str] = _name(index=True)
    asset_id: Mapped[str | None] = _name(nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document_format: Mapped[str] = mapped_column(String(32))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_by: Mapped[str] = _name()


Index(
    "ix_policies_document_text",
    func.lower(cast(PolicyRow.document, Text)).label("document_text"),
    postgresql_using="gin",
    postgresql_ops={"document_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
"""The text search of policies (`PolicyQuery.text`) on PostgreSQL: trigrams of the
document's JSON text (migration 0008_policy_text; needs the `pg_trgm` extension)."""


class PublishedRow(Base):
    """A published policy as decision points read it, one row per published policy
    (`pbgm.store._feed.decision_text`): the group of its published version, that
    version's document as compact JSON without `content` or descriptions, packed
    (`pbgm.policy.published.pack`), its target,
    whether it has a validity window and whether it mentions `current_time`. A narrow
    table of its own, so that loading 100,000 reads no other column."""

    __tablename__ = "published_policies"

    id: Mapped[str] = _name(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    policy_group: Mapped[str] = _name(index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    windowed: Mapped[bool]
    timed: Mapped[bool]


class PolicyVersionRow(Base):
    """One version of a policy: the full history, kept until the policy is deleted."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        CheckConstraint(_in("action", ("create", "update", "rollback")), name="action"),
    )

    policy_id: Mapped[str] = _name(ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    author: Mapped[str] = _name()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))


class PolicyGroupRow(Base):
    __tablename__ = "policy_groups"

    id: Mapped[str] = _name(primary_key=True)
    policy_combining: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = _name(primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool]
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GroupRow(Base):
    __tablename__ = "groups"

    name: Mapped[str] = _name(primary_key=True)
    description: Mapped[str] = mapped_column(Text)


class MembershipRow(Base):
    __tablename__ = "memberships"

    group_name: Mapped[str] = _name(ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True)
    user_name: Mapped[str] = _name(
        ForeignKey("users.name", ondelete="CASCADE"), primary_key=True, index=True
    )


class ServiceAccountRow(Base):
    """A machine principal; only the hash of its secret is stored.

    `token_generation` (random, changed on every enable or disable) binds tokens to
    this instance of the account: see `pbgm.store.base.ServiceAccount`.
    """

    __tablename__ = "service_accounts"

    client_id: Mapped[str] = _name(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(Json)
    enabled: Mapped[bool]
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    token_generation: Mapped[str] = mapped_column(String(64))


def _principal_check() -> str:
    """Exactly the column of `principal_kind` is set, and it equals `principal`."""
    columns = {"user": "user_name", "group": "group_name", "service": "client_id"}
    cases = []
    for kind, own in columns.items():
        others = " AND ".join(f"{c} IS NULL" for c in columns.values() if c != own)
        cases.append(
            f"(principal_kind = '{kind}' AND {own} IS NOT NULL AND {own} = principal AND {others})"
        )
    return " OR ".join(cases)


_TARGET_CHECK = (
    "(target_kind = 'policy' AND policy_group_id IS NULL) OR "
    "(target_kind = 'policy_group' AND policy_group_id IS NOT NULL AND policy_group_id = target)"
)


_GRANT_KEY = ("principal_kind", "principal", "target_kind", "target", "permission")


class GrantRow(Base):
    """`principal` may `permission` on `target`; see the module docstring on keys."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint(*_GRANT_KEY, name="uq_grants_key"),
        CheckConstraint(_principal_check(), name="principal"),
        CheckConstraint(_TARGET_CHECK, name="target"),
        CheckConstraint(_in("permission", ("read", "write", "admin")), name="permission"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal: Mapped[str] = _name(index=True)
    user_name: Mapped[str | None] = _name(
        ForeignKey("users.name", ondelete="CASCADE"), nullable=True
    )
    group_name: Mapped[str | None] = _name(
        ForeignKey("groups.name", ondelete="CASCADE"), nullable=True
    )
    client_id: Mapped[str | None] = _name(
        ForeignKey("service_accounts.client_id", ondelete="CASCADE"), nullable=True
    )
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = _name(index=True)
    policy_group_id: Mapped[str | None] = _name(
        ForeignKey("policy_groups.id", ondelete="CASCADE"), nullable=True
    )
    permission: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool]
    created_by: Mapped[str] = _name()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditRow(Base):
    """An audit entry, written in the same transaction as the change it records."""

    __tablename__ = "audit_log"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never come back after a prune

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # retention prunes by age
    actor: Mapped[str] = _name(index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = _name(index=True)
    details: Mapped[dict[str, Any]] = mapped_column(Json)


class RevisionRow(Base):
    """The single row holding the repository's revisions (id 1, made by the migration).

    Writers bump `revision` first (`UPDATE ... RETURNING`), which on PostgreSQL also
    serialises concurrent writers on its row lock; `decision_revision` and
    `access_revision` move with the changes they count (`pbgm.store.base`).
    """

    __tablename__ = "repository_revision"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
    decision_revision: Mapped[int] = mapped_column(BigInteger, server_default="0")
    access_revision: Mapped[int] = mapped_column(BigInteger, server_default="0")


class DecisionChangeRow(Base):
    """The change feed of decision points (`pbgm.store._feed`): one row per decision
    revision, naming the policy changed (or, with `policy_id` null, the policy group)."""

    __tablename__ = "decision_changes"

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    policy_id: Mapped[str | None] = _name(nullable=True)
    policy_group: Mapped[str | None] = _name(nullable=True)


class FlexOfferRow(Base):
    """A FlexOffer received over the API and the state pbgm gave it.

    `policy_id` names the template policy without a foreign key: the record of
    what was decided outlives a policy being deleted.
    """

    __tablename__ = "flexoffers"
    __table_args__ = (
        CheckConstraint(
            _in("state", FLEXOFFER_STATES),
            name="state",
        ),
    )

    id: Mapped[str] = _name(primary_key=True)
    policy_id: Mapped[str] = _name(index=True)
    state: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    reasons: Mapped[list[dict[str, str]]] = mapped_column(Json)
    offered_by: Mapped[str] = _name()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FlexOfferScheduleRow(Base):
    """A schedule sent for a FlexOffer: numbered per offer, accepted or rejected."""

    __tablename__ = "flexoffer_schedules"
    __table_args__ = (CheckConstraint(_in("state", SCHEDULE_STATES), name="state"),)

    offer_id: Mapped[str] = _name(ForeignKey("flexoffers.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    reasons: Mapped[list[dict[str, str]]] = mapped_column(Json)
    created_by: Mapped[str] = _name()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceRow(Base):
    """A field device and the CAMARA identifiers that name it to the operator.

    `identifiers` is the CAMARA `Device` object; its phone number and network
    access identifier are repeated in unique columns, so no two devices share one.
    """

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    identifiers: Mapped[dict[str, Any]] = mapped_column(Json)
    phone_number: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)
    network_access_identifier: Mapped[str | None] = mapped_column(
        String(256), nullable=True, unique=True
    )
    owner: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str | None] = _name(nullable=True, index=True)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceGroupRow(Base):
    """A device group; CAMARA has none, pbgm fans group actions out per member."""

    __tablename__ = "device_groups"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceMemberRow(Base):
    __tablename__ = "device_members"

    group_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("device_groups.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class NetworkResourceRow(Base):
    """A QoS session, QoS assignment or status subscription pbgm holds at the
    operator for a device; `sink_token_hash` finds it from a notification."""

    __tablename__ = "network_resources"
    __table_args__ = (CheckConstraint(_in("kind", NETWORK_RESOURCE_KINDS), name="kind"),)

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    remote_id: Mapped[str] = _name(primary_key=True)
    device_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = _name()
    qos_profile: Mapped[str | None] = _name(nullable=True)
    duration_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sink_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    details: Mapped[dict[str, Any]] = mapped_column(Json)
    created_by: Mapped[str] = _name()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DeviceStatusRow(Base):
    """The connectivity of a device as last seen (retrieved or notified)."""

    __tablename__ = "device_status"

    device_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    reachable: Mapped[bool | None] = mapped_column(nullable=True)
    connectivity: Mapped[list[str]] = mapped_column(Json)
    roaming: Mapped[bool | None] = mapped_column(nullable=True)
    country_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    network_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_status_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
