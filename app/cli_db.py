"""`backprop db`: migrations (or their SQL), and SQLite backups."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the database (DATABASE_URL, else the SQLite file in DATA_DIR) to Alembic head."""
    from .config import get_settings
    from .db import current_revision, make_engine, upgrade

    url = get_settings().resolved_database_url()
    if args.sql:
        from alembic import command

        from .db import alembic_config

        # Offline: Alembic prints the statements for the URL's dialect; nothing is connected to.
        command.upgrade(alembic_config(url), args.revision, sql=True)
        return 0
    engine = make_engine(url)
    try:
        upgrade(engine, args.revision)
        print(f"database at revision {current_revision(engine)}: {engine.url!r}")
    finally:
        engine.dispose()
    return 0


# --- backup and restore (app/backup.py) ------------------------------------------------------


def cmd_db_backup(args: argparse.Namespace) -> int:
    """Copy the SQLite database to FILE while the server runs."""
    from .backup import BackupError, backup
    from .config import get_settings

    try:
        summary = backup(get_settings().resolved_database_url(), Path(args.file), force=args.force)
    except BackupError as exc:
        print(f"backprop db backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up to {summary.describe()}")
    return 0


def cmd_db_restore(args: argparse.Namespace) -> int:
    """Replace the SQLite database with the backup FILE (no server may be using it)."""
    from .backup import BackupError, restore
    from .config import get_settings

    try:
        summary = restore(get_settings().resolved_database_url(), Path(args.file), force=args.force)
    except BackupError as exc:
        print(f"backprop db restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {summary.describe()}")
    return 0


def _add_backup_commands(db_sub: argparse._SubParsersAction) -> None:
    """`backprop db backup FILE` and `backprop db restore FILE`."""
    backup = db_sub.add_parser(
        "backup", help="copy the SQLite database to FILE, online (PostgreSQL: use pg_dump)"
    )
    backup.add_argument("file", metavar="FILE")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.set_defaults(func=cmd_db_backup)
    restore = db_sub.add_parser(
        "restore", help="replace the SQLite database with FILE; stop the server first"
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--force", action="store_true", help="replace the database if it already exists"
    )
    restore.set_defaults(func=cmd_db_restore)


def add_db_commands(sub: argparse._SubParsersAction) -> None:
    """`backprop db upgrade [REVISION] [--sql]`, `backprop db backup` and `backprop db restore`."""
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", help="apply migrations (the server does it too)")
    db_upgrade.add_argument(
        "revision", nargs="?", default="head", help="Alembic revision (default: head)"
    )
    db_upgrade.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL for DATABASE_URL's kind of database instead of running it",
    )
    db_upgrade.set_defaults(func=cmd_db_upgrade)
    _add_backup_commands(db_sub)
