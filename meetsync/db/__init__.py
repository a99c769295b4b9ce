"""Persistence: SQLAlchemy 2 models, sessions and alembic migrations (SQLite and PostgreSQL)."""
