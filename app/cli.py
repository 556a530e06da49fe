"""The `backprop` command: serve the site, check content, and the admin tasks of each domain."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .cli_users import USER_EPILOG, add_user_admin
from .resources import PACKAGE_DIR

if TYPE_CHECKING:
    from .config import Settings
    from .content import Course
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
TRAIN_EPILOG = """\
examples:
  backprop train                                       # the lesson's network on digits
  backprop train --hidden-layers 32 --activation tanh --epochs 10
  backprop train --dataset spiral --hidden-layers 32,32 --epochs 150 --json > run.json
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


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a content folder the way the server would, for authors and CI; with --run,
    train every claim and compare."""
    from .config import get_settings
    from .content import load_course
    from .content.cache import render_cache_dir
    from .training.figures import run_validator

    settings = get_settings()
    root = Path(args.directory) if args.directory else settings.content_dir
    # Checking the served folder renders into the server's render cache, so a deploy that runs
    # `backprop check` first starts a server with nothing to render; other folders leave it alone.
    served = root.resolve() == settings.content_dir.resolve()
    # DATA_DIR made (or tightened) owner-only first, as the server does: its cache would
    # otherwise create it with the umask's mode
    cache_dir = render_cache_dir(settings.make_data_dir()) if served else None
    course = load_course(
        root,
        display_root=root,
        cache_dir=cache_dir,
        validate_run=run_validator(settings.train_work_budget),
    )
    for problem in sorted(course.problems, key=lambda p: (p.path, p.line or 0)):
        print(problem.format())
    errors, warnings = len(course.errors), len(course.warnings)
    print(
        f"{len(course.lessons)} lesson(s) OK, {errors} error(s), {warnings} warning(s)"
        f" in {root.as_posix()}"
    )
    if args.run:
        errors += _check_runs(args, course, settings, served=served)
    return 1 if errors else 0


def _check_runs(
    args: argparse.Namespace, course: Course, settings: Settings, *, served: bool
) -> int:
    """Train what the course states (app/training/verify.py), print what failed; the count."""
    from .training.figures import RunStore, runs_cache_dir
    from .training.verify import ProgressBar, check_runs, course_jobs

    # DATA_DIR owner-only before the store makes DATA_DIR/cache/runs in it (as above)
    store = RunStore(runs_cache_dir(settings.make_data_dir()))
    jobs = course_jobs(course)
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    report = check_runs(jobs, store, workers=args.jobs, fresh=args.fresh, progress=progress)
    if served:  # like the render cache: what no lesson of the served course uses goes
        store.prune(report.keys)
    for problem in report.problems:
        print(problem.format())
    held = report.jobs - len(report.problems)
    print(
        f"{report.jobs} run(s) checked, {held} hold, {len(report.problems)} do not; "
        f"{report.trained} trained, {report.reused} from the cache, {report.seconds:.1f} s"
    )
    return len(report.problems)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("a whole number of at least 1")
    return value


def _hidden_layers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("use comma-separated whole numbers, e.g. 128,64") from None


def _csv_data(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as file:
            return {"csv": file.read(1_000_000)}
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc}") from None


def _batch_size(text: str) -> int | None:
    if text.strip().lower() == "full":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number, or 'full'") from None


def cmd_train(args: argparse.Namespace) -> int:
    """Train the playground's network here, with the same engine and bounds as POST /train."""
    import json
    import time

    from pydantic import ValidationError

    from .training.runner import train
    from .training.schemas import TrainRequest

    fields = tuple(TrainRequest.model_fields)
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not _UNSET}
    try:
        request = TrainRequest(**given)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            print(f"backprop train: {where + ': ' if where else ''}{error['msg']}", file=sys.stderr)
        return 2
    epochs, width, started = request.epochs, 30, time.perf_counter()

    def progress(row: dict, _boundary: object) -> None:
        done = row["epoch"] / epochs
        bar = "#" * int(done * width) + "." * (width - int(done * width))
        loss = "not finite" if row["loss"] is None else f"{row['loss']:.4f}"
        print(
            f"\repoch {row['epoch']:>{len(str(epochs))}}/{epochs} [{bar}] loss {loss} "
            f"train {row['train_accuracy']:.1%} test {row['test_accuracy']:.1%} "
            f"{time.perf_counter() - started:5.1f}s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    result = train(request.model_dump(), on_epoch=progress)
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        cfg = result["config"]
        print(
            f"{result['status']}: {cfg['dataset']}, layers {cfg['layer_sizes']}, "
            f"{cfg['activation']}, {len(result['history'])} epoch(s)\n"
            f"train accuracy {result['train_accuracy']:.2%}, "
            f"test accuracy {result['test_accuracy']:.2%}\n"
            f"{result['duration_seconds']:.2f} s, "
            f"{result['samples_per_second']:,.0f} training samples/s"
        )
    return 0 if result["status"] == "completed" else 1


_UNSET = object()


@functools.cache
def _train_schema() -> dict:
    from .training.schemas import TrainRequest

    return TrainRequest.model_json_schema()["properties"]


def _train_help(name: str) -> dict:
    """`choices` and a `help` with the bounds and default, from /train's own JSON schema."""
    field = _train_schema()[name]
    kinds = field.get("anyOf", [field])
    numbers = next((k for k in kinds if k.get("type") in ("integer", "number")), {})
    parts = [field["description"].replace("null:", "full:")] if field.get("description") else []
    exclusive = "exclusiveMinimum" in numbers or "exclusiveMaximum" in numbers
    if "exclusiveMinimum" in numbers:
        low = f"above {numbers['exclusiveMinimum']}"
    else:
        low = f"from {numbers['minimum']}" if "minimum" in numbers else ""
    if "exclusiveMaximum" in numbers:
        high = f"below {numbers['exclusiveMaximum']}"
    else:
        high = (
            f"{'up ' if exclusive else ''}to {numbers['maximum']:,}" if "maximum" in numbers else ""
        )
    if low or high:
        parts.append((", " if exclusive else " ").join(p for p in (low, high) if p))
    default = field.get("default")
    if isinstance(default, list):
        shown = ",".join(str(n) for n in default)
    elif default is None:
        shown = "full" if name == "batch_size" else "the data set's own"
    else:
        shown = str(default)
    options: dict = {"help": f"{'; '.join(parts)} (default: {shown})"}
    if "enum" in field:
        options["choices"] = field["enum"]
    return options


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the database (DATABASE_URL, else the SQLite file in DATA_DIR) to Alembic head."""
    from .config import get_settings
    from .db import current_revision, make_engine, upgrade

    url = get_settings().resolved_database_url()
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


def add_backup_commands(db_sub: argparse._SubParsersAction) -> None:
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


def cmd_user_create(args: argparse.Namespace) -> int:
    """Create a learner or instructor; the password is read from stdin (never from argv)."""
    from .accounts import service
    from .config import get_settings
    from .db import Database, upgrade

    if not args.password_stdin:
        print("error: pass --password-stdin and pipe the password in", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    problem = service.credential_problem(args.name, password)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    db = Database.open(get_settings().resolved_database_url())
    try:
        upgrade(db.engine)
        with db.session() as session:
            try:
                user = service.create_user(
                    session, username=args.name, password=password, role=args.role
                )
            except service.UsernameTaken:
                print(f"error: the username {args.name!r} is taken", file=sys.stderr)
                return 1
            print(f"created {user.role} {user.username!r} (id {user.id})")
    finally:
        db.close()
    return 0


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

    check = sub.add_parser("check", help="validate lesson files; exit 1 on any error")
    check.add_argument("directory", nargs="?", help="content folder (default: CONTENT_DIR)")
    check.add_argument(
        "--run",
        action="store_true",
        help="also train every claim and report those that do not hold",
    )
    check.add_argument(
        "--jobs",
        "-j",
        type=_positive,
        metavar="N",
        help="with --run: training processes at once (default: up to one per core, as many "
        "as the work is worth)",
    )
    check.add_argument(
        "--fresh",
        action="store_true",
        help="with --run: train again what the cache already holds for this engine",
    )
    check.set_defaults(func=cmd_check)

    train = sub.add_parser(
        "train",
        help="train the playground's network in this terminal (same engine and bounds as /train)",
        description="Train the playground's network here, with the same engine and bounds as\n"
        "POST /train (the choices and limits below are /train's own schema).",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.set_defaults(func=cmd_train)
    train.add_argument("--dataset", default=_UNSET, **_train_help("dataset"))
    train.add_argument(
        "--hidden-layers",
        dest="hidden_layers",
        type=_hidden_layers,
        default=_UNSET,
        metavar="N,N,...",
        **_train_help("hidden_layers"),
    )
    train.add_argument("--activation", default=_UNSET, **_train_help("activation"))
    train.add_argument("--epochs", type=int, default=_UNSET, **_train_help("epochs"))
    train.add_argument(
        "--learning-rate",
        dest="learning_rate",
        type=float,
        default=_UNSET,
        **_train_help("learning_rate"),
    )
    train.add_argument(
        "--batch-size",
        dest="batch_size",
        type=_batch_size,
        default=_UNSET,
        metavar="N|full",
        **_train_help("batch_size"),
    )
    train.add_argument("--momentum", type=float, default=_UNSET, **_train_help("momentum"))
    train.add_argument("--init", default=_UNSET, **_train_help("init"))
    train.add_argument("--seed", type=int, default=_UNSET, **_train_help("seed"))
    train.add_argument("--noise", type=float, default=_UNSET, **_train_help("noise"))
    train.add_argument(
        "--data",
        type=_csv_data,
        default=_UNSET,
        metavar="FILE.csv",
        help="with --dataset custom: x1,x2,label lines (a header line is optional)",
    )
    train.add_argument("--json", action="store_true", help="print the full result as JSON")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", help="apply migrations (the server does it too)")
    db_upgrade.add_argument(
        "revision", nargs="?", default="head", help="Alembic revision (default: head)"
    )
    db_upgrade.set_defaults(func=cmd_db_upgrade)
    add_backup_commands(db_sub)

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

    user = sub.add_parser(
        "user",
        help="manage accounts: create, list, set-role, set-password, delete, reset-link",
        epilog=USER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="create a learner or an instructor")
    create.add_argument("name", help="3-32 letters, digits, dots, dashes or underscores")
    create.add_argument(
        "--role",
        choices=["learner", "instructor"],
        default="learner",
        help="(default: learner)",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(func=cmd_user_create)
    add_user_admin(user_sub)
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
