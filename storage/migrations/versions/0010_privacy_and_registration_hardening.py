"""privacy and leader registration hardening: units.leader_approval, pending subscriptions,
the unit a wrong registration code named, and registration lockouts

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("leader_approval", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("leader_subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("registration_failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_registration_failures_unit_id_units"), "units", ["unit_id"], ["id"]
        )
        batch_op.create_index("ix_registration_failures_failed", ["failed_at"], unique=False)
        batch_op.create_index(
            "ix_registration_failures_unit_failed", ["unit_id", "failed_at"], unique=False
        )
    op.create_table(
        "registration_lockouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_registration_lockouts_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_lockouts")),
    )
    with op.batch_alter_table("registration_lockouts", schema=None) as batch_op:
        batch_op.create_index("ix_registration_lockouts_until", ["locked_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("registration_lockouts", schema=None) as batch_op:
        batch_op.drop_index("ix_registration_lockouts_until")
    op.drop_table("registration_lockouts")
    with op.batch_alter_table("registration_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_registration_failures_unit_failed")
        batch_op.drop_index("ix_registration_failures_failed")
        batch_op.drop_constraint(
            batch_op.f("fk_registration_failures_unit_id_units"), type_="foreignkey"
        )
        batch_op.drop_column("unit_id")
    with op.batch_alter_table("leader_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("pending")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("leader_approval")
