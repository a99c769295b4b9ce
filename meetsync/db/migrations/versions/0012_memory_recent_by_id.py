"""memory: the newest-open-commitments index carries the tie-break, so a scan stops at its limit

Recall reads an org's newest open commitments that share a word with a meeting, at most
500 (`ORDER BY created_at DESC, id LIMIT 500`). The index on (org, kind, status,
created_at) did not give the `id` tie-break's order, so PostgreSQL read and sorted every
open commitment of the org instead of stopping at the 500th match: at 6,000 open
commitments, 28 ms of database time a meeting, most of the database's share of one. With
`id` in the index and the tie-break descending like the date, a backward scan of the
index is the order asked for.

Revision ID: 0012_memory_recent_by_id
Revises: 0011_op_doubt_since
Create Date: 2026-12-01 23:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_memory_recent_by_id"
down_revision: str | Sequence[str] | None = "0011_op_doubt_since"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["org_id", "kind", "status", "created_at"]


def upgrade() -> None:
    """Upgrade schema."""
    _replace([*OLD, "id"])


def downgrade() -> None:
    """Downgrade schema."""
    _replace(OLD)


def _replace(columns: list[str]) -> None:
    """The index on `columns`, under its name. On PostgreSQL built beside the old one
    without a write lock (CONCURRENTLY, outside the migration's transaction): an org's
    memory grows by its meetings' commitments, and a plain build would hold every plan's
    writes to it for as long as it takes."""
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_memory_entries_recent", table_name="memory_entries")
        op.create_index("ix_memory_entries_recent", "memory_entries", columns)
        return
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_memory_entries_recent_new")  # a retry
        op.create_index(
            "ix_memory_entries_recent_new",
            "memory_entries",
            columns,
            postgresql_concurrently=True,
        )
        op.drop_index(
            "ix_memory_entries_recent", table_name="memory_entries", postgresql_concurrently=True
        )
        op.execute("ALTER INDEX ix_memory_entries_recent_new RENAME TO ix_memory_entries_recent")
