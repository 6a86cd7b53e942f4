"""双报到 registrations, hot spots, and an index on work_order.created_at for the hot-spot window

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registration",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("active_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["unit.id"], name=op.f("fk_registration_community_id_unit")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["unit.id"], name=op.f("fk_registration_grid_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration")),
        sa.UniqueConstraint("active_key", name=op.f("uq_registration_active_key")),
    )
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registration_openid"), ["openid"], unique=False)
    op.create_table(
        "hotspot",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("open_key", sa.String(length=128), nullable=True),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("usual", sa.Float(), nullable=False),
        sa.Column("bar", sa.Float(), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_hotspot_unit_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotspot")),
        sa.UniqueConstraint("open_key", name=op.f("uq_hotspot_open_key")),
    )
    with op.batch_alter_table("hotspot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hotspot_unit_id"), ["unit_id"], unique=False)
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_created_at")
    with op.batch_alter_table("hotspot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hotspot_unit_id"))
    op.drop_table("hotspot")
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_openid"))
    op.drop_table("registration")
