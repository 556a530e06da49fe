"""`backprop db backup` under a live stream of stored attempts, and `backprop db restore`'s
refusals: a server using the database, an existing database without --force, a bad file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.backup import BackupError, backup, restore
from app.content import load_course
from app.db import Database, DatabaseInUse, current_revision, hold_in_use, upgrade

from .accounts_util import PASSWORD, SEED, answers
from .conftest import SEED as SEED_DIR
from .live import LiveServer, server_env

ROOT = Path(__file__).resolve().parent.parent
QUIZ = load_course(SEED_DIR).get(SEED).quiz
SECRET = "backup-test-secret-key-0123456789abcdef"


def cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    """`backprop db ...` in its own process, on the SQLite file in `data`."""
    env = {**os.environ, **server_env(data), "SECRET_KEY": SECRET}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "db", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def start_server(data: Path, log: Path) -> LiveServer:
    # always SQLite, whatever TEST_DATABASE_URL says: these are SQLite files' commands
    return LiveServer({**server_env(data), "SECRET_KEY": SECRET}, log_path=log).start()


def sign_up(base: str, name: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        account = {"username": name, "password": PASSWORD}
        registered = client.post("/api/auth/register", json=account)
        assert registered.status_code == 201, registered.text
        response = client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def pad(db_file: Path, rows: int) -> set[int]:
    """Old attempts (with no answers) written straight into the database, so that the backup
    has megabytes to copy while new attempts stream in: their ids."""
    with sqlite3.connect(db_file, timeout=30) as conn:
        (user_id,) = conn.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM quiz_attempts").fetchone()[0]
        conn.executemany(
            "INSERT INTO quiz_attempts (id, user_id, lesson_id, round, score, total, percent,"
            " passed, created_at) VALUES (?, ?, 'padding', 0, 0, 5, 0.0, 0, ?)",
            ((first + n, user_id, "2026-01-01 00:00:00.000000") for n in range(rows)),
        )
    conn.close()
    return set(range(first, first + rows))


def sqlite_url(data: Path) -> str:
    return server_env(data)["DATABASE_URL"]


@pytest.mark.slow
def test_a_backup_under_a_stream_of_attempts_holds_every_attempt_acknowledged_before_it(tmp_path):
    data = tmp_path / "data"
    server = start_server(data, tmp_path / "server.log")
    try:
        learners = [sign_up(server.url, f"learner{i}") for i in range(4)]
        padding = pad(data / "backprop.db", rows=150_000)
        acknowledged: list[tuple[int, float]] = []  # (attempt id, when its response arrived)
        failures: list[str] = []
        lock, stop = threading.Lock(), threading.Event()

        def submit(headers: dict[str, str], right: int) -> None:
            deadline = time.monotonic() + 60
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for _ in range(3000):
                    if stop.is_set() or time.monotonic() > deadline:
                        return
                    response = client.post(
                        f"/api/lessons/{SEED}/quiz/attempts",
                        json={"answers": answers(QUIZ, right=right)},
                        headers=headers,
                    )
                    arrived = time.monotonic()
                    with lock:
                        if response.status_code == 200:
                            acknowledged.append((response.json()["attempt_id"], arrived))
                        else:
                            failures.append(f"{response.status_code} {response.text}")

        threads = [
            threading.Thread(target=submit, args=(headers, i % 5))
            for i, headers in enumerate(learners)
        ]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(acknowledged) < 40 and time.monotonic() < deadline:
                time.sleep(0.02)
            # called here rather than through the CLI, so that `began` is when the copy starts:
            # the attempts just before it are still in the WAL, not yet in the main file
            began = time.monotonic()
            summary = backup(sqlite_url(data), tmp_path / "backup.db")
            ended = time.monotonic()
            time.sleep(0.3)  # the stream goes on after the backup too
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
    finally:
        server.stop()

    assert failures == []
    before = {attempt for attempt, arrived in acknowledged if arrived < began}
    during = {attempt for attempt, arrived in acknowledged if began <= arrived < ended}
    assert len(before) >= 40, "the stream never got going"
    assert during, "submissions stalled while the backup ran"

    assert not (tmp_path / "backup.db-wal").exists()  # one self-contained file
    with read_only(tmp_path / "backup.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        stored = {row[0] for row in copy.execute("SELECT id FROM quiz_attempts")}
        # one snapshot: no attempt without its answers
        orphans = copy.execute(
            "SELECT count(*) FROM quiz_attempts a WHERE lesson_id != 'padding' AND NOT EXISTS "
            "(SELECT 1 FROM attempt_answers b WHERE b.attempt_id = a.id)"
        ).fetchone()[0]
    assert before <= stored
    assert summary.attempts == len(stored)
    assert orphans == 0
    assert stored - padding <= {attempt for attempt, _ in acknowledged}
    assert padding <= stored


@pytest.mark.slow
def test_restore_is_refused_while_the_server_runs_and_then_needs_force(tmp_path):
    data = tmp_path / "data"
    server = start_server(data, tmp_path / "server.log")
    try:
        sign_up(server.url, "kept")
        assert cli("backup", str(tmp_path / "backup.db"), data=data).returncode == 0
        sign_up(server.url, "after-the-backup")
        refused = cli("restore", str(tmp_path / "backup.db"), "--force", data=data)
        assert refused.returncode == 1
        assert refused.stderr == (
            f"backprop db restore: the database {data / 'backprop.db'} is in use by a running "
            "Backprop server or command: stop it, then restore\n"
        )
    finally:
        server.kill()  # a crash: the kernel releases the server's lock all the same

    plain = cli("restore", str(tmp_path / "backup.db"), data=data)
    assert plain.returncode == 1
    assert f"{data / 'backprop.db'} exists; pass --force to replace it" in plain.stderr
    forced = cli("restore", str(tmp_path / "backup.db"), "--force", data=data)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(f"restored {data / 'backprop.db'}: ")
    assert "1 user(s)" in forced.stdout

    server = start_server(data, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for name, status in [("kept", 200), ("after-the-backup", 401)]:
                login = client.post(
                    "/api/auth/token", data={"username": name, "password": PASSWORD}
                )
                assert login.status_code == status, name
    finally:
        server.stop()


def test_restore_is_refused_while_this_process_has_the_database_open(tmp_path):
    url = sqlite_url(tmp_path / "data")
    db = Database.open(url)
    upgrade(db.engine)
    backup(url, tmp_path / "copy.db")
    with pytest.raises(BackupError, match="in use by a running Backprop server or command"):
        restore(url, tmp_path / "copy.db", force=True)
    head = current_revision(db.engine)
    db.close()
    assert restore(url, tmp_path / "copy.db", force=True).revision == head


def test_a_backup_never_replaces_a_file_without_force_and_never_creates_a_database(tmp_path):
    data = tmp_path / "data"
    missing = cli("backup", str(tmp_path / "copy.db"), data=data)
    assert missing.returncode == 1
    assert missing.stderr == (
        f"backprop db backup: there is no database at {data / 'backprop.db'}: nothing to back up\n"
    )
    assert not (data / "backprop.db").exists() and not (tmp_path / "copy.db").exists()

    assert cli("upgrade", data=data).returncode == 0
    (tmp_path / "copy.db").write_text("keep me")
    taken = cli("backup", str(tmp_path / "copy.db"), data=data)
    assert taken.returncode == 1 and "exists; pass --force to replace it" in taken.stderr
    assert (tmp_path / "copy.db").read_text() == "keep me"
    assert cli("backup", str(tmp_path / "copy.db"), "--force", data=data).returncode == 0
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600  # it holds password hashes
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a database at all", "is not a SQLite database"),
        (None, "is not a Backprop database (it has no alembic_version)"),
        ("9999", "is at revision 9999, which this version of Backprop does not know"),
    ],
)
def test_restore_refuses_a_file_that_is_not_a_backup_it_can_use(tmp_path, content, message):
    candidate = tmp_path / "candidate.db"
    if isinstance(content, bytes):
        candidate.write_bytes(content)
    else:
        with sqlite3.connect(candidate) as conn:
            conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
            if content:
                conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
                conn.execute("INSERT INTO alembic_version VALUES (?)", (content,))
        conn.close()
    result = cli("restore", str(candidate), data=tmp_path / "data")
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "backprop.db").exists()


@pytest.mark.parametrize("action", ["backup", "restore"])
def test_on_postgresql_both_commands_point_at_postgresqls_own_tools(tmp_path, action):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://bob:hunter2@127.0.0.1:9/backprop",
        "DATA_DIR": str(tmp_path / "data"),
    }
    (tmp_path / "f.db").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "db", action, str(tmp_path / "f.db")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    tool = "pg_dump --format=custom" if action == "backup" else "pg_restore"
    assert f"handles SQLite only; use PostgreSQL's own tools, e.g. {tool}" in result.stderr
    assert "postgresql://bob@127.0.0.1:9/backprop" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_process_opening_the_database_during_a_restore_waits_and_then_says_why(tmp_path):
    db_file = tmp_path / "backprop.db"
    with hold_in_use(db_file, exclusive=True):  # as a restore holds it
        started = time.monotonic()
        with pytest.raises(DatabaseInUse, match=f"the database {db_file} is being restored"):
            hold_in_use(db_file, wait=0.3)
        assert time.monotonic() - started >= 0.3
    with hold_in_use(db_file), hold_in_use(db_file):  # any number of users share it
        pass
