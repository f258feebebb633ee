"""The initial schema: policies and their history, policy groups, principals,
grants, the audit log and the repository revision.

Constraint names follow the naming convention of `pbgm.store.sql.tables`.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(255)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
GRANT_KEY = ("principal_kind", "principal", "target_kind", "target", "permission")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _grant_principal_check() -> str:
    columns = {"user": "user_name", "group": "group_name", "service": "client_id"}
    cases = []
    for kind, own in columns.items():
        others = " AND ".join(f"{c} IS NULL" for c in columns.values() if c != own)
        cases.append(
            f"(principal_kind = '{kind}' AND {own} IS NOT NULL AND {own} = principal AND {others})"
        )
    return " OR ".join(cases)


def _policies() -> None:
    op.create_table(
        "policies",
        sa.Column("id", NAME, nullable=False),
        sa.Column("type", NAME, nullable=False),
        sa.Column("policy_group", NAME, nullable=False),
        sa.Column("asset_id", NAME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document_format", sa.String(32), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("updated_by", NAME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'retired')", name="ck_policies_status"
        ),
    )
    op.create_index("ix_policies_type", "policies", ["type"])
    op.create_index("ix_policies_policy_group", "policies", ["policy_group"])
    op.create_index("ix_policies_status", "policies", ["status"])
    op.create_index("ix_policies_asset_id_type", "policies", ["asset_id", "type"])
    op.create_table(
        "policy_versions",
        sa.Column("policy_id", NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("author", NAME, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("policy_id", "version", name="pk_policy_versions"),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_policy_versions_policy_id_policies",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "action IN ('create', 'update', 'rollback')", name="ck_policy_versions_action"
        ),
    )
    op.create_table(
        "policy_groups",
        sa.Column("id", NAME, nullable=False),
        sa.Column("policy_combining", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_groups"),
    )


def _principals() -> None:
    op.create_table(
        "users",
        sa.Column("name", NAME, nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "groups",
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_groups"),
    )
    op.create_table(
        "memberships",
        sa.Column("group_name", NAME, nullable=False),
        sa.Column("user_name", NAME, nullable=False),
        sa.PrimaryKeyConstraint("group_name", "user_name", name="pk_memberships"),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["groups.name"],
            name="fk_memberships_group_name_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["users.name"],
            name="fk_memberships_user_name_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_memberships_user_name", "memberships", ["user_name"])
    op.create_table(
        "service_accounts",
        sa.Column("client_id", NAME, nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_service_accounts"),
    )


def _grants() -> None:
    """A grant names its principal in one foreign-key column; a policy target has
    no foreign key (grants may come before the policy they cover)."""
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal", NAME, nullable=False),
        sa.Column("user_name", NAME, nullable=True),
        sa.Column("group_name", NAME, nullable=True),
        sa.Column("client_id", NAME, nullable=True),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target", NAME, nullable=False),
        sa.Column("policy_group_id", NAME, nullable=True),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
        sa.UniqueConstraint(*GRANT_KEY, name="uq_grants_key"),
        sa.CheckConstraint(_grant_principal_check(), name="ck_grants_principal"),
        sa.CheckConstraint(
            "(target_kind = 'policy' AND policy_group_id IS NULL) OR "
            "(target_kind = 'policy_group' AND policy_group_id IS NOT NULL"
            " AND policy_group_id = target)",
            name="ck_grants_target",
        ),
        sa.CheckConstraint("permission IN ('read', 'write', 'admin')", name="ck_grants_permission"),
        sa.ForeignKeyConstraint(
            ["user_name"], ["users.name"], name="fk_grants_user_name_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["groups.name"],
            name="fk_grants_group_name_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["service_accounts.client_id"],
            name="fk_grants_client_id_service_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_group_id"],
            ["policy_groups.id"],
            name="fk_grants_policy_group_id_policy_groups",
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,  # grant ids are never reused
    )
    op.create_index("ix_grants_principal", "grants", ["principal"])
    op.create_index("ix_grants_target", "grants", ["target"])


def _audit_and_revision() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("actor", NAME, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", NAME, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_object_id", "audit_log", ["object_id"])
    revision_table = op.create_table(
        "repository_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repository_revision"),
        sa.CheckConstraint("id = 1", name="ck_repository_revision_single_row"),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])


def upgrade() -> None:
    _policies()
    _principals()
    _grants()
    _audit_and_revision()


def downgrade() -> None:
    for table in (
        "repository_revision",
        "audit_log",
        "grants",
        "service_accounts",
        "memberships",
        "groups",
        "users",
        "policy_groups",
        "policy_versions",
        "policies",
    ):
        op.drop_table(table)
