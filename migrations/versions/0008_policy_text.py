"""Text search of policies: a trigram index over the latest document's JSON text.

The admin GUI's search (`PolicyQuery.text`) is a case-insensitive substring of
`lower(document::text)`; on PostgreSQL a GIN trigram index (`pg_trgm`, a trusted
extension a database owner may create) answers it for a word of three or more
characters without reading every document. Where the extension cannot be made,
the index is left out and the search reads the table (still correct). SQLite
has no such index.

Revision ID: 0008_policy_text
Revises: 0007_devices
Create Date: 2026-12-06
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_policy_text"
down_revision: str | Sequence[str] | None = "0007_devices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_policies_document_text"
log = logging.getLogger(__name__)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as error:
        log.warning("no pg_trgm (%s): policy text search reads the table", error.orig)
        return
    bind.execute(
        sa.text(
            f"CREATE INDEX {INDEX} ON policies "
            "USING gin ((lower(CAST(document AS TEXT))) gin_trgm_ops)"
        )
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
