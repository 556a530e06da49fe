"""Question types: every answer as typed JSON, and guests' attempt counts per lesson.

attempt_answers gains `type`, `answer` and `correct_answer` (JSON); existing rows are
single-choice answers and are filled in from `selected_option_id` and `correct_option_id`, which
single-choice answers keep writing. `correct_option_id` may now be null (the other types have no
one right option). guest_attempts counts a guest's attempts for maxAttempts and after-pass.

Downgrading drops the new columns and table: answers of the new types are kept as rows, with no
selected option and an empty correct_option_id, so their attempts still add up.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _answers_at_0002() -> sa.Table:
    """attempt_answers as revision 0002 left it: what SQLite's batch copy starts from when
    `alembic upgrade --sql` has no database to read it from."""
    return sa.Table(
        "attempt_answers",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.String(length=100), nullable=False),
        sa.Column("selected_option_id", sa.String(length=100), nullable=True),
        sa.Column("correct_option_id", sa.String(length=100), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["quiz_attempts.id"],
            name="fk_attempt_answers_attempt_id_quiz_attempts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_attempt_answers"),
        sa.UniqueConstraint(
            "attempt_id", "question_id", name="uq_attempt_answers_attempt_id_question_id"
        ),
    )


def upgrade() -> None:
    op.create_table(
        "guest_attempts",
        sa.Column("visitor", sa.String(length=64), nullable=False),
        sa.Column("lesson_id", sa.String(length=100), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("visitor", "lesson_id", name=op.f("pk_guest_attempts")),
    )
    with op.batch_alter_table("guest_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guest_attempts_updated_at"), ["updated_at"], unique=False
        )

    offline = context.is_offline_mode()
    with op.batch_alter_table(
        "attempt_answers", schema=None, copy_from=_answers_at_0002() if offline else None
    ) as batch_op:
        batch_op.add_column(
            sa.Column("type", sa.String(length=16), server_default="single", nullable=False)
        )
        batch_op.add_column(sa.Column("answer", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("correct_answer", sa.JSON(), nullable=True))
        batch_op.alter_column(
            "correct_option_id", existing_type=sa.String(length=100), nullable=True
        )

    # An option id as a JSON string: json_quote on SQLite, to_json on PostgreSQL (both keep
    # NULL as SQL NULL only when asked: an unanswered question stays NULL).
    to_json = "to_json" if op.get_context().dialect.name == "postgresql" else "json_quote"
    op.execute(
        f"UPDATE attempt_answers SET "
        f"answer = CASE WHEN selected_option_id IS NULL THEN NULL "
        f"ELSE {to_json}(selected_option_id) END, "
        f"correct_answer = {to_json}(correct_option_id)"
    )


def downgrade() -> None:
    op.execute("UPDATE attempt_answers SET correct_option_id = '' WHERE correct_option_id IS NULL")
    with op.batch_alter_table("attempt_answers", schema=None) as batch_op:
        batch_op.alter_column(
            "correct_option_id", existing_type=sa.String(length=100), nullable=False
        )
        batch_op.drop_column("correct_answer")
        batch_op.drop_column("answer")
        batch_op.drop_column("type")

    with op.batch_alter_table("guest_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_attempts_updated_at"))
    op.drop_table("guest_attempts")
