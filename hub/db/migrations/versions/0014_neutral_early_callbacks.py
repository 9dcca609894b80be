"""Early status callbacks kept in Hub's words: who sent each, the delivery state it means, the
reason and error the delivery will keep, and the suppression it asks for. The provider's reader
puts a callback in these words when it arrives, so the dispatcher that applies it once its
send is recorded names no provider.

Rows parked before this revision held only Twilio's words; they are read here, once, with
what Twilio's words meant at this revision.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Twilio's status words as Hub read them at 0013 (frozen: a migration never imports the app).
SENT = ("accepted", "scheduled", "queued", "sending", "sent", "initiated", "ringing", "in-progress")
DELIVERED = ("delivered", "read", "completed")
FAILED = ("undelivered", "failed", "canceled", "busy", "no-answer")


def upgrade() -> None:
    with op.batch_alter_table("early_callbacks") as batch:
        batch.add_column(sa.Column("provider", sa.String(32)))
        batch.add_column(sa.Column("state", sa.String(32)))
        batch.add_column(sa.Column("reason", sa.String(64)))
        batch.add_column(sa.Column("error", sa.String(255)))
        batch.add_column(sa.Column("suppress", sa.String(32)))
    parked = sa.table(
        "early_callbacks",
        *(
            sa.column(name, sa.String)
            for name in (
                "provider",
                "state",
                "status",
                "reason",
                "error",
                "error_code",
                "answered_by",
                "suppress",
            )
        ),
    )
    for state, words in (("sent", SENT), ("delivered", DELIVERED), ("failed", FAILED)):
        op.execute(
            parked.update().where(parked.c.status.in_(words)).values(provider="twilio", state=state)
        )
    op.execute(
        parked.update()
        .where(parked.c.state == "failed")
        .values(
            reason=sa.literal("twilio:") + parked.c.status,
            error=sa.literal("Twilio reported ") + parked.c.status,
        )
    )
    op.execute(
        parked.update()
        .where(
            parked.c.state.in_(("sent", "delivered")),
            parked.c.answered_by.is_not(None),
            parked.c.answered_by != "human",
        )
        .values(reason=sa.literal("answered_by:") + parked.c.answered_by)
    )
    op.execute(
        parked.update()
        .where(parked.c.state.is_not(None), parked.c.error_code == "21610")
        .values(suppress="carrier_opt_out")
    )


def downgrade() -> None:
    with op.batch_alter_table("early_callbacks") as batch:
        batch.drop_column("suppress")
        batch.drop_column("error")
        batch.drop_column("reason")
        batch.drop_column("state")
        batch.drop_column("provider")
