"""Client events for the employees who look after them (issue 21): the outbox.

`client_event_messages` holds a client's timeline event (a reply, a refusal, a failure, a
preference change, a click) from the transaction that recorded it until the one that turns
it into notifications for the employees subscribed to its system topic. Erasing the client
removes what was not yet told (CASCADE); `notifications.about_contact_id` names the client a
told one is about, so the erasure can blank it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "client_event_messages",
        sa.Column("id", ID),
        sa.Column(
            "contact_id",
            ID,
            sa.ForeignKey(
                "contacts.id",
                ondelete="CASCADE",
                name="fk_client_event_messages_contact_id_contacts",
            ),
            nullable=False,
        ),
        sa.Column("topic_key", sa.String(100), nullable=False),
        sa.Column("event", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_client_event_messages"),
    )
    op.create_index("ix_client_event_messages_contact_id", "client_event_messages", ["contact_id"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column(
                "about_contact_id",
                ID,
                sa.ForeignKey(
                    "contacts.id",
                    ondelete="SET NULL",
                    name="fk_notifications_about_contact_id_contacts",
                ),
            )
        )
        batch.create_index("ix_notifications_about_contact_id", ["about_contact_id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_about_contact_id")
        batch.drop_column("about_contact_id")
    op.drop_index("ix_client_event_messages_contact_id", table_name="client_event_messages")
    op.drop_table("client_event_messages")
