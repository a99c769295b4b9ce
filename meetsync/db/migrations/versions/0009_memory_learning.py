"""memory learning: what review decisions taught org memory, with where it came from

Revision ID: 0009_memory_learning
Revises: 0008_experiments
Create Date: 2026-11-30 16:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_memory_learning"
down_revision: str | Sequence[str] | None = "0008_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "memory_learnings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=True),
        sa.Column("created_entry", sa.Boolean(), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("heard", sa.String(length=400), nullable=True),
        sa.Column("meant", sa.String(length=400), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("review_request_id", sa.String(length=32), nullable=True),
        sa.Column("meeting_id", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("settled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("org_id", "entry_id"):
        op.create_index(op.f(f"ix_memory_learnings_{column}"), "memory_learnings", [column])


def downgrade() -> None:
    """Downgrade schema."""
    for column in ("org_id", "entry_id"):
        op.drop_index(op.f(f"ix_memory_learnings_{column}"), table_name="memory_learnings")
    op.drop_table("memory_learnings")
