"""Training queue: runs and their epochs; on PostgreSQL, procrastinate 3.10.0's schema.

procrastinate's tables, types and functions come from `alembic/sql/procrastinate-3.10.0-schema.sql`,
a byte-for-byte copy of the `schema.sql` that procrastinate 3.10.0 ships (its newest migration is
03.04.00_50_post_add_retry_failed_job_procedure). The copy is part of this repository, so this
migration does the same thing whatever procrastinate is installed; its SHA-256 is checked before
it runs. A later procrastinate that ships new migrations needs a new revision applying them
(tests/test_training_backend.py fails until one does). SQLite gets the two tables only:
the queue needs PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0-schema.sql"
SCHEMA_SHA256 = "c70ec4b400a60ad9592787653aae5ae77ae41bf801d56b5bd2712751a07f2009"
#: procrastinate's newest migration that the schema above includes
PROCRASTINATE_MIGRATION = "03.04.00_50_post_add_retry_failed_job_procedure"

# Reverse order of creation: the function returning a jobs row before the table, the trigger
# functions after the tables (their triggers go with the tables), the types last.
DROP_PROCRASTINATE = [
    "DROP FUNCTION procrastinate_fetch_job_v2(character varying[], bigint)",
    "DROP TABLE procrastinate_events",
    "DROP TABLE procrastinate_periodic_defers",
    "DROP TABLE procrastinate_jobs",
    "DROP TABLE procrastinate_workers",
    "DROP FUNCTION procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[])",
    "DROP FUNCTION procrastinate_defer_periodic_job_v2(character varying, character varying, "
    "character varying, character varying, integer, character varying, bigint, jsonb)",
    "DROP FUNCTION procrastinate_finish_job_v1(bigint, procrastinate_job_status, boolean)",
    "DROP FUNCTION procrastinate_cancel_job_v1(bigint, boolean, boolean)",
    "DROP FUNCTION procrastinate_retry_job_v1(bigint, timestamp with time zone, integer, "
    "character varying, character varying)",
    "DROP FUNCTION procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, "
    "character varying, character varying)",
    "DROP FUNCTION procrastinate_notify_queue_job_inserted_v1()",
    "DROP FUNCTION procrastinate_notify_queue_abort_job_v1()",
    "DROP FUNCTION procrastinate_trigger_function_status_events_insert_v1()",
    "DROP FUNCTION procrastinate_trigger_function_status_events_update_v1()",
    "DROP FUNCTION procrastinate_trigger_function_scheduled_events_v1()",
    "DROP FUNCTION procrastinate_trigger_abort_requested_events_procedure_v1()",
    "DROP FUNCTION procrastinate_unlink_periodic_defers_v1()",
    "DROP FUNCTION procrastinate_register_worker_v1()",
    "DROP FUNCTION procrastinate_unregister_worker_v1(bigint)",
    "DROP FUNCTION procrastinate_update_heartbeat_v1(bigint)",
    "DROP FUNCTION procrastinate_prune_stalled_workers_v1(double precision)",
    "DROP TYPE procrastinate_job_to_defer_v1",
    "DROP TYPE procrastinate_job_event_type",
    "DROP TYPE procrastinate_job_status",
]


def _procrastinate_schema() -> str:
    data = SCHEMA_FILE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SCHEMA_SHA256:
        raise RuntimeError(f"{SCHEMA_FILE} has changed (SHA-256 {digest}); restore it from git")
    return data.decode("utf-8")


def upgrade() -> None:
    op.create_table(
        "training_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_training_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.create_index("ix_training_runs_finished_at", ["finished_at"], unique=False)

    op.create_table(
        "training_epochs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("boundary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["training_runs.id"],
            name=op.f("fk_training_epochs_run_id_training_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "epoch", name=op.f("pk_training_epochs")),
    )

    if op.get_context().dialect.name != "postgresql":
        return
    if context.is_offline_mode():
        # `alembic upgrade --sql`: the schema as text (it has no bind parameters to fill in).
        op.execute(sa.text(_procrastinate_schema()))
        return
    # One simple-protocol statement list, as procrastinate applies it; no parameters, so the
    # '%' in its RAISE messages reaches the server as written.
    op.get_bind().exec_driver_sql(
        _procrastinate_schema(), execution_options={"no_parameters": True}
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for statement in DROP_PROCRASTINATE:
            op.execute(statement)

    op.drop_table("training_epochs")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_training_runs_finished_at")
    op.drop_table("training_runs")
