"""Persistence behind small interfaces: chat history and rooms. SQLite by default,
PostgreSQL by URL; the schema is managed by Alembic."""
