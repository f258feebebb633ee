"""Published documents packed: `published_policies.document` becomes binary, each row's
compact JSON deflated with pbgm's preset dictionary (`pbgm.policy.published.pack`,
format 1, fixed for good), a fifth of its size in the database and in every decision
point that loads it.

Revision ID: 0009_packed_published
Revises: 0008_policy_text
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from pbgm.policy.published import pack, unpack

revision: str = "0009_packed_published"
down_revision: str | Sequence[str] | None = "0008_policy_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2_000


def upgrade() -> None:
    with op.batch_alter_table("published_policies") as table:
        table.alter_column(
            "document",
            type_=sa.LargeBinary(),
            existing_type=sa.Text(),
            existing_nullable=False,
            postgresql_using="convert_to(document, 'UTF8')",
        )
    _rewrite(lambda value: pack(_text(value)))


def downgrade() -> None:
    _rewrite(lambda value: _text(unpack(value)).encode())
    if op.get_bind().dialect.name == "sqlite":  # the bytes become text before the copy
        op.execute("UPDATE published_policies SET document = CAST(document AS TEXT)")
    with op.batch_alter_table("published_policies") as table:
        table.alter_column(
            "document",
            type_=sa.Text(),
            existing_type=sa.LargeBinary(),
            existing_nullable=False,
            postgresql_using="convert_from(document, 'UTF8')",
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else bytes(value).decode()


def _rewrite(change: Callable[[Any], bytes]) -> None:
    """Every row's document through `change`, in batches."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, document FROM published_policies")).all()
    update = sa.text("UPDATE published_policies SET document = :document WHERE id = :id")
    update = update.bindparams(sa.bindparam("document", type_=sa.LargeBinary()))
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        bind.execute(update, [{"id": i, "document": change(d)} for i, d in batch])
