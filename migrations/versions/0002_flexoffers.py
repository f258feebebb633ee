"""FlexOffers received over the REST API, with their state, and their schedules.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(255)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OFFER_STATES = (
    "initial",
    "offered",
    "accepted",
    "rejected",
    "assigned",
    "executed",
    "invalid",
    "canceled",
)


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "flexoffers",
        sa.Column("id", NAME, nullable=False),
        sa.Column("policy_id", NAME, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("offered_by", NAME, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flexoffers"),
        sa.CheckConstraint(_in("state", OFFER_STATES), name="ck_flexoffers_state"),
    )
    op.create_index("ix_flexoffers_policy_id", "flexoffers", ["policy_id"])
    op.create_table(
        "flexoffer_schedules",
        sa.Column("offer_id", NAME, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("offer_id", "number", name="pk_flexoffer_schedules"),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["flexoffers.id"],
            name="fk_flexoffer_schedules_offer_id_flexoffers",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            _in("state", ("accepted", "rejected")), name="ck_flexoffer_schedules_state"
        ),
    )


def downgrade() -> None:
    op.drop_table("flexoffer_schedules")
    op.drop_index("ix_flexoffers_policy_id", table_name="flexoffers")
    op.drop_table("flexoffers")
