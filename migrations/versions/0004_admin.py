"""Indexes for the admin GUI's paged reads: the latest changed policies, the audit
log by actor and period, FlexOffers newest first.

Revision ID: 0004_admin
Revises: 0003_security
Create Date: 2026-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_admin"
down_revision: str | Sequence[str] | None = "0003_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_policies_updated_at", "policies", "updated_at"),
    ("ix_audit_log_actor", "audit_log", "actor"),
    ("ix_audit_log_at", "audit_log", "at"),
    ("ix_flexoffers_created_at", "flexoffers", "created_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
