"""resident bound grid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_resident_unit_id_unit"), "unit", ["unit_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("resident", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_resident_unit_id_unit"), type_="foreignkey")
        batch_op.drop_column("unit_id")
