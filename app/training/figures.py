"""What a run measured, kept for the lesson pages: run summaries, their keys and their store.

One store for every measured run: `backprop check --run` trains every claim's configuration and
every predict-then-run ```train block (app/training/verify.py), and a predict-then-run review
trains a block no check has measured yet (app/quizzes/runs.py); either stores the summary of the
run as `<key>.json` in DATA_DIR/cache/runs, beside the render cache, and both read it back. The
key hashes the configuration (as runner.full_config completes it, so a claim and a train block
of the same network share an entry) together with the training engine's fingerprint (the source
of nn.py, runner.py and datasets.py, NumPy's version, its BLAS and the CPU kernels it uses, the
machine type), so a change to how networks train is a new key and never shows figures the engine
would no longer produce: a server started with other BLAS settings than `check --run` shows its
claims as not yet verified. Runs are seeded, so the same configuration measures the same figures
every time (tests/test_check_run.py).

Lesson pages read a summary per claim at render time: cheap, one small file, parsed again only
when it changed. Only data is read back, never code: a damaged entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import signal
import threading
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from threadpoolctl import threadpool_info

from ..config import make_private_dirs
from .runner import estimate_work, full_config, train
from .schemas import TrainRequest

if TYPE_CHECKING:  # the type only: workers that import this module need no content code
    from ..content.models import RunValidator

log = logging.getLogger("backprop.training")

_ENGINE = ("nn.py", "runner.py", "datasets.py")
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
#: A summary's keys that are figures of the network (the rest say when and how fast).
FIGURES = ("status", "test_accuracy", "train_accuracy", "final_loss", "parameters", "history")


def runs_cache_dir(data_dir: Path) -> Path:
    """Where `backprop check --run` keeps what it measured, and lesson pages read it."""
    return data_dir / "cache" / "runs"


def _blas() -> str:
    """NumPy's BLAS as loaded: library, version and the CPU kernels it picked."""
    # The kernels change the last bits of a float32 run (OPENBLAS_CORETYPE=Haswell and the
    # SkylakeX that OpenBLAS detects on the same CPU do), so they are part of the engine. Only
    # NumPy's copy counts: scikit-learn may load SciPy's later in the same process.
    libraries = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    own = [
        info
        for info in libraries
        if any(part.startswith("numpy") for part in Path(info["filepath"]).parent.parts[-2:])
    ]
    found = {
        f"{info['internal_api']}-{info.get('version')}-{info.get('architecture')}"
        for info in own or libraries
    }
    return ",".join(sorted(found)) or "none"


@lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """What a run's figures depend on besides its configuration."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _ENGINE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return (
        f"numpy={np.__version__} blas={_blas()} {platform.machine()} "
        f"engine={digest.hexdigest()[:16]}"
    )


def run_key(config: Mapping[str, Any]) -> str:
    """The store's name for a configuration's figures under this engine."""
    text = json.dumps(full_config(dict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{engine_fingerprint()}\0{text}".encode()).hexdigest()


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """A run result's figures (what goals read: goals.py) and its duration, as JSON data."""
    history = [
        {k: row[k] for k in ("epoch", "loss", "train_accuracy", "test_accuracy")}
        for row in result["history"]
    ]
    return {
        "status": result["status"],
        "test_accuracy": result["test_accuracy"],
        "train_accuracy": result["train_accuracy"],
        "final_loss": history[-1]["loss"] if history else None,
        "parameters": result["parameters"],
        "history": history,
        "duration_seconds": result["duration_seconds"],
    }


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration (one BLAS thread, as runner.train runs) and summarise the run."""
    return summary(train(config))


def quiet_interrupt() -> None:
    """In a worker process of measure(): Ctrl-C ends it without a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _messages(exc: ValidationError) -> str:
    out = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            out.append(f"unknown /train field {where!r}")
        elif error["msg"].startswith(f"{where}:") or not where:
            out.append(error["msg"])
        else:
            out.append(f"{where}: {error['msg']}")
    return "; ".join(out)


def run_validator(work_budget: float) -> RunValidator:
    """A content RunValidator: a train block or a claim's run is /train input within the budget."""

    def validate(run: Mapping[str, Any]) -> dict[str, Any]:
        try:
            config = TrainRequest.model_validate(dict(run)).model_dump()
        except ValidationError as exc:
            raise ValueError(_messages(exc)) from None
        if config.get("data") is None:  # a built-in set's block reads as it did before `data`
            config.pop("data", None)
        work = estimate_work(config)
        if work > work_budget:
            raise ValueError(
                f"too much work: about {work:.2g} units (epochs × samples × parameters) and "
                f"/train allows {work_budget:.2g} (TRAIN_WORK_BUDGET)"
            )
        return config

    return validate


def _valid(data: Any) -> bool:
    """Whether stored JSON has a summary's shape (enough for goals to read it)."""
    return (
        isinstance(data, dict)
        and data.get("status") in ("completed", "diverged")
        and all(isinstance(data.get(k), int | float) for k in ("test_accuracy", "train_accuracy"))
        and isinstance(data.get("parameters"), int)
        and isinstance(data.get("history"), list)
        and all(
            isinstance(row, dict)
            and isinstance(row.get("epoch"), int)
            and isinstance(row.get("test_accuracy"), int | float)
            and (row.get("loss") is None or isinstance(row.get("loss"), int | float))
            for row in data["history"]
        )
        and isinstance(data.get("verified_at"), str)
    )


class RunStore:
    """Run summaries by run_key in one folder: written atomically, read leniently, memoised."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._memo: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored summary (with `verified_at`), or None when absent or unreadable."""
        path = self.folder / f"{key}.json"
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            memo = self._memo.get(key)
            if memo and memo[0] == stamp:
                return memo[1]
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("ignoring unreadable run figures %s: %s", key, exc)
            return None
        if not _valid(data):
            log.warning("ignoring run figures %s: not a run summary", key)
            return None
        self._memo[key] = (stamp, data)
        return data

    def put(self, key: str, figures: Mapping[str, Any], *, when: datetime | None = None) -> None:
        """Store a summary stamped `verified_at` (now unless given), via a renamed temp file."""
        stamp = (when or datetime.now(UTC)).isoformat(timespec="seconds")
        data = {**figures, "verified_at": stamp}
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            make_private_dirs(self.folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(data, allow_nan=False).encode())
            os.replace(tmp, self.folder / f"{key}.json")
        except OSError as exc:
            log.warning("cannot store run figures: %s", exc)
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def prune(self, keep: Iterable[str]) -> int:
        """Delete the entries whose keys are not in `keep`; returns how many were deleted."""
        wanted = {f"{key}.json" for key in keep}
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        deleted = 0
        for name in names:
            if name not in wanted and _ENTRY.fullmatch(name):
                with suppress(OSError):
                    (self.folder / name).unlink()
                    deleted += 1
        return deleted
