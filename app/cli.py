"""The `backprop` command: serve the site, check content, and the admin tasks of each domain."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .cli_db import add_db_commands
from .cli_train import add_training_commands
from .cli_users import add_user_commands
from .resources import PACKAGE_DIR

EPILOG = """\
examples:
  backprop serve                          # http://127.0.0.1:8000, SQLite in ./data
  backprop serve --host 0.0.0.0 --workers 4 --root-path /backprop
  backprop check content/                 # validate lessons; exit 1 on any error
  backprop train --dataset moons --hidden-layers 16,16 --epochs 60
  backprop user list --role instructor
  backprop user reset-link ada

Settings come from the environment or a .env file (DATABASE_URL, SECRET_KEY, ROOT_PATH, ...):
see the README's Configuration table. `backprop COMMAND --help` describes each command.
"""
#: Where `backprop serve --workers N` keeps prometheus-client's per-process files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def cmd_serve(args: argparse.Namespace) -> int:
    """Run uvicorn on app.main:app; --reload restarts on code, template and lesson edits."""
    import uvicorn

    from .config import get_settings
    from .logs import configure_logging

    for option, variable in (
        ("log_level", "LOG_LEVEL"),
        ("limit_concurrency", "LIMIT_CONCURRENCY"),
        ("timeout_keep_alive", "TIMEOUT_KEEP_ALIVE"),
        ("forwarded_allow_ips", "FORWARDED_ALLOW_IPS"),
        ("root_path", "ROOT_PATH"),
    ):
        if getattr(args, option) is not None:
            # through the environment, so that the workers and reloads uvicorn starts (each one
            # building the app from Settings) see it too
            os.environ[variable] = str(getattr(args, option))
            get_settings.cache_clear()
    settings = get_settings()
    # Refused here, before uvicorn starts anything: a weak or empty SECRET_KEY is one line from
    # main(), not a traceback in each worker.
    settings.resolved_secret_key()
    if args.workers > 1 and not args.reload:
        os.environ.setdefault(MULTIPROC_ENV, str(settings.make_data_dir() / "metrics"))
    if os.environ.get(MULTIPROC_ENV):
        _fresh_metrics_dir(Path(os.environ[MULTIPROC_ENV]))
    # This process's own lines (uvicorn's supervisor, a single worker) in the app's format; the
    # app sets up the same in every worker. uvicorn is told to install no logging config of its
    # own (its dictConfig would replace these handlers) and gets only the level.
    configure_logging(settings.log_level, settings.log_format)
    reload_dirs = None
    if args.reload:
        reload_dirs = [
            str(PACKAGE_DIR),
            str(settings.templates_dir),
            str(settings.content_dir.resolve()),
        ]
    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        reload=args.reload,
        reload_dirs=reload_dirs,
        reload_includes=["*.py", "*.md", "*.html"] if args.reload else None,
        workers=None if args.reload else args.workers,
        # X-Forwarded-For and -Proto only from the proxies we were told of (the app resolves
        # the client address by the same list, whatever uvicorn does: app/web/clients.py)
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # a bound on what one worker takes on (503 beyond), and on idle keep-alive connections;
        # uvicorn has no timeout for reading a request's headers: see the README's deployment
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.timeout_keep_alive,
        log_config=None,
        log_level=settings.log_level.lower(),
    )
    return 0


def _fresh_metrics_dir(folder: Path) -> None:
    """Create the multiprocess metrics folder, or empty it of an earlier run's files (which
    would otherwise be added to this run's counts), before any worker starts."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def cmd_worker(args: argparse.Namespace) -> int:
    """Train the runs web instances queue (TRAINING_BACKEND=queue) until SIGTERM or Ctrl-C."""
    from .config import get_settings
    from .db import make_engine, upgrade
    from .logs import configure_logging
    from .training.backend import conninfo, is_postgresql
    from .training.worker import MAX_GRACE_SECONDS, supervise

    settings = get_settings()
    url = settings.resolved_database_url()
    if not is_postgresql(url):
        print(
            "backprop worker: the training queue needs a PostgreSQL DATABASE_URL "
            f"(postgresql+psycopg://user@host/db); DATABASE_URL is {url.split('://', 1)[0]}://...",
            file=sys.stderr,
        )
        return 2
    if args.processes < 0:
        print("backprop worker: --processes must be 1 or more (0: one per core)", file=sys.stderr)
        return 2
    if not 0 <= args.grace <= MAX_GRACE_SECONDS:
        # a stopping worker sends no heartbeats: much longer and its runs would be failed
        print(f"backprop worker: --grace must be 0 to {MAX_GRACE_SECONDS:g} s", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    engine = make_engine(url)
    try:
        upgrade(engine)  # a worker may start before any web instance has migrated the database
    finally:
        engine.dispose()
    return supervise(
        conninfo(url),
        processes=args.processes or os.cpu_count() or 1,
        queue=settings.train_queue_name,
        keep_hours=settings.train_keep_hours,
        grace=args.grace,
        logs=(settings.log_level, settings.log_format),
    )


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" where there is a default worth saying (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve the site (SQLite and ./content by default)",
        formatter_class=_ShowDefaults,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--reload", action="store_true", help="restart when code or lessons change")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="web processes; several share their metrics through files in "
        "PROMETHEUS_MULTIPROC_DIR (DATA_DIR/metrics unless set, emptied at start)",
    )
    serve.add_argument(
        "--root-path",
        metavar="PATH",
        help="serve under this sub-path behind a proxy, e.g. /backprop (overrides ROOT_PATH)",
    )
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        type=str.lower,
        help="overrides LOG_LEVEL (default: INFO)",
    )
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        metavar="N",
        help="connections and tasks a worker takes before answering 503; overrides "
        "LIMIT_CONCURRENCY (default 1000)",
    )
    serve.add_argument(
        "--timeout-keep-alive",
        type=int,
        metavar="SECONDS",
        help="close idle keep-alive connections after this long; overrides TIMEOUT_KEEP_ALIVE "
        "(default 5)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="LIST",
        help="proxies whose X-Forwarded-For is believed; overrides FORWARDED_ALLOW_IPS "
        "(default: none)",
    )
    serve.set_defaults(func=cmd_serve)

    add_training_commands(sub)
    add_db_commands(sub)
    worker = sub.add_parser(
        "worker", help="train queued runs (TRAINING_BACKEND=queue; PostgreSQL DATABASE_URL)"
    )
    worker.add_argument(
        "--processes", type=int, default=0, metavar="N", help="default: one per CPU core"
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="on SIGTERM, how long a current run may finish before it is given back (default 3, "
        "at most 5)",
    )
    worker.set_defaults(func=cmd_worker)
    add_user_commands(sub)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from .config import SettingsError, settings_problems

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (SettingsError, ValidationError) as exc:
        problems = settings_problems(exc)
        if problems is None:
            raise
        # a bad variable in the environment or .env: name it, without a traceback
        for problem in problems:
            print(f"backprop: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
