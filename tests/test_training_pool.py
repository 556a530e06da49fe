"""The training pool with real worker processes: a run that raises is a TrainingError and its
worker trains the next run; a worker that dies is a WorkerFailed."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from app.training.pool import TrainingError, TrainingPool, WorkerFailed
from app.training.runner import full_config

SMALL = full_config({"dataset": "circles", "hidden_layers": [8], "epochs": 2})
#: Passes nothing the route would check (it never sees it): the runner refuses the data set.
REJECTED = {**SMALL, "dataset": "no-such-set"}
#: A minute of training at least: killed long before it ends.
LONG = full_config({"dataset": "digits", "hidden_layers": [1024, 1024], "epochs": 300})


def on_own_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """`main` run by asyncio in a thread of its own (the browser tests' Playwright keeps a loop
    running in this one)."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(main)))
    thread.start()
    thread.join(120)
    assert outcome, "the scenario raised or did not finish (see the thread's traceback)"
    return outcome[0]


def worker_pids(pool: TrainingPool) -> set[int]:
    return {worker.process.pid for worker in pool._all if worker.alive()}


def test_a_run_that_raises_in_its_worker_is_a_training_error_and_that_worker_trains_on(caplog):
    async def scenario() -> dict[str, Any]:
        pool = TrainingPool(1, 0)
        try:
            with pytest.raises(TrainingError, match=r"^ValueError: unknown dataset 'no-such-set'$"):
                await pool.run(REJECTED)
            first = worker_pids(pool)
            assert pool.has_room()  # its place was given back
            streamed = []
            with pytest.raises(TrainingError):
                async for message in pool.stream(REJECTED):
                    streamed.append(message)
            result = await pool.run(SMALL)
            return {"first": first, "after": worker_pids(pool), "streamed": streamed, **result}
        finally:
            pool.close()

    with caplog.at_level(logging.ERROR, logger="backprop.training"):
        outcome = on_own_loop(scenario())
    assert outcome["streamed"] == []
    assert outcome["status"] == "completed" and len(outcome["history"]) == 2
    # one process throughout: a failed run is no reason to start another
    assert len(outcome["first"]) == 1 and outcome["after"] == outcome["first"]
    failures = [r for r in caplog.records if "training failed in a worker" in r.getMessage()]
    assert len(failures) == 2
    logged = failures[0].getMessage()
    assert "Traceback (most recent call last)" in logged and "load_dataset" in logged


def test_a_worker_killed_mid_run_is_worker_failed_not_a_training_error():
    async def scenario() -> str:
        pool = TrainingPool(1, 0)
        killed = False
        try:
            async for message in pool.stream(LONG):
                if message[0] == "epoch" and not killed:  # the run has started: kill it
                    (pid,) = worker_pids(pool)
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        except WorkerFailed:
            return "worker failed"
        except TrainingError:
            return "training error"
        finally:
            pool.close()
        return "finished"

    assert on_own_loop(scenario()) == "worker failed"
