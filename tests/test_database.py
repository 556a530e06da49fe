"""The database: migrations agree with the models, go up and down, SQLite is tuned, CLI works."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.db import (
    Database,
    alembic_config,
    begin_write,
    commit,
    current_revision,
    downgrade,
    include_object,
    make_engine,
    upgrade,
)
from app.models import Base

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "users", "sessions", "api_tokens", "login_failures", "quiz_attempts", "attempt_answers",
    "lesson_progress", "sign_ups", "guest_attempts", "training_runs", "training_epochs",
    "password_resets", "review_cards",
}  # fmt: skip
#: procrastinate's own tables, applied on PostgreSQL only (the training queue needs it)
QUEUE_TABLES = {
    "procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
    "procrastinate_workers",
}  # fmt: skip
#: The newest revision in alembic/versions (one head: the migrations form a single line).
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def table_names(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def all_tables(engine) -> set[str]:
    """Every table the migrations make on this backend."""
    return TABLES | (QUEUE_TABLES if engine.dialect.name == "postgresql" else set())


def test_upgrade_on_an_empty_database_leaves_no_autogenerate_diff(engine):
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert table_names(engine) == all_tables(engine)


def test_the_sql_that_db_upgrade_sql_prints_builds_the_schema_the_models_describe(
    engine, database_url
):
    """For hosts whose DBA applies migrations by hand: the offline SQL, run on an empty
    database, gives what `backprop db upgrade` would (procrastinate's schema on PostgreSQL)."""
    printed = run_cli("db", "upgrade", "--sql", env={"DATABASE_URL": database_url})
    assert printed.returncode == 0, printed.stderr
    assert "CREATE TABLE attempt_answers" in printed.stdout
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.executescript(printed.stdout)
        else:
            raw.cursor().execute(printed.stdout)  # no parameters: one simple-protocol script
            raw.commit()
    finally:
        raw.close()
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(context, Base.metadata) == []
    assert table_names(engine) == all_tables(engine)


def test_migrations_go_down_to_nothing_and_up_again(engine):
    upgrade(engine)
    assert current_revision(engine) == HEAD
    downgrade(engine, "base")
    assert table_names(engine) == set() and current_revision(engine) is None
    upgrade(engine)
    assert table_names(engine) == all_tables(engine) and current_revision(engine) == HEAD
    upgrade(engine)  # idempotent


def test_0002_keeps_the_sessions_there_were_and_reverts_to_0001(engine):
    upgrade(engine, "0001")
    created = "2026-11-30 12:00:00"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (id, username, username_key, password_hash, role, created_at) "
                "VALUES (1, 'ada', 'ada', 'x', 'learner', :t)"
            ),
            {"t": created},
        )
        for table in ("sessions", "api_tokens"):
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} (token_hash, user_id, created_at, expires_at) "
                    "VALUES ('h', 1, :t, :t)"
                ),
                {"t": created},
            )
    upgrade(engine)
    with engine.connect() as conn:
        for table in ("sessions", "api_tokens"):
            row = conn.execute(sa.text(f"SELECT token_hash, last_used_at, user_agent FROM {table}"))
            assert row.all() == [("h", None, None)]
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001" and "sign_ups" not in table_names(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("sessions")}
    assert "last_used_at" not in columns and "user_agent" not in columns
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar() == 1
    upgrade(engine)


def test_every_migration_file_is_dated_and_revertable():
    files = sorted((ROOT / "alembic" / "versions").glob("*.py"))
    assert files
    for path in files:
        assert path.name[:11].replace("_", "").isdigit(), path.name  # YYYY_MM_DD_...
        text = path.read_text()
        assert "def downgrade() -> None:" in text and "Create Date:" in text
        assert "app.models" not in text  # static: never imports the live models


def test_the_app_upgrades_its_database_at_startup(make_app, database_url):
    make_app()
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_sqlite_connections_get_wal_normal_sync_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") >= 5000
    finally:
        engine.dispose()


def record_begins(engine: sa.Engine, into: list[str] | None = None) -> list[str]:
    """The BEGIN statements the engine sends from now on, appended to `into` (or a new list)."""
    begins = [] if into is None else into

    def seen(conn, cursor, statement, *args) -> None:
        if "BEGIN" in statement:
            begins.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    return begins


def test_write_sessions_begin_immediate_and_wait_instead_of_failing(tmp_path):
    """Readers-then-writers under contention: with BEGIN IMMEDIATE every one of them commits."""
    db = Database.open(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(db.engine)
    statements = record_begins(db.engine)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (username, username_key, password_hash, role, created_at) "
            "VALUES ('u', 'u', 'x', 'learner', '2026-01-01 00:00:00')"
        )
    errors: list[BaseException] = []

    def worker() -> None:
        # A Database of its own, like another worker process: no shared in-process lock, so
        # only BEGIN IMMEDIATE (and the busy timeout) keeps these read-then-write transactions
        # from failing with "database is locked".
        own = Database.open(str(db.engine.url))
        record_begins(own.engine, into=statements)
        try:
            for _ in range(25):
                with own.session() as session:
                    begin_write(session)
                    count = session.execute(sa.text("SELECT count(*) FROM login_failures"))
                    session.execute(
                        sa.text(
                            "INSERT INTO login_failures (username_key, address, created_at) "
                            "VALUES (:k, 'a', '2026-01-01 00:00:00')"
                        ),
                        {"k": f"n{count.scalar()}"},
                    )
                    commit(session)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*) FROM login_failures").scalar()
        distinct = conn.exec_driver_sql(
            "SELECT count(DISTINCT username_key) FROM login_failures"
        ).scalar()
    db.close()
    assert errors == []
    assert total == distinct == 100  # serialised: every reader saw the previous writer's row
    assert "BEGIN IMMEDIATE" in statements


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin, capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT,
        timeout=120,
    )  # fmt: skip


def test_cli_db_upgrade_and_user_create(tmp_path, database_url, make_app):
    from fastapi.testclient import TestClient

    env = {"DATA_DIR": str(tmp_path / "cli-data"), "DATABASE_URL": database_url}
    result = run_cli("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert f"revision {HEAD}" in result.stdout
    result = run_cli(
        "user", "create", "prof", "--role", "instructor", "--password-stdin",
        env=env, stdin="a long password\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "created instructor 'prof'" in result.stdout
    again = run_cli("user", "create", "PROF", "--password-stdin", env=env, stdin="another one\n")
    assert again.returncode == 1 and "taken" in again.stderr
    short = run_cli("user", "create", "x", "--password-stdin", env=env, stdin="pw\n")
    assert short.returncode == 2
    with TestClient(make_app()) as client:
        response = client.post(
            "/api/auth/token", data={"username": "prof", "password": "a long password"}
        )
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert client.get("/api/me", headers=headers).json()["role"] == "instructor"


def test_a_write_after_a_rolled_back_write_begins_immediate_and_takes_the_lock_again(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(db.engine)
    begins = record_begins(db.engine)
    lock = db.sessions.kw["info"]["write_lock"]
    with db.session() as session:
        begin_write(session)
        session.rollback()  # e.g. a username that was taken
        assert not lock.locked()
        session.execute(sa.text("SELECT 1"))  # a read opens a (deferred) transaction
        begin_write(session)
        assert begins[-1] == "BEGIN IMMEDIATE"
        assert lock.locked()
        commit(session)
    assert not lock.locked()
    db.close()
