"""Staff sessions kept server-side, so sign-out, a password change and disabling a user end
them at once (a signed cookie alone stayed valid until it expired).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "user_id", ID, sa.ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False
        ),
        _at("created_at"),
        _at("last_seen_at"),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
        sa.Column("revoked_reason", sa.String(32)),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_agent", sa.String(300)),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("staff_sessions")
