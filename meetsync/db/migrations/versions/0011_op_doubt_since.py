"""ops.doubt_since: when the earliest attempt that may have written an op in doubt was claimed

An op in doubt is looked up at its provider before it is written again, and on an Asana
personal access token that lookup lists the project's tasks modified since a moment no
write of the op can predate. The op's creation was that moment: during a backlog, minutes
of other tasks before its first attempt. A claim from a clean state now stamps the time;
a claim of an op already in doubt keeps the earlier stamp.

Revision ID: 0011_op_doubt_since
Revises: 0010_memory_search_vector
Create Date: 2026-12-01 05:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_op_doubt_since"
down_revision: str | Sequence[str] | None = "0010_memory_search_vector"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # nullable, no default: instant on PostgreSQL; ops in doubt before it fall back to
    # their creation time
    with op.batch_alter_table("ops") as batch:
        batch.add_column(sa.Column("doubt_since", sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("ops") as batch:
        batch.drop_column("doubt_since")
