"""memory search: the text vector stored, and an index for an org's newest open commitments

Recall matched an org's memory with `to_tsvector(search_text)` in the query, so every
candidate row was parsed again, twice per statement, and ranking parsed it once more: a
meeting's recall cost grew with the org's open commitments (0.5-1 s of database time each
at ~2,000). PostgreSQL now keeps the vector in a stored generated column under the GIN
index, and a btree on (org, kind, status, created_at) lets "newest open commitments that
share a word" stop at its limit; it leads with org_id, so the org_id index it replaces
goes (a fresh table's statistics made the planner pick it and filter every row of the
org by kind), and (source_ref, org) finds a meeting's commitments again without reading
the org's every entry. SQLite keeps its FTS5 table.

Revision ID: 0010_memory_search_vector
Revises: 0009_memory_learning
Create Date: 2026-12-01 00:30:00.000000

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_memory_search_vector"
down_revision: str | Sequence[str] | None = "0009_memory_learning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_memory_entries_recent",
        "memory_entries",
        ["org_id", "kind", "status", "created_at"],
    )
    op.drop_index("ix_memory_entries_org_id", table_name="memory_entries")
    # a meeting's commitments are found again by their source (meeting:item) on each plan;
    # source_ref leads so that a planner with stale statistics cannot use it for org_id only
    op.create_index("ix_memory_entries_source", "memory_entries", ["source_ref", "org_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE memory_entries ADD COLUMN search_vector tsvector"
        " GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED"
    )
    op.execute(
        "CREATE INDEX ix_memory_entries_search_vector ON memory_entries USING gin (search_vector)"
    )
    op.execute("DROP INDEX IF EXISTS ix_memory_entries_search")


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_memory_entries_search ON memory_entries "
            "USING gin (to_tsvector('simple', search_text))"
        )
        op.execute("DROP INDEX IF EXISTS ix_memory_entries_search_vector")
        op.execute("ALTER TABLE memory_entries DROP COLUMN search_vector")
    op.create_index("ix_memory_entries_org_id", "memory_entries", ["org_id"])
    op.drop_index("ix_memory_entries_source", table_name="memory_entries")
    op.drop_index("ix_memory_entries_recent", table_name="memory_entries")
