"""org memory: people, terms, preferences and open commitments, with a lexical index

SQLite gets an FTS5 table kept in step by triggers; PostgreSQL a GIN full-text index.

Revision ID: 0006_org_memory
Revises: 0005_webhook_signatures
Create Date: 2026-11-30 14:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_org_memory"
down_revision: str | Sequence[str] | None = "0005_webhook_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE memory_fts USING fts5("
    "search_text, content='memory_entries', content_rowid='rowid', tokenize='unicode61')",
    "CREATE TRIGGER memory_fts_ai AFTER INSERT ON memory_entries BEGIN "
    "INSERT INTO memory_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory_entries BEGIN "
    "INSERT INTO memory_fts(memory_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER memory_fts_au AFTER UPDATE ON memory_entries BEGIN "
    "INSERT INTO memory_fts(memory_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO memory_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "memory_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("account", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("person_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("org_id", "email", "account", "person_id"):
        op.create_index(op.f(f"ix_memory_entries_{column}"), "memory_entries", [column])
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_memory_entries_search ON memory_entries "
            "USING gin (to_tsvector('simple', search_text))"
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("memory_fts_ai", "memory_fts_ad", "memory_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS memory_fts")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_memory_entries_search")
    for column in ("org_id", "email", "account", "person_id"):
        op.drop_index(op.f(f"ix_memory_entries_{column}"), table_name="memory_entries")
    op.drop_table("memory_entries")
