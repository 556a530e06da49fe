"""`backprop db backup` and `backprop db restore`: a SQLite database to one file and back.

A backup is taken while the server runs, with SQLite's online backup API in a single step: one
read transaction, so the copy is the database as of one commit, and in WAL mode writers go on
meanwhile. It is written beside the destination under a temporary name, checked, and then moved
into place, so FILE is never a half-written copy. A restore needs the database's in-use lock
exclusively (app/db.py): no server, worker or command may have the database open. PostgreSQL is
backed up with its own tools; both commands say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from .db import BUSY_TIMEOUT_MS, DatabaseInUse, hold_in_use, sqlite_file

SQLITE_HEADER = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why and what to do instead."""


@dataclass(frozen=True)
class Summary:
    """What a backup or a restore holds."""

    path: Path
    size: int
    revision: str | None
    users: int
    attempts: int

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.path}: {self.size:,} bytes, revision {self.revision or 'none'}, "
            f"{self.users} user(s), {self.attempts} quiz attempt(s), integrity ok"
        )


def _database_file(url: str, action: str) -> Path:
    """The SQLite file behind `url`, or a BackupError for any other kind of database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # copy-pasteable: without the driver, and without the password (PGPASSWORD, ~/.pgpass)
        safe = URL.create(
            "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database
        ).render_as_string()
        if action == "backup":
            how = f"pg_dump --format=custom --file=FILE '{safe}'"
        else:
            how = f"pg_restore --clean --if-exists --dbname='{safe}' FILE"
        raise BackupError(
            f"DATABASE_URL is a PostgreSQL database: `backprop db {action}` handles SQLite only; "
            f"use PostgreSQL's own tools, e.g. {how}"
        )
    path = sqlite_file(url)
    if path is None:
        raise BackupError(f"`backprop db {action}` needs a SQLite file, not {parsed!r}")
    return path


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection that never creates a missing file (mode "ro" or "rw")."""
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return connection


def _summary(connection: sqlite3.Connection, path: Path) -> Summary:
    """Check `connection`'s database whole (integrity_check) and count what it holds."""
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {'; '.join(problems[:5])}")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}

    def count(table: str) -> int:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    revision = None
    if "alembic_version" in tables:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return Summary(
        path=path,
        size=path.stat().st_size,
        revision=revision,
        users=count("users") if "users" in tables else 0,
        attempts=count("quiz_attempts") if "quiz_attempts" in tables else 0,
    )


@contextlib.contextmanager
def _scratch_file(beside: Path) -> Iterator[Path]:
    """A new owner-only file next to `beside` (the same file system, for the final rename),
    removed afterwards unless it was renamed away."""
    path = beside.with_name(f".{beside.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(url: str, destination: Path, *, force: bool = False) -> Summary:
    """Copy the SQLite database of `url` to `destination` (a new file unless `force`), online."""
    source = _database_file(url, "backup")
    if not source.is_file():
        raise BackupError(f"there is no database at {source}: nothing to back up")
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder; name the backup file, e.g. backprop.db")
    if destination.exists() and not force:
        raise BackupError(f"{destination} exists; pass --force to replace it")
    if destination.resolve() == source.resolve():
        raise BackupError(f"{destination} is the database itself; back it up to another file")
    if not destination.parent.is_dir():
        raise BackupError(f"the folder {destination.parent} does not exist")
    # shared, like a server: a restore cannot start underneath the copy
    with hold_in_use(source), _scratch_file(destination) as scratch:
        src = _connect(source, "rw")
        try:
            dst = sqlite3.connect(scratch)
            try:
                src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
                # one self-contained file: the copy would otherwise carry WAL mode along
                dst.execute("PRAGMA journal_mode = DELETE")
                summary = _summary(dst, scratch)
            finally:
                dst.close()
        finally:
            src.close()
        _fsync(scratch)
        if force:
            os.replace(scratch, destination)
        else:
            try:
                os.link(scratch, destination)  # fails if FILE appeared meanwhile
            except FileExistsError:
                raise BackupError(f"{destination} exists; pass --force to replace it") from None
        _fsync(destination.parent)
    return dataclasses.replace(summary, path=destination, size=destination.stat().st_size)


def _check_revision(revision: str | None, path: Path) -> None:
    """A backup this version of Backprop can migrate: made by it or an older one."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from .db import alembic_config

    if revision is None:
        raise BackupError(f"{path} is not a Backprop database (it has no alembic_version)")
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise BackupError(
            f"{path} is at revision {revision}, which this version of Backprop does not know: "
            "it was made by a newer one; restore it with that version"
        ) from None


def restore(url: str, source: Path, *, force: bool = False) -> Summary:
    """Replace the SQLite database of `url` with the backup `source`; refused while any process
    has the database open, and over an existing database unless `force`."""
    target = _database_file(url, "restore")
    if not source.is_file():
        raise BackupError(f"there is no backup file at {source}")
    with open(source, "rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{source} is not a SQLite database")
    src = _connect(source, "ro")
    try:
        try:
            summary = _summary(src, source)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} cannot be read as a database: {exc}") from None
        _check_revision(summary.revision, source)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            lock = hold_in_use(target, exclusive=True, wait=0)
        except DatabaseInUse:
            raise BackupError(
                f"the database {target} is in use by a running Backprop server or command: "
                "stop it, then restore"
            ) from None
        with lock:
            if target.exists() and target.stat().st_size > 0 and not force:
                raise BackupError(
                    f"{target} exists; pass --force to replace it (`backprop db backup FILE` "
                    "keeps a copy of it first)"
                )
            with contextlib.suppress(FileExistsError):
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            dst = _connect(target, "rw")
            try:
                # Out of WAL mode first: it checkpoints and removes the old -wal (nobody else
                # has the file open), and lets the copy bring its own page size. The server
                # turns WAL back on when it connects.
                dst.execute("PRAGMA journal_mode = DELETE")
                src.backup(dst)
                return _summary(dst, target)
            finally:
                dst.close()
    finally:
        src.close()
