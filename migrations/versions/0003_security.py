"""Service accounts get a token generation: tokens are bound to one instance of an account.

A token carries the generation of the account it was issued for; deleting and
re-creating the account, or disabling and enabling it, changes the generation and
so revokes every older token. Existing accounts get a fresh random generation
(tokens issued before this migration carry none and are refused: clients fetch a
new one on their next 401).

Revision ID: 0003_security
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_security"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACCOUNTS = sa.table(
    "service_accounts",
    sa.column("client_id", sa.String(255)),
    sa.column("token_generation", sa.String(64)),
)


def upgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.add_column(sa.Column("token_generation", sa.String(64), nullable=True))
    connection = op.get_bind()
    client_ids = connection.execute(sa.select(_ACCOUNTS.c.client_id)).scalars().all()
    for client_id in client_ids:
        connection.execute(
            _ACCOUNTS.update()
            .where(_ACCOUNTS.c.client_id == client_id)
            .values(token_generation=secrets.token_urlsafe(16))
        )
    with op.batch_alter_table("service_accounts") as batch:
        batch.alter_column("token_generation", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.drop_column("token_generation")
