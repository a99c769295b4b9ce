"""experiments: versioned A/B tests, shadow outputs, task defaults; arms on extractions

Revision ID: 0008_experiments
Revises: 0007_review
Create Date: 2026-11-30 15:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_experiments"
down_revision: str | Sequence[str] | None = "0007_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=50), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("stopped_arms", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version"),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiments_name"), ["name"])
    op.create_table(
        "shadow_extractions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("meeting_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("experiment", sa.String(length=100), nullable=False),
        sa.Column("experiment_version", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_version", sa.String(length=50), nullable=False),
        sa.Column("insights", sa.JSON(), nullable=True),
        sa.Column("usage", sa.JSON(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "revision", "experiment", "arm"),
    )
    with op.batch_alter_table("shadow_extractions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shadow_extractions_meeting_id"), ["meeting_id"])
        batch_op.create_index(batch_op.f("ix_shadow_extractions_experiment"), ["experiment"])
    op.create_table(
        "task_defaults",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_version", sa.String(length=50), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task", "version"),
    )
    with op.batch_alter_table("task_defaults", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_defaults_task"), ["task"])
    with op.batch_alter_table("insights", schema=None) as batch_op:
        batch_op.add_column(sa.Column("arms", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("models", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("prompt_versions", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("latency_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("insights", schema=None) as batch_op:
        for column in ("latency_ms", "cost_usd", "prompt_versions", "models", "arms"):
            batch_op.drop_column(column)
    op.drop_table("task_defaults")
    op.drop_table("shadow_extractions")
    op.drop_table("experiments")
