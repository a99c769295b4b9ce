"""webhook signatures seen inside their time window, so a replay is refused whatever its id

Revision ID: 0005_webhook_signatures
Revises: 0004_backfill
Create Date: 2026-11-30 13:40:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_webhook_signatures"
down_revision: str | Sequence[str] | None = "0004_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "webhook_signatures",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.create_index(op.f("ix_webhook_signatures_expires_at"), "webhook_signatures", ["expires_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_webhook_signatures_expires_at"), table_name="webhook_signatures")
    op.drop_table("webhook_signatures")
