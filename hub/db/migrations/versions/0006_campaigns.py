"""Campaigns and their runs; notifications learn segments, local send times and throttles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("topic_id", ID, sa.ForeignKey("topics.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("template_key", sa.String(100), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("segment", JSON),
        sa.Column("channels", JSON),
        sa.Column("schedule", JSON, nullable=False),
        sa.Column("throttle", JSON),
        sa.Column("state", sa.String(32), nullable=False),
        _at("next_run_at", nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("approved_by", sa.String(255)),
        _at("approved_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_campaigns_state_next_run_at", "campaigns", ["state", "next_run_at"])
    op.create_table(
        "campaign_runs",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "campaign_id", ID, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
        ),
        _at("occurrence_at"),
        sa.Column("notification_id", ID, sa.ForeignKey("notifications.id", ondelete="SET NULL")),
        _at("created_at"),
        sa.UniqueConstraint("campaign_id", "occurrence_at"),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column(
                "campaign_id",
                ID,
                sa.ForeignKey(
                    "campaigns.id",
                    ondelete="SET NULL",
                    name="fk_notifications_campaign_id_campaigns",
                ),
            )
        )
        batch.add_column(sa.Column("segment", JSON))
        batch.add_column(sa.Column("local_at", sa.String(19)))
        batch.add_column(sa.Column("throttle", JSON))
        batch.add_column(sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_notifications_campaign_id", ["campaign_id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_campaign_id")
        batch.drop_column("held")
        batch.drop_column("throttle")
        batch.drop_column("local_at")
        batch.drop_column("segment")
        batch.drop_column("campaign_id")
    op.drop_table("campaign_runs")
    op.drop_table("campaigns")
