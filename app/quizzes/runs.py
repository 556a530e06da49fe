"""Predict-then-run questions: ```train blocks checked as /train input when lessons load, and
the real run a review shows, trained once by the app's training backend (app.state.training:
local processes or the queue) and kept in DATA_DIR as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request
from pydantic import ValidationError

from ..content import Quiz, RunValidator
from ..training.backend import Busy, WorkerFailed
from ..training.routes import get_backend
from ..training.runner import estimate_work, full_config
from ..training.schemas import TrainRequest

log = logging.getLogger("backprop.training")


def run_validator(work_budget: float) -> RunValidator:
    """A RunValidator: valid /train input within the budget, returned with defaults filled in."""

    def validate(config: dict[str, Any]) -> dict[str, Any]:
        try:
            request = TrainRequest(**config)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in error['loc']) or 'block'}: {error['msg']}"
                    for error in exc.errors()
                )
            ) from None
        run = request.model_dump()
        work = estimate_work(run)
        if work > work_budget:
            raise ValueError(
                f"it needs about {work:.2g} units of work (epochs × samples × parameters) "
                f"and the limit is {work_budget:.2g}"
            )
        return run

    return validate


#: What a review shows of a run, out of the whole /train response.
RUN_FIELDS = ("status", "history", "train_accuracy", "test_accuracy")
#: Tries, a quarter of a second apart, while every training process is busy.
BUSY_TRIES = 40
UNAVAILABLE: dict[str, Any] = {
    "status": "unavailable",
    "history": [],
    "train_accuracy": None,
    "test_accuracy": None,
}

Trainer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def run_cache_dir(data_dir: Path) -> Path:
    """Where real runs are kept, beside the render cache."""
    return data_dir / "cache" / "runs"


@lru_cache(maxsize=1)
def engine_fingerprint() -> str:
    """What a run's numbers depend on besides its configuration: the engine and NumPy."""
    folder = Path(__file__).resolve().parent.parent / "training"
    digest = hashlib.sha256(np.__version__.encode())
    for name in ("nn.py", "runner.py", "datasets.py"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


class LessonRuns:
    """The real run of each predict-then-run configuration, trained once and kept as JSON."""

    # Runs are seeded and deterministic: one run at first need stands for every learner.

    def __init__(self, folder: Path, trainer: Trainer) -> None:
        self.folder = folder
        self.trainer = trainer
        self._pending: dict[str, asyncio.Task[dict[str, Any]]] = {}

    def key(self, config: dict[str, Any]) -> str:
        text = json.dumps(full_config(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{engine_fingerprint()}\0{text}".encode()).hexdigest()

    def cached(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.folder / f"{key}.json").read_bytes())
            if not isinstance(data, dict) or set(data) != set(RUN_FIELDS):
                raise ValueError("not a run")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:  # damaged: run it again
            log.warning("ignoring unreadable run cache entry %s: %s", key, exc)
            return None
        return data

    def _store(self, key: str, run: dict[str, Any]) -> None:
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(run, allow_nan=False).encode())
            os.replace(tmp, self.folder / f"{key}.json")
        except OSError as exc:  # a read-only data folder only costs a run per restart
            log.warning("cannot write the run cache: %s", exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    async def get(self, config: dict[str, Any]) -> dict[str, Any]:
        """The run's status, history and final accuracies; UNAVAILABLE if it cannot run now."""
        key = self.key(config)
        found = await asyncio.to_thread(self.cached, key)
        if found is not None:
            return found
        task = self._pending.get(key)
        if task is None:  # concurrent reviews of one question wait for the same run
            task = asyncio.get_running_loop().create_task(self._run(key, config))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(task)

    async def _run(self, key: str, config: dict[str, Any]) -> dict[str, Any]:
        for _ in range(BUSY_TRIES):
            try:
                result = await self.trainer(config)
            except Busy:
                await asyncio.sleep(0.25)
                continue
            except (WorkerFailed, OSError) as exc:  # a worker died, or none could start
                log.error("the run of a predict-then-run question failed: %s", exc)
                return UNAVAILABLE
            run = {field: result[field] for field in RUN_FIELDS}
            run["history"] = [
                {k: row[k] for k in ("epoch", "loss", "train_accuracy", "test_accuracy")}
                for row in run["history"]
            ]
            if run["status"] in ("completed", "diverged"):
                await asyncio.to_thread(self._store, key, run)
            return run
        return UNAVAILABLE


def lesson_runs(request: Request) -> LessonRuns:
    """The app's LessonRuns, training through its training backend (either TRAINING_BACKEND)."""
    runs = getattr(request.app.state, "lesson_runs", None)
    if runs is None:
        backend = get_backend(request)
        runs = LessonRuns(run_cache_dir(request.app.state.settings.data_dir), backend.run)
        request.app.state.lesson_runs = runs
    return runs


async def runs_for(request: Request, quiz: Quiz) -> dict[str, dict[str, Any]]:
    """Question id → its real run, for every predict-then-run question of the quiz."""
    questions = [q for q in quiz.questions if q.run is not None]
    if not questions:
        return {}
    runs = lesson_runs(request)
    found = await asyncio.gather(*(runs.get(q.run) for q in questions if q.run is not None))
    return {q.id: run for q, run in zip(questions, found, strict=True)}
