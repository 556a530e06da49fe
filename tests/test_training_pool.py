"""The training pool with real worker processes: a run that raises is a TrainingError and its
worker trains the next run; a worker that dies is a WorkerFailed; one that cannot start leaks
nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
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


#: Run in a process of its own: descriptors are limited so that the worker's pipe and socket
#: pair fit but starting its process does not; prints what leaked.
OUT_OF_DESCRIPTORS = """
import json, os, resource
import multiprocessing.popen_spawn_posix, multiprocessing.resource_tracker  # imported up front
from app.training.pool import _Worker

def open_fds():
    return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself holds

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
before = open_fds()
resource.setrlimit(resource.RLIMIT_NOFILE, (before + 4, hard))
try:
    _Worker()
    outcome = {"error": None}
except OSError as exc:  # the traceback still holds __init__'s frame: only closing frees them
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    outcome = {"error": exc.strerror, "leaked": open_fds() - before}
print(json.dumps(outcome))
"""


def test_a_worker_process_that_cannot_start_leaves_no_descriptor_open():
    finished = subprocess.run(
        [sys.executable, "-c", OUT_OF_DESCRIPTORS],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {"error": "Too many open files", "leaked": 0}
