"""`backprop worker`: processes that take training runs from the queue (TRAINING_BACKEND=queue).

The supervisor starts N processes (spawned, each in its own process group so a terminal's Ctrl-C
reaches only the supervisor) and starts another if one dies. Each runs a procrastinate worker
with concurrency 1 (one run at a time, one BLAS thread: the runner limits it). The training runs
in procrastinate's thread for synchronous tasks while the event loop keeps the heartbeat and
listens for aborts. Every epoch is stored as a row; rows are written and announced (NOTIFY) in
the same statement, at most every FLUSH_SECONDS (a fast run's epochs go in one or two statements,
the last with the result).

SIGTERM (or Ctrl-C) to the supervisor: each process stops taking runs, lets its current run
finish for up to `grace` seconds, then stops it and gives it back to the queue, where another
worker starts it again from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.connection import wait
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from .backend import (
    FAILED_IN_WORKER,
    HEARTBEAT_SECONDS,
    STALE_SECONDS,
    TASK_NAME,
    WORKER_DIED,
    channel_for,
)

log = logging.getLogger("backprop.worker")

#: Seconds a stopping worker lets its current run finish before giving it back.
GRACE_SECONDS = 3.0
#: The most `--grace` may be: a stopping worker sends no more heartbeats, and at STALE_SECONDS
#: the web side takes it for dead and fails its run.
MAX_GRACE_SECONDS = 5.0
#: Starts of one run (the first and the give-backs) before it fails.
MAX_ATTEMPTS = 3
#: Seconds between sweeps for runs of dead workers and for expired runs.
SWEEP_SECONDS = 60.0
#: Seconds between a worker's looks for waiting runs when no announcement woke it.
FETCH_POLL_SECONDS = 2.0
#: Epoch rows wait at most this long to be stored and announced together.
FLUSH_SECONDS = 0.05
#: A process that dies sooner than this after starting is restarted only after a pause.
QUICK_EXIT_SECONDS = 5.0

KEPT_STOPPING = "the training workers kept shutting down during this run; try again"

START = """
WITH started AS (
    UPDATE training_runs SET status = 'running', job_id = %s, worker = %s,
        attempts = attempts + 1, started_at = now()
    WHERE id = %s AND status = 'queued' RETURNING id, config
), cleared AS (
    DELETE FROM training_epochs WHERE run_id IN (SELECT id FROM started)
)
SELECT config, pg_notify(%s, %s) FROM started
"""
# Rows are stored only while the run is still this worker's: no row comes back once the web
# side has cancelled or failed it, and the training stops.
STORE_EPOCHS = """
INSERT INTO training_epochs (run_id, epoch, metrics, boundary)
SELECT %(run)s::text, e, m, b
FROM unnest(%(epochs)s::int[], %(metrics)s::text[], %(frames)s::text[]) AS t(e, m, b)
WHERE EXISTS (SELECT 1 FROM training_runs WHERE id = %(run)s::text AND status = 'running')
"""
EPOCHS = f"""
WITH stored AS ({STORE_EPOCHS} RETURNING run_id)
SELECT pg_notify(%(channel)s, %(run)s::text || ' epoch') WHERE EXISTS (SELECT 1 FROM stored)
"""
FINISH = f"""
WITH stored AS ({STORE_EPOCHS}), finished AS (
    UPDATE training_runs SET status = %(status)s::text, result = %(result)s, error = %(error)s,
        finished_at = CASE WHEN %(status)s::text = 'queued' THEN NULL ELSE now() END
    WHERE id = %(run)s::text AND status = 'running' RETURNING id
)
SELECT pg_notify(%(channel)s, %(run)s::text || ' state') FROM finished
"""
SWEEP_DEAD = """
UPDATE training_runs r SET status = 'failed', error = %s, finished_at = now()
FROM training_runs d
LEFT JOIN procrastinate_jobs j ON j.id = d.job_id
LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
WHERE r.id = d.id AND d.status = 'running' AND (j.id IS NULL OR (j.status = 'doing'
    AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => %s))))
RETURNING r.id, r.job_id
"""
SWEEP_OLD = """
DELETE FROM training_runs
WHERE (status IN ('completed', 'failed', 'cancelled')
       AND finished_at < now() - make_interval(secs => %s))
   OR (status = 'queued' AND job_id IS NULL AND created_at < now() - interval '1 day')
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class Store:
    """This process's connection for the training thread: a run's start, epochs and end."""

    def __init__(self, conninfo: str, channel: str, name: str) -> None:
        self.conninfo, self.channel, self.name = conninfo, channel, name
        self._conn: psycopg.Connection | None = None
        self._pending: list[tuple[int, str, str | None]] = []
        self._flushed = 0.0

    def _execute(self, query: str, params: tuple | dict) -> tuple | None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
        return self._conn.execute(query, params, prepare=True).fetchone()

    def start(self, run_id: str, job_id: int) -> str | None:
        """Mark the run running here; its configuration's JSON, or None if it is not waiting."""
        row = self._execute(START, (job_id, self.name, run_id, self.channel, f"{run_id} state"))
        self._pending.clear()
        self._flushed = time.monotonic()
        return None if row is None else row[0]

    def _rows(self, run_id: str) -> dict[str, Any]:
        epochs = [epoch for epoch, _, _ in self._pending]
        metrics = [text for _, text, _ in self._pending]
        frames = [frame for _, _, frame in self._pending]
        self._pending.clear()
        self._flushed = time.monotonic()
        return {"run": run_id, "epochs": epochs, "metrics": metrics, "frames": frames}

    def epoch(self, run_id: str, row: dict, boundary: dict | None) -> bool:
        """Keep one epoch, storing and announcing those kept once FLUSH_SECONDS have passed;
        False if the run is no longer this worker's to train."""
        frame = None if boundary is None else _dumps(boundary)
        self._pending.append((row["epoch"], _dumps(row), frame))
        if time.monotonic() - self._flushed < FLUSH_SECONDS:
            return True
        params = {**self._rows(run_id), "channel": self.channel}
        return self._execute(EPOCHS, params) is not None

    def end(
        self, run_id: str, status: str, *, result: dict | None = None, error: str | None = None
    ) -> None:
        """Store the epochs still kept and how the run ended (`queued`: given back), announced
        in one statement."""
        text = None if result is None else _dumps(result)
        params = {**self._rows(run_id), "status": status, "result": text, "error": error}
        self._execute(FINISH, {**params, "channel": self.channel})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


_store: Store | None = None


class _GiveBack(BaseRetryStrategy):
    """A run stopped because its worker shut down goes back to the queue (up to MAX_ATTEMPTS)."""

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        if isinstance(exception, queue_errors.JobAborted) and job.attempts + 1 < MAX_ATTEMPTS:
            return RetryDecision()
        return None


class _JobManager(procrastinate.manager.JobManager):
    """procrastinate's, losing no announcement: its worker clears the "new job" flag after each
    fetch, so a job announced while a fetch that found nothing was under way would wait for the
    next poll (after every run the worker fetches while the next run is being queued). A fetch
    that finds nothing is repeated while announcements arrived during it."""

    announced = 0

    async def listen_for_jobs(self, *, on_notification: Any, queues: Any = None) -> None:
        async def counted(*, channel: str, notification: Any) -> None:
            self.announced += 1
            await on_notification(channel=channel, notification=notification)

        await super().listen_for_jobs(on_notification=counted, queues=queues)

    async def fetch_job(self, queues: Any, worker_id: int) -> procrastinate.jobs.Job | None:
        while True:
            seen = self.announced
            job = await super().fetch_job(queues, worker_id)
            if job is not None or self.announced == seen:
                return job


def train_run(context: JobContext, run_id: str, boundary_every: int = 0) -> None:
    """The training task: one stored run, from its row's configuration to its result."""
    from .runner import train

    store = _store
    assert store is not None and context.job.id is not None
    config = store.start(run_id, context.job.id)
    if config is None:
        log.info("run %s was cancelled or failed before it started", run_id)
        return
    taken_away = False

    def on_epoch(row: dict, boundary: dict | None) -> None:
        nonlocal taken_away
        taken_away = taken_away or not store.epoch(run_id, row, boundary)

    def should_stop() -> bool:
        return taken_away or context.should_abort()

    try:
        result = train(
            json.loads(config),
            on_epoch=on_epoch,
            should_stop=should_stop,
            boundary_every=boundary_every,
            keep_params=True,  # the instance that queued the run keeps them for export
        )
    except Exception:
        log.exception("run %s failed in this worker", run_id)
        store.end(run_id, "failed", error=FAILED_IN_WORKER)
        raise
    if result["status"] == "stopped":
        if context.abort_reason() is AbortReason.SHUTDOWN:
            if context.job.attempts + 1 < MAX_ATTEMPTS:
                log.info("run %s given back to the queue: this worker is stopping", run_id)
                store.end(run_id, "queued")
            else:
                store.end(run_id, "failed", error=KEPT_STOPPING)
        else:
            store.end(run_id, "cancelled")  # a no-op when the web side ended it first
        raise queue_errors.JobAborted()
    result["run_id"] = run_id
    store.end(run_id, "completed", result=result)


def jobs_app(conninfo: str) -> procrastinate.App:
    """A procrastinate App on `conninfo` that knows the training task."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4)
    )
    app.job_manager = _JobManager(app.connector)
    app.task(name=TASK_NAME, pass_context=True, retry=_GiveBack())(train_run)
    return app


async def sweep(app: procrastinate.App, keep_hours: float, channel: str) -> None:
    """Fail the runs of dead workers (nobody may be watching them) and delete expired runs."""
    await app.job_manager.prune_stalled_workers(STALE_SECONDS)
    async with app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
        dead = await (await conn.execute(SWEEP_DEAD, (WORKER_DIED, STALE_SECONDS))).fetchall()
        await conn.execute(SWEEP_OLD, (keep_hours * 3600,))
    for run_id, job_id in dead:
        log.error("run %s: its worker stopped mid-run; marked failed", run_id)
        if job_id is not None:
            with contextlib.suppress(queue_errors.ConnectorException):
                await app.job_manager.finish_job_by_id_async(
                    job_id, procrastinate.jobs.Status.FAILED, delete_job=True
                )
        async with app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            await conn.execute("SELECT pg_notify(%s, %s)", (channel, f"{run_id} state"))


async def _keep_house(
    app: procrastinate.App, keep_hours: float, channel: str, parent: int, worker: asyncio.Task
) -> None:
    last = -SWEEP_SECONDS
    while True:
        if os.getppid() != parent:  # the supervisor was killed: stop as if it had asked
            log.warning("the worker supervisor is gone; stopping")
            worker.cancel()
            return
        if time.monotonic() - last >= SWEEP_SECONDS:
            last = time.monotonic()
            try:
                await sweep(app, keep_hours, channel)
            except Exception:
                log.exception("training queue sweep failed")
        await asyncio.sleep(1.0)


async def _serve(conninfo: str, queue: str, keep_hours: float, grace: float, parent: int) -> None:
    global _store
    from .datasets import load_dataset

    name = f"{socket.gethostname()}:{os.getpid()}"
    _store = Store(conninfo, channel_for(queue), name)
    load_dataset("digits")  # warm: the first run should not wait for the data set's import
    app = jobs_app(conninfo)
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=[queue],
                name=name,
                concurrency=1,
                delete_jobs="always",
                shutdown_graceful_timeout=grace,
                update_heartbeat_interval=HEARTBEAT_SECONDS,
                stalled_worker_timeout=STALE_SECONDS,
                abort_job_polling_interval=1.0,
                fetch_job_polling_interval=FETCH_POLL_SECONDS,
                listen_notify=True,
                install_signal_handlers=True,
            )
        )
        keeper = asyncio.create_task(_keep_house(app, keep_hours, _store.channel, parent, worker))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        finally:
            keeper.cancel()
            _store.close()


def _process_main(
    conninfo: str, queue: str, keep_hours: float, grace: float, parent: int, logs: tuple
) -> None:
    """One worker process."""
    from ..logs import configure_logging

    os.setpgrp()  # a terminal's Ctrl-C goes to the supervisor, which stops us with one SIGTERM
    configure_logging(*logs)
    # procrastinate logs every job at INFO; ours say what matters
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    asyncio.run(_serve(conninfo, queue, keep_hours, grace, parent))


def supervise(
    conninfo: str,
    *,
    processes: int,
    queue: str,
    keep_hours: float,
    grace: float = GRACE_SECONDS,
    logs: tuple = ("INFO", "text"),
) -> int:
    """Run `processes` worker processes until SIGTERM or SIGINT, replacing any that dies."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # inherited: one BLAS thread per process from its first import
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        args = (conninfo, queue, keep_hours, grace, os.getpid(), logs)
        process = ctx.Process(target=_process_main, args=args, name="backprop-worker")
        process.start()
        return process, time.monotonic()

    children = [start() for _ in range(processes)]
    log.info("backprop worker: %d process(es) on queue %r", processes, queue)
    while not stopping:
        wait([p.sentinel for p, _ in children], timeout=0.2)
        for i, (process, started) in enumerate(children):
            if process.is_alive() or stopping:
                continue
            log.error("worker process %s exited (code %s)", process.pid, process.exitcode)
            if time.monotonic() - started < QUICK_EXIT_SECONDS:
                time.sleep(QUICK_EXIT_SECONDS)  # e.g. the database is down: do not spin
            if not stopping:
                children[i] = start()
    log.info("backprop worker: stopping (current runs get %.0f s to finish)", grace)
    for process, _ in children:
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + grace + 10
    for process, _ in children:
        process.join(max(0.0, deadline - time.monotonic()))
    for process, _ in children:
        if process.is_alive():
            log.error("worker process %s did not stop; killing it", process.pid)
            process.kill()
            process.join(5)
    return 0
