"""Alembic environment: runs on the connection Salon hands it (see ``database.py``)."""

from __future__ import annotations

from alembic import context

from salon.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Salon runs its migrations itself on start; use `salon migrate`.")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
