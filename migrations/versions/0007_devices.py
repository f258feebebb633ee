"""5G device management: devices, device groups, network resources, device status.

Devices carry their CAMARA identifiers (the phone number and network access
identifier unique across devices); groups and their members are pbgm's own (CAMARA
has no groups); network resources are the QoS sessions, QoS assignments and status
subscriptions pbgm holds at the operator, with the hash of the sink credential its
notifications must carry; device status is the connectivity last seen.

Revision ID: 0007_devices
Revises: 0006_ops
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_devices"
down_revision: str | Sequence[str] | None = "0006_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(255)
DEVICE_ID = sa.String(100)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KINDS = (
    "qos_session",
    "qos_assignment",
    "reachability_subscription",
    "roaming_subscription",
    "network_type_subscription",
)


def _time(nullable: bool = False) -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _device_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["device_id"], ["devices.id"], name=f"fk_{table}_device_id_devices", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", DEVICE_ID, nullable=False),
        sa.Column("identifiers", JSON, nullable=False),
        sa.Column("phone_number", sa.String(16), nullable=True),
        sa.Column("network_access_identifier", sa.String(256), nullable=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("asset_id", NAME, nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("phone_number", name="uq_devices_phone_number"),
        sa.UniqueConstraint(
            "network_access_identifier", name="uq_devices_network_access_identifier"
        ),
    )
    op.create_index("ix_devices_asset_id", "devices", ["asset_id"])
    op.create_table(
        "device_groups",
        sa.Column("id", DEVICE_ID, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_device_groups"),
    )
    op.create_table(
        "device_members",
        sa.Column("group_id", DEVICE_ID, nullable=False),
        sa.Column("device_id", DEVICE_ID, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "device_id", name="pk_device_members"),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["device_groups.id"],
            name="fk_device_members_group_id_device_groups",
            ondelete="CASCADE",
        ),
        _device_fk("device_members"),
    )
    op.create_index("ix_device_members_device_id", "device_members", ["device_id"])
    op.create_table(
        "network_resources",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("remote_id", NAME, nullable=False),
        sa.Column("device_id", DEVICE_ID, nullable=False),
        sa.Column("status", NAME, nullable=False),
        sa.Column("qos_profile", NAME, nullable=True),
        sa.Column("duration_s", sa.BigInteger(), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("expires_at", _time(), nullable=True),
        sa.Column("sink_token_hash", sa.String(64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "remote_id", name="pk_network_resources"),
        sa.UniqueConstraint("sink_token_hash", name="uq_network_resources_sink_token_hash"),
        sa.CheckConstraint(
            f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="ck_network_resources_kind"
        ),
        _device_fk("network_resources"),
    )
    op.create_index("ix_network_resources_device_id", "network_resources", ["device_id"])
    op.create_table(
        "device_status",
        sa.Column("device_id", DEVICE_ID, nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=True),
        sa.Column("connectivity", JSON, nullable=False),
        sa.Column("roaming", sa.Boolean(), nullable=True),
        sa.Column("country_code", sa.Integer(), nullable=True),
        sa.Column("network_type", sa.String(16), nullable=True),
        sa.Column("last_status_time", _time(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_status"),
        _device_fk("device_status"),
    )


def downgrade() -> None:
    op.drop_table("device_status")
    op.drop_index("ix_network_resources_device_id", table_name="network_resources")
    op.drop_table("network_resources")
    op.drop_index("ix_device_members_device_id", table_name="device_members")
    op.drop_table("device_members")
    op.drop_table("device_groups")
    op.drop_index("ix_devices_asset_id", table_name="devices")
    op.drop_table("devices")
