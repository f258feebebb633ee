"""Retention of the audit log: an index on the time of entries, ids never reused.

`pbgm audit prune` and `pbgm decisions prune` delete the entries older than a
cut-off in batches; without the index each batch would scan the whole log. On
SQLite the table is rebuilt with `AUTOINCREMENT`, so that an id freed by a prune is
never given to a later entry (PostgreSQL's sequence never reuses one).

Revision ID: 0004_ops
Revises: 0003_security
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_ops"
down_revision: str | Sequence[str] | None = "0003_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "audit_log", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
