"""order followers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_follower",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["work_order.id"], name=op.f("fk_order_follower_order_id_work_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_follower")),
        sa.UniqueConstraint("order_id", "openid", name=op.f("uq_order_follower_order_id")),
    )
    with op.batch_alter_table("order_follower", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_follower_openid"), ["openid"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_follower_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_follower", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_follower_order_id"))
        batch_op.drop_index(batch_op.f("ix_order_follower_openid"))

    op.drop_table("order_follower")
