"""An index on the time of audit entries, so that retention prunes old entries by age.

`pbgm audit prune` and `pbgm decisions prune` delete the entries older than a
cut-off in batches; without the index each batch would scan the whole log.

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
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
