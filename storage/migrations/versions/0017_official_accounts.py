"""official accounts: many OAs on one deployment (the units file's `oas`); units belong to an
OA; conversations, outbox messages and token pairs are keyed by OA ("" = the environment's)

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oas",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("app_secret_ref", sa.String(length=120), nullable=False),
        sa.Column("oa_secret_key_ref", sa.String(length=120), nullable=False),
        sa.Column("access_token_ref", sa.String(length=120), nullable=True),
        sa.Column("refresh_token_ref", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oas")),
    )
    op.create_index(op.f("ix_oas_app_id"), "oas", ["app_id"], unique=False)
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("oa_id", sa.String(length=32), nullable=True))
        batch.create_index(batch.f("ix_units_oa_id"), ["oa_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_units_oa_id_oas"), "oas", ["oa_id"], ["id"])
    # Every row so far belongs to the environment's OA, whose key is "".
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("oa_id", sa.String(length=32), server_default=sa.text("''"), nullable=False)
        )
        batch.drop_constraint("pk_conversations", type_="primary")
        batch.create_primary_key("pk_conversations", ["user_id", "oa_id"])
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(
            sa.Column("oa_id", sa.String(length=32), server_default=sa.text("''"), nullable=False)
        )
        batch.create_index(
            "ix_outbox_messages_status_oa_user", ["status", "oa_id", "user_id", "id"]
        )
    with op.batch_alter_table("zalo_tokens") as batch:
        batch.add_column(
            sa.Column("oa_id", sa.String(length=32), server_default=sa.text("''"), nullable=False)
        )
        batch.create_unique_constraint(batch.f("uq_zalo_tokens_oa_id"), ["oa_id"])


def downgrade() -> None:
    with op.batch_alter_table("zalo_tokens") as batch:
        batch.drop_constraint("uq_zalo_tokens_oa_id", type_="unique")
        batch.drop_column("oa_id")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_messages_status_oa_user")
        batch.drop_column("oa_id")
    op.execute("DELETE FROM conversations WHERE oa_id <> ''")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("pk_conversations", type_="primary")
        batch.create_primary_key("pk_conversations", ["user_id"])
        batch.drop_column("oa_id")
    with op.batch_alter_table("units") as batch:
        batch.drop_constraint("fk_units_oa_id_oas", type_="foreignkey")
        batch.drop_index("ix_units_oa_id")
        batch.drop_column("oa_id")
    op.drop_index(op.f("ix_oas_app_id"), table_name="oas")
    op.drop_table("oas")
