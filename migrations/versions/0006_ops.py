"""Retention of the audit log: ids never reused.

`pbgm audit prune` and `pbgm decisions prune` delete the entries older than a
cut-off in batches (by the index on the time of entries that 0004_admin made). On
SQLite the table is rebuilt with `AUTOINCREMENT`, so that an id freed by a prune is
never given to a later entry (PostgreSQL's sequence never reuses one).

Revision ID: 0006_ops
Revises: 0005_scale
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_ops"
down_revision: str | Sequence[str] | None = "0005_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "audit_log", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
