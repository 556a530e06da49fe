"""The training backend's choice and setup: TRAINING_BACKEND, refusals at startup, the queue's
schema migration (procrastinate's SQL, checked in and verified) and the worker's sweep."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.config import Settings
from app.db import downgrade, make_engine, upgrade
from app.training.backend import LocalBackend, channel_for, conninfo
from app.training.worker import jobs_app, sweep

from .conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
MIGRATION = ROOT / "alembic" / "versions" / "2026_12_01_0005_training_queue.py"
REFUSAL = "TRAINING_BACKEND=queue needs a PostgreSQL DATABASE_URL"
needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="the training queue needs PostgreSQL: set TEST_DATABASE_URL (as .ci/run does)",
)


def migration_module():
    spec = importlib.util.spec_from_file_location("queue_migration", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, timeout=timeout,
    )  # fmt: skip


def test_the_queue_backend_on_sqlite_is_refused_by_the_settings_with_a_clear_message(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'x.db'}", None):
        with pytest.raises(ValidationError, match=REFUSAL):
            Settings(_env_file=None, training_backend="queue", database_url=url)
    queue = Settings(_env_file=None, training_backend="queue", database_url="postgresql://h/db")
    assert queue.training_backend == "queue"


def test_backprop_serve_with_the_queue_backend_on_sqlite_exits_with_the_reason(tmp_path):
    env = {
        "TRAINING_BACKEND": "queue",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'backprop.db'}",
    }
    result = run_cli("serve", "--port", "1", env=env)
    assert result.returncode == 2
    assert f"setting TRAINING_BACKEND: Value error, {REFUSAL}" in result.stderr
    assert "Traceback" not in result.stderr


def test_backprop_worker_refuses_a_sqlite_database(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'backprop.db'}"}
    result = run_cli("worker", "--processes", "1", env=env)
    assert result.returncode == 2
    assert "the training queue needs a PostgreSQL DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_backprop_worker_refuses_a_grace_longer_than_a_stopping_worker_may_go_silent(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    for grace in ("10", "-1"):
        result = run_cli("worker", "--grace", grace, env=env)
        assert result.returncode == 2 and "--grace must be 0 to 5 s" in result.stderr
    result = run_cli("worker", "--processes", "-2", env=env)
    assert result.returncode == 2 and "--processes must be 1 or more" in result.stderr


def test_the_local_backend_is_the_default_and_stores_no_runs_to_follow(client):
    assert isinstance(client.app.state.training, LocalBackend)
    response = client.get(f"/train/runs/{'a' * 32}/events")
    assert response.status_code == 404
    assert "TRAINING_BACKEND=queue" in response.json()["detail"]
    assert client.post("/train", json={"dataset": "xor", "epochs": 2}).status_code == 200


def test_the_checked_in_procrastinate_schema_is_the_one_the_migration_names():
    module = migration_module()
    data = module.SCHEMA_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == module.SCHEMA_SHA256


def test_the_installed_procrastinate_ships_no_migration_our_history_lacks():
    """A newer procrastinate that changes its schema fails here until a revision applies its
    migrations (procrastinate's own files: `procrastinate schema --migrations-path`)."""
    shipped = Path(procrastinate.__file__).parent / "sql" / "migrations"
    newest = max(path.stem for path in shipped.glob("*.sql"))
    assert newest == migration_module().PROCRASTINATE_MIGRATION


@needs_postgresql
def test_downgrading_the_queue_migration_removes_every_procrastinate_object(database_url):
    engine = make_engine(database_url)
    query = sa.text(
        "SELECT (SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%' "
        "AND pronamespace = current_schema()::regnamespace), "
        "(SELECT count(*) FROM pg_type WHERE typname LIKE '%procrastinate%' "
        "AND typnamespace = current_schema()::regnamespace)"
    )
    try:
        upgrade(engine)
        with engine.connect() as conn:
            functions, types = conn.execute(query).one()
        assert functions == 18 and types > 0
        downgrade(engine, migration_module().down_revision)  # this revision alone
        with engine.connect() as conn:
            assert tuple(conn.execute(query).one()) == (0, 0)
        upgrade(engine)  # and back
    finally:
        engine.dispose()


@needs_postgresql
def test_the_sweep_deletes_expired_runs_with_their_epochs_and_fails_runs_with_no_job(
    database_url,
):
    engine = make_engine(database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    runs = [  # id, status, job_id, created, finished
        ("a" * 32, "completed", None, now - timedelta(hours=30), now - timedelta(hours=25)),
        ("b" * 32, "completed", None, now - timedelta(hours=2), now - timedelta(hours=1)),
        ("c" * 32, "running", 987654, now - timedelta(minutes=1), None),
        ("d" * 32, "queued", None, now - timedelta(days=2), None),
        ("e" * 32, "failed", None, now - timedelta(hours=26), now - timedelta(hours=25)),
    ]
    with engine.begin() as conn:
        for run_id, status, job_id, created, finished in runs:
            conn.execute(
                sa.text(
                    "INSERT INTO training_runs (id, status, job_id, config, attempts, "
                    "created_at, finished_at) VALUES (:id, :s, :j, '{}', 1, :c, :f)"
                ),
                {"id": run_id, "s": status, "j": job_id, "c": created, "f": finished},
            )
        for run_id in ("a" * 32, "b" * 32):
            conn.execute(
                sa.text("INSERT INTO training_epochs VALUES (:id, 1, '{}', NULL)"), {"id": run_id}
            )

    async def sweep_once() -> None:
        app = jobs_app(conninfo(database_url))
        async with app.open_async():
            await sweep(app, 24.0, channel_for("training"))

    try:
        # in a thread of its own: another test may leave an event loop running in this one
        worker = threading.Thread(target=lambda: asyncio.run(sweep_once()))
        worker.start()
        worker.join(timeout=60)
        with engine.connect() as conn:
            left = dict(conn.execute(sa.text("SELECT id, status FROM training_runs")).all())
            epochs = conn.execute(sa.text("SELECT run_id FROM training_epochs")).scalars().all()
        assert left == {"b" * 32: "completed", "c" * 32: "failed"}
        assert epochs == ["b" * 32]
    finally:
        engine.dispose()
