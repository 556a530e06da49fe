"""Sessions and API tokens keep when they were last used and their User-Agent; sign-ups are
counted per address.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("sessions", "api_tokens"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
            )
            batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))

    op.create_table(
        "sign_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_ups")),
    )
    with op.batch_alter_table("sign_ups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_ups_address_created_at", ["address", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sign_ups", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_ups_address_created_at")
    op.drop_table("sign_ups")

    for table in ("api_tokens", "sessions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("user_agent")
            batch_op.drop_column("last_used_at")
