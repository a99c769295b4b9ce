"""ops: a lease on `sending`, the item identity behind each op, and missing-item disposition

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("ops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("destination", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("item", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("disposition", sa.String(length=20), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("ops", schema=None) as batch_op:
        batch_op.drop_column("disposition")
        batch_op.drop_column("item")
        batch_op.drop_column("destination")
        batch_op.drop_column("lease_until")
