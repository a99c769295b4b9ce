"""meetings keep their revision's occurred_at, backfill run and connector filter; backfill cursors

Revision ID: 0004_backfill
Revises: 0003
Create Date: 2026-11-22 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_backfill"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurred_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("backfill_run", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("connectors", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_meetings_backfill_run"), ["backfill_run"])
    op.create_table(
        "backfill_cursors",
        sa.Column("run_key", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("providers", sa.JSON(), nullable=True),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"]),
        sa.PrimaryKeyConstraint("run_key"),
    )
    with op.batch_alter_table("backfill_cursors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_backfill_cursors_org_id"), ["org_id"])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("backfill_cursors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backfill_cursors_org_id"))
    op.drop_table("backfill_cursors")
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meetings_backfill_run"))
        batch_op.drop_column("connectors")
        batch_op.drop_column("backfill_run")
        batch_op.drop_column("occurred_at")
