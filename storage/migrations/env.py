"""Alembic environment: migrations run over the connection `storage.db.upgrade` hands in."""

from __future__ import annotations

from typing import Any

from alembic import context

from storage.models import Base, UtcDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `gridbot db upgrade` (storage.db.upgrade)")


def render_item(kind: str, item: Any, autogen_context: Any) -> str | bool:
    """Write our UTC column type as the plain DateTime it is in the database."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    render_item=render_item,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
