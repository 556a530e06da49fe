"""Predict-then-run questions: the real run a review shows, out of the one store of measured
runs (app/training/figures.py; `backprop check --run` fills it for every ```train block), else
trained once by the app's training backend (app.state.training: local processes or the queue)
at first need and stored there."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from ..content import Quiz
from ..training.backend import Busy, TrainingError, WorkerFailed
from ..training.figures import RunStore, run_key, summary
from ..training.routes import get_backend

log = logging.getLogger("backprop.training")

#: What a review shows of a run, out of its stored summary.
RUN_FIELDS = ("status", "history", "train_accuracy", "test_accuracy", "final_loss", "parameters")
#: Tries, a quarter of a second apart, while every training process is busy.
BUSY_TRIES = 40
UNAVAILABLE: dict[str, Any] = {
    "status": "unavailable",
    "history": [],
    "train_accuracy": None,
    "test_accuracy": None,
    "final_loss": None,
    "parameters": None,
}

Trainer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _shown(figures: dict[str, Any]) -> dict[str, Any]:
    return {field: figures.get(field) for field in RUN_FIELDS}


class LessonRuns:
    """The real run of each predict-then-run configuration, measured once and kept in a RunStore."""

    # Runs are seeded and deterministic: one run at first need stands for every learner.

    def __init__(self, store: RunStore, trainer: Trainer) -> None:
        self.store = store
        self.trainer = trainer
        self._pending: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def get(self, config: dict[str, Any]) -> dict[str, Any]:
        """The run's status, history and final accuracies; UNAVAILABLE if it cannot run now."""
        key = run_key(config)
        found = await asyncio.to_thread(self.store.get, key)
        if found is not None:
            return _shown(found)
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
            except (WorkerFailed, TrainingError, OSError) as exc:  # died, raised, or never started
                log.error("the run of a predict-then-run question failed: %s", exc)
                return UNAVAILABLE
            figures = summary(result)
            if figures["status"] in ("completed", "diverged"):
                await asyncio.to_thread(self.store.put, key, figures)
            return _shown(figures)
        return UNAVAILABLE


def lesson_runs(request: Request) -> LessonRuns:
    """The app's LessonRuns, training through its training backend, storing in its RunStore."""
    runs = getattr(request.app.state, "lesson_runs", None)
    if runs is None:
        backend = get_backend(request)
        # the store the lesson pages read and `backprop check --run` fills (app/main.py)
        runs = LessonRuns(request.app.state.run_store, backend.run)
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
