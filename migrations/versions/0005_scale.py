"""Decision points follow the repository: the decision and access revisions, the
change feed of decision points, and the published policies as decision points read them.

Revision ID: 0005_scale
Revises: 0004_admin
Create Date: 2026-12-06

`published_policies` is filled from the policies published already; the two new
revisions start at the repository revision (any start will do: readers compare them
for equality and order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005_scale"
down_revision: str | Sequence[str] | None = "0004_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(255)


def upgrade() -> None:
    with op.batch_alter_table("repository_revision") as table:
        table.add_column(
            sa.Column("decision_revision", sa.BigInteger(), server_default="0", nullable=False)
        )
        table.add_column(
            sa.Column("access_revision", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE repository_revision SET decision_revision = revision, access_revision = revision"
    )
    op.create_table(
        "decision_changes",
        sa.Column("revision", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("policy_id", NAME, nullable=True),
        sa.Column("policy_group", NAME, nullable=True),
        sa.PrimaryKeyConstraint("revision", name="pk_decision_changes"),
    )
    published = op.create_table(
        "published_policies",
        sa.Column("id", NAME, nullable=False),
        sa.Column("policy_group", NAME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("windowed", sa.Boolean(), nullable=False),
        sa.Column("timed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["policies.id"], name="fk_published_policies_id_policies", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_published_policies"),
    )
    op.create_index("ix_published_policies_policy_group", "published_policies", ["policy_group"])
    op.bulk_insert(published, list(_published_now()))


def _published_now() -> Any:
    """The rows of the policies published already, as the store's
    `pbgm.store._feed.decision_text` makes them (copied here, as history should be)."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT p.id, p.published_version, v.document FROM policies p "
            "JOIN policy_versions v ON v.policy_id = p.id AND v.version = p.published_version "
            "WHERE p.status = 'published'"
        )
    )
    compact = (",", ":")
    for policy_id, version, document in rows:
        data = json.loads(document) if isinstance(document, str) else document
        lean = {k: v for k, v in data.items() if k not in ("content", "description")}
        if isinstance(data.get("rules"), list):
            lean["rules"] = [
                {k: v for k, v in r.items() if k != "description"} if isinstance(r, dict) else r
                for r in data["rules"]
            ]
        text = json.dumps(lean, separators=compact)
        target = data.get("target")
        yield {
            "id": policy_id,
            "policy_group": data.get("policy_group"),
            "version": version,
            "document": text,
            "target": None if target is None else json.dumps(target, separators=compact),
            "windowed": data.get("valid_from") is not None or data.get("valid_until") is not None,
            "timed": "current_time" in text,
        }


def downgrade() -> None:
    op.drop_index("ix_published_policies_policy_group", table_name="published_policies")
    op.drop_table("published_policies")
    op.drop_table("decision_changes")
    with op.batch_alter_table("repository_revision") as table:
        table.drop_column("access_revision")
        table.drop_column("decision_revision")
