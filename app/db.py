"""Engine, sessions and migrations: SQLite tuned for many writers, PostgreSQL with the same code."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from .config import make_private_dirs
from .resources import migrations_dir

log = logging.getLogger("backprop")

#: Execution option read by the SQLite "begin" hook: "IMMEDIATE" takes the write lock up front.
BEGIN_OPTION = "sqlite_begin"
BUSY_TIMEOUT_MS = 10_000


def _sqlite_tuning(engine: Engine) -> None:
    """Pragmas on every connection, and our own BEGIN (the pysqlite recipe from SQLAlchemy's docs).

    pysqlite's own transaction handling begins lazily and always DEFERRED; a deferred transaction
    that reads and then writes fails with "database is locked" under contention whatever the
    busy timeout, so write sessions begin IMMEDIATE and wait their turn for the lock instead.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created and the pragmas above."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            path = Path(parsed.database)
            make_private_dirs(path.parent)
            # Created owner-only before SQLite opens it (it would use the umask's 0644): the file
            # holds password hashes; SQLite gives its -wal and -shm files the same mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=32,
        )
        _sqlite_tuning(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@dataclass
class Database:
    """One engine and its session factory, kept on `app.state.db`."""

    engine: Engine
    sessions: sessionmaker[Session]
    #: the shared in-use lock on a SQLite file (see hold_in_use), released by close()
    in_use: IO[bytes] | None = None

    @classmethod
    def open(cls, url: str) -> Database:
        engine = make_engine(url)
        path = sqlite_file(url)
        in_use = hold_in_use(path) if path else None
        info = {}
        if is_sqlite(engine):
            # SQLite has one writer at a time. Threads of this process queue on a lock for it;
            # left to SQLite's busy handler they would sleep in growing steps while it is free.
            # Other processes (other workers, the CLI) still meet this one through
            # the busy handler: with short transactions that stays in the milliseconds.
            info[WRITE_LOCK] = threading.Lock()
        factory = sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info)
        event.listen(factory, "after_transaction_end", _release_write_lock)
        db = cls(engine, factory, in_use=in_use)
        if in_use is not None:
            # one dropped without close() (create_app failing after this) still lets go of it
            weakref.finalize(db, in_use.close)
        return db

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()
        if self.in_use is not None:
            self.in_use.close()


# --- in use: a restore must not replace a database a process has open ------------------------

#: How long opening a SQLite database waits for a restore (which holds the lock) to finish.
IN_USE_WAIT_S = 30.0


class DatabaseInUse(RuntimeError):
    """The in-use lock could not be taken: a restore, or (for a restore) a server, holds it."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases, in-memory ones and URI filenames."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def hold_in_use(
    db_file: Path, *, exclusive: bool = False, wait: float = IN_USE_WAIT_S
) -> IO[bytes]:
    """Take the in-use lock of a SQLite file and return its open lock file (closing it releases).

    Every process that opens the database (each server worker, the CLI) holds it shared, so a
    restore, which needs it exclusive, is refused while any of them runs. An flock on a file of
    its own, `<db>.in-use.lock`: the kernel drops it when its holder exits, even by kill -9, so it
    never goes stale; and never on the database file itself, where closing our descriptor would
    drop SQLite's own POSIX locks on it. Waits up to `wait` seconds, then DatabaseInUse.
    """
    path = db_file.with_name(db_file.name + ".in-use.lock")
    fh = open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")  # noqa: SIM115 - returned
    deadline = time.monotonic() + wait
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    while True:
        try:
            fcntl.flock(fh, mode)
            return fh
        except BlockingIOError:
            if time.monotonic() >= deadline:
                fh.close()
                holder = "in use by a running Backprop process" if exclusive else "being restored"
                raise DatabaseInUse(f"the database {db_file} is {holder}") from None
            time.sleep(0.05)


WRITE_LOCK = "write_lock"
_HELD = "write_lock_held"
WRITING = "writing"
LOCK_TIMEOUT_S = 30.0


def _release_write_lock(session: Session, transaction: SessionTransaction) -> None:
    """After the outermost transaction's COMMIT or ROLLBACK has run, the session is no longer
    writing (so its next write begins IMMEDIATE again) and the next writer may go in."""
    if transaction.parent is not None:
        return
    session.info.pop(WRITING, None)
    if session.info.pop(_HELD, False):
        session.info[WRITE_LOCK].release()


def begin_write(session: Session) -> None:
    """Start a write transaction: BEGIN IMMEDIATE on SQLite (an open read ends first)."""
    if session.info.get(WRITING) and session.in_transaction():
        return
    if session.in_transaction():
        session.commit()
    lock = session.info.get(WRITE_LOCK)
    if lock is not None:
        if not lock.acquire(timeout=LOCK_TIMEOUT_S):
            raise TimeoutError("the database stayed busy; try again")
        session.info[_HELD] = True
    try:
        session.connection(execution_options={BEGIN_OPTION: "IMMEDIATE"})
    except BaseException:
        session.rollback()
        raise
    session.info[WRITING] = True


def commit(session: Session) -> None:
    """Commit the write transaction; the next write begins a new one."""
    session.commit()


# --- migrations -------------------------------------------------------------------------------


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """Autogenerate's filter: procrastinate's tables (applied from its own SQL) are not models."""
    queue_table = type_ == "table" and (name or "").startswith("procrastinate_")
    return not (queue_table and reflected and compare_to is None)


def alembic_config(url: str | None = None):
    """An Alembic Config on the package's migrations, from any working directory.

    No alembic.ini: a wheel has none, and its logging section is for the `alembic` command.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url:
        cfg.attributes["url"] = url
    return cfg


@contextlib.contextmanager
def _in_use(engine: Engine) -> Iterator[None]:
    """The shared in-use lock while migrating (`backprop db upgrade` opens no Database)."""
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    if path is None:
        yield
        return
    with hold_in_use(path):
        yield


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one database across processes (several workers start at once)."""
    url = engine.url
    if is_sqlite(engine) and url.database and url.database != ":memory:":
        lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
        with open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (head by default) with Alembic, on this engine."""
    from alembic import command

    cfg = alembic_config()
    with _in_use(engine), _migration_lock(engine), engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # held until this connection's transaction ends: other instances wait, then no-op
            connection.execute(text("SELECT pg_advisory_xact_lock(4242424201)"))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Revert the database to `revision` ("base" removes every table)."""
    from alembic import command

    cfg = alembic_config()
    with _in_use(engine), _migration_lock(engine), engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
        connection.commit()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
