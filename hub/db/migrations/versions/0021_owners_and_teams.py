"""Who looks after whom (issue 21): a contact's owner (an employee contact) and teams.

- `contacts.owner_id`: the employee who looks after this client; an owner's erasure leaves
  the client unowned (SET NULL), never deletes them;
- `teams` and `team_members`: employees and clients belong to teams; a member's or a team's
  removal removes only the membership;
- `subscriptions.scope`: for the topics fed by clients' events, whose clients an employee
  hears about: `mine`, `teams` or `all` (NULL for every other topic);
- `staff_users.contact_id`: the console user's own employee record, for "my clients".

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column(
                "owner_id",
                ID,
                sa.ForeignKey(
                    "contacts.id", ondelete="SET NULL", name="fk_contacts_owner_id_contacts"
                ),
            )
        )
        batch.create_index("ix_contacts_owner_id", ["owner_id"])
    op.create_table(
        "teams",
        sa.Column("id", ID),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("key", name="uq_teams_key"),
    )
    op.create_table(
        "team_members",
        sa.Column(
            "team_id",
            ID,
            sa.ForeignKey("teams.id", ondelete="CASCADE", name="fk_team_members_team_id_teams"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            ID,
            sa.ForeignKey(
                "contacts.id", ondelete="CASCADE", name="fk_team_members_contact_id_contacts"
            ),
            nullable=False,
        ),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "contact_id", name="pk_team_members"),
    )
    op.create_index("ix_team_members_contact_id", "team_members", ["contact_id"])
    op.add_column("subscriptions", sa.Column("scope", sa.String(16)))
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column(
                "contact_id",
                ID,
                sa.ForeignKey(
                    "contacts.id", ondelete="SET NULL", name="fk_staff_users_contact_id_contacts"
                ),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("contact_id")
    op.drop_column("subscriptions", "scope")
    op.drop_index("ix_team_members_contact_id", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_owner_id")
        batch.drop_column("owner_id")
