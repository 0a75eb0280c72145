"""Alembic environment: run on the connection the program hands over (see ``db.upgrade_schema``);
``alembic -x url=...`` style offline use is not needed by users."""

from __future__ import annotations

from alembic import context

from readerapp.study.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - developer use: alembic revision --autogenerate
    from sqlalchemy import create_engine

    connection = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://").connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
