"""The template version a notification was written from, and an import's heartbeat.

A notification already kept the parts it rendered; now it names the version too, so its page
can link to that version's history. An import running in the background writes its counts
every batch; `updated_at` says when it last did, so one whose process was killed is seen as
stopped instead of "running" for ever.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("template_version", sa.Integer()))
    op.add_column("import_jobs", sa.Column("updated_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("import_jobs", "updated_at")
    op.drop_column("notifications", "template_version")
