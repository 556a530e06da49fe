"""`backprop check` (lessons validated, their claims trained) and `backprop train`."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings
    from .content import Course

TRAIN_EPILOG = """\
examples:
  backprop train                                       # the lesson's network on digits
  backprop train --hidden-layers 32 --activation tanh --epochs 10
  backprop train --dataset spiral --hidden-layers 32,32 --epochs 150 --json > run.json
"""


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
    """--data FILE.csv: the file's text, for /train's `data.csv` (checked there, row by row)."""
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
        shown = {"batch_size": "full", "data": "none"}.get(name, "the data set's own")
    else:
        shown = str(default)
    options: dict = {"help": f"{'; '.join(parts)} (default: {shown})"}
    if "enum" in field:
        options["choices"] = field["enum"]
    return options


#: `backprop train`'s options beyond /train's own types, by field (every field has an option).
_TRAIN_OPTIONS: dict[str, dict[str, Any]] = {
    "dataset": {},
    "hidden_layers": {"type": _hidden_layers, "metavar": "N,N,..."},
    "activation": {},
    "epochs": {"type": int},
    "learning_rate": {"type": float},
    "batch_size": {"type": _batch_size, "metavar": "N|full"},
    "momentum": {"type": float},
    "init": {},
    "seed": {"type": int},
    "noise": {"type": float},
    "data": {"type": _csv_data, "metavar": "FILE.csv"},
}


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """`backprop check [DIR] [--run]` and `backprop train [--FIELD VALUE ...]`."""
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
    for name, options in _TRAIN_OPTIONS.items():
        train.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=_UNSET,
            **options,
            **_train_help(name),
        )
    train.add_argument("--json", action="store_true", help="print the full result as JSON")
