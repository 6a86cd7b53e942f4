"""media files and dashboard logins

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


MEDIA_KINDS_SQL = "kind IN ('image', 'voice')"


def upgrade() -> None:
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_unit_created", ["unit_id", "created_at"], unique=False)
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_message_media",
            ["received_at"],
            unique=False,
            postgresql_where=sa.text(MEDIA_KINDS_SQL),
            sqlite_where=sa.text(MEDIA_KINDS_SQL),
        )
    op.create_table(
        "dashboard_login",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_login")),
    )
    with op.batch_alter_table("dashboard_login", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_login_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "media_file",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("inbound_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("media_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbound_id"], ["inbound_message.id"], name=op.f("fk_media_file_inbound_id_inbound_message")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_file")),
        sa.UniqueConstraint("inbound_id", name=op.f("uq_media_file_inbound_id")),
    )
    with op.batch_alter_table("media_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_file_sha256"), ["sha256"], unique=False)
        batch_op.create_index("ix_media_file_status_next", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("work_order", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_unit_created")
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_message_media")
    with op.batch_alter_table("media_file", schema=None) as batch_op:
        batch_op.drop_index("ix_media_file_status_next")
        batch_op.drop_index(batch_op.f("ix_media_file_sha256"))

    op.drop_table("media_file")
    with op.batch_alter_table("dashboard_login", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_login_expires_at"))

    op.drop_table("dashboard_login")
