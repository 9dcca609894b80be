"""The installation's own token, which every Message-ID and VERP address now carries, and the
bounce and complaint reports that named no delivery of this installation's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    token = base64.b32encode(secrets.token_bytes(5)).decode().lower()[:6]
    op.bulk_insert(installation, [{"id": 1, "token": token, "created_at": dt.datetime.now(dt.UTC)}])
    op.create_table(
        "unmatched_reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("why", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(998)),
        sa.Column("recipients", sa.String(2048)),
        sa.Column("status", sa.String(32)),
        sa.Column("detail", sa.Text()),
    )
    op.create_index("ix_unmatched_reports_received_at", "unmatched_reports", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_unmatched_reports_received_at", table_name="unmatched_reports")
    op.drop_table("unmatched_reports")
    op.drop_table("installation")
