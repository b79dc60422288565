"""survey channels: where each survey was answered, and the kiosk tablet that took it

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every survey stored so far came through Zalo: the server default says so.
    with op.batch_alter_table("survey_responses") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), server_default="zalo", nullable=False)
        )
        batch.add_column(sa.Column("device_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_survey_responses_device_id_devices", "devices", ["device_id"], ["id"]
        )
        batch.create_index("ix_survey_responses_device_started", ["device_id", "started_at"])


def downgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_index("ix_survey_responses_device_started")
        batch.drop_constraint("fk_survey_responses_device_id_devices", type_="foreignkey")
        batch.drop_column("device_id")
        batch.drop_column("channel")
