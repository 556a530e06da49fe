"""TRAINING_BACKEND=queue, the web side: each run is a row in training_runs and a procrastinate
job; `backprop worker`s train it and store each epoch in training_epochs, announcing it with
NOTIFY on the queue's channel. Any instance can stream any run: it reads what is stored, then
what is announced, so a reader that connects late or reconnects misses nothing.

One LISTEN connection per process serves every stream (a payload names its run), and each stream
reads its run's state again at least every POLL_SECONDS: that is how it sees its position move,
a worker die (heartbeat older than STALE_SECONDS: the run is failed, never left hanging) or no
worker at all for NO_WORKER_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..config import Settings
from .backend import (
    FAILED_IN_WORKER,
    STALE_SECONDS,
    TASK_NAME,
    WORKER_DIED,
    Busy,
    Release,
    RunFailed,
    UnknownRun,
    channel_for,
    conninfo,
)

log = logging.getLogger("backprop.training")

POOL_SIZE = 8
#: A stream reads its run's state at least this often, notified or not.
POLL_SECONDS = 1.0
#: A waiting run with no live worker for this long fails instead of waiting for ever.
NO_WORKER_SECONDS = 30.0
#: The listener checks its connection after this long without a notification.
LISTEN_CHECK_SECONDS = 15.0

NO_WORKER = "no training worker is running (start one with `backprop worker`); try again later"
JOB_GONE = "the run's job left the queue before it finished; try again"
UNAVAILABLE = "the training queue's database cannot be reached; try again in a few seconds"
CANCELLED = "this run was cancelled before it finished"

WAITING = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status = 'todo'"
# The run and its job in one statement: both exist or neither, and TRAIN_QUEUE_MAX is checked in
# it. The job is made by procrastinate's own SQL function (the one its `defer_jobs` query calls;
# its signature is fixed by our migration of procrastinate's schema).
ENQUEUE = """
WITH room AS (
    SELECT count(*) < %(max)s AS ok FROM procrastinate_jobs
    WHERE queue_name = %(queue)s::text AND status = 'todo'
), job AS (
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
        ROW(%(queue)s::text, %(task)s::text, 0, NULL, NULL, %(args)s, NULL)
    ]::procrastinate_job_to_defer_v1[])) AS id
    FROM room WHERE ok
)
INSERT INTO training_runs (id, job_id, status, config, attempts, created_at)
SELECT %(run)s::text, id, 'queued', %(config)s::text, 0, now() FROM job
RETURNING job_id
"""
STATE = """
SELECT r.status, r.result, r.error, r.job_id, j.status::text,
       CASE WHEN j.status = 'todo' THEN (
           SELECT count(*) FROM procrastinate_jobs q
           WHERE q.queue_name = j.queue_name AND q.status = 'todo' AND q.id <= j.id
       ) END,
       j.status = 'doing'
           AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => %s)),
       (SELECT count(*) FROM procrastinate_workers
        WHERE last_heartbeat >= now() - make_interval(secs => %s))
FROM training_runs r
LEFT JOIN procrastinate_jobs j ON j.id = r.job_id
LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
WHERE r.id = %s
"""
EPOCHS = """
SELECT epoch, metrics, boundary FROM training_epochs
WHERE run_id = %s AND epoch > %s ORDER BY epoch
"""
END_RUN = """
UPDATE training_runs SET status = %s, error = %s, finished_at = now()
WHERE id = %s AND status IN ('queued', 'running') RETURNING job_id
"""


class _Watch:
    """One stream's interest in a run: woken on its announcements (epochs only if it reads them)."""

    __slots__ = ("epochs", "event", "queued")

    def __init__(self, epochs: bool) -> None:
        self.epochs = epochs
        self.queued = True
        self.event = asyncio.Event()


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """The database gone or refusing: a 503 saying so, never a 500."""
    try:
        yield
    except (psycopg.Error, PoolTimeout, OSError, queue_errors.ConnectorException) as exc:
        log.error("training queue: the database failed: %s", exc)
        raise RunFailed(UNAVAILABLE) from exc


class QueueBackend:
    """Runs as jobs on PostgreSQL; connections open on first use, in the serving event loop."""

    def __init__(self, settings: Settings) -> None:
        self.conninfo = conninfo(settings.resolved_database_url())
        self.queue = settings.train_queue_name
        self.channel = channel_for(self.queue)
        self.queue_max = settings.train_queue_max
        self._pool: AsyncConnectionPool | None = None
        self._jobs: procrastinate.App | None = None
        self._listener: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._watches: dict[str, set[_Watch]] = {}
        self._tasks: set[asyncio.Task] = set()

    # --- connections -------------------------------------------------------------------------

    async def _ready(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with _database_errors():
                    await self._open()
        assert self._pool is not None
        return self._pool

    async def _open(self) -> None:
        pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            name="backprop-training",
        )
        await pool.open(wait=True, timeout=10)
        jobs = procrastinate.App(connector=procrastinate.PsycopgConnector())
        await jobs.open_async(pool)
        listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(listening), name="training-listener")
        # Streams poll as well, so a listener still connecting only delays their first news.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listening.wait(), 5)
        self._pool, self._jobs = pool, jobs

    async def _listen(self, listening: asyncio.Event) -> None:
        """LISTEN on the queue's channel for as long as the app runs, reconnecting as needed."""
        delay = 0.5
        while True:
            try:
                connect = psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                async with await connect as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    listening.set()
                    delay = 0.5
                    self._wake_all()  # whatever was announced while we were away is read now
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._dispatch(note.payload)
                        await conn.execute("SELECT 1")  # a dead connection raises here
            except (psycopg.Error, OSError) as exc:
                log.warning("training queue listener: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _dispatch(self, payload: str) -> None:
        run_id, _, kind = payload.partition(" ")
        for watch in self._watches.get(run_id, ()):
            if kind != "epoch" or watch.epochs:
                watch.event.set()
        if kind == "state":  # a run started or ended: the ones waiting behind it moved up
            for watches in self._watches.values():
                for watch in watches:
                    if watch.queued:
                        watch.event.set()

    def _wake_all(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.event.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Finish pending cancellations, stop listening, close the connections."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = self._jobs = None

    # --- the TrainingBackend interface -------------------------------------------------------

    async def has_room(self) -> bool:
        """Fewer than TRAIN_QUEUE_MAX runs are waiting for a worker."""
        pool = await self._ready()
        with _database_errors():
            async with pool.connection() as conn:
                row = await (await conn.execute(WAITING, (self.queue,))).fetchone()
        return row is not None and row[0] < self.queue_max

    async def stream(
        self, config: dict[str, Any], boundary_every: int = 0, on_release: Release = None
    ) -> AsyncIterator[tuple]:
        """Queue a run and yield its events, a first `queued` one naming it; closing the
        iterator early cancels the run (removed if waiting, stopped within an epoch if not).
        `on_release` is called when the stream ends, however it ends."""
        run_id = uuid.uuid4().hex
        ended = False
        try:
            await self._enqueue(run_id, config, boundary_every)
            watch = self._watch(run_id, epochs=True, announce=True)
            async with contextlib.aclosing(watch) as events:
                async for event in events:
                    yield event
            ended = True
        except (Busy, RunFailed):
            ended = True
            raise
        finally:
            if not ended:
                self._spawn(self._cancel(run_id))
            if on_release is not None:
                on_release()

    async def run(self, config: dict[str, Any], on_release: Release = None) -> dict[str, Any]:
        """Queue a run and wait for its result; cancelling the caller cancels the run.
        `on_release` is called when the wait ends, however it ends."""
        run_id = uuid.uuid4().hex
        ended = False
        try:
            await self._enqueue(run_id, config, 0)
            async with contextlib.aclosing(self._watch(run_id, epochs=False)) as events:
                async for event in events:
                    if event[0] == "result":
                        ended = True
                        return event[1]
        except (Busy, RunFailed):
            ended = True
            raise
        finally:
            if not ended:
                self._spawn(self._cancel(run_id))
            if on_release is not None:
                on_release()
        raise RunFailed(JOB_GONE)

    # --- reading any run ---------------------------------------------------------------------

    async def exists(self, run_id: str) -> bool:
        """Whether a run with this id is stored."""
        pool = await self._ready()
        with _database_errors():
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1 FROM training_runs WHERE id = %s", (run_id,))
                return await cur.fetchone() is not None

    async def follow(self, run_id: str, after: int = 0) -> AsyncIterator[tuple]:
        """A stored run's events after epoch `after`, as they come (UnknownRun if none)."""
        async with contextlib.aclosing(self._watch(run_id, epochs=True, after=after)) as events:
            async for event in events:
                yield event

    async def _watch(
        self, run_id: str, *, epochs: bool, after: int = 0, announce: bool = False
    ) -> AsyncIterator[tuple]:
        pool = await self._ready()
        watch = _Watch(epochs)
        self._watches.setdefault(run_id, set()).add(watch)
        position: int | None = None
        alone_since: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                watch.event.clear()
                with _database_errors():
                    async with pool.connection() as conn:
                        cur = await conn.execute(
                            STATE, (STALE_SECONDS, STALE_SECONDS, run_id), prepare=True
                        )
                        state = await cur.fetchone()
                        if state is None:
                            raise UnknownRun(run_id)
                        status = state[0]
                        rows = []
                        if epochs and status != "queued":
                            cur = await conn.execute(EPOCHS, (run_id, after), prepare=True)
                            rows = await cur.fetchall()
                _, result, error, job_id, job_status, waiting, stalled, live = state
                if announce:  # first of all, whatever happened since: the run's id
                    announce = False
                    position = waiting or 0
                    yield ("queued", {"position": position, "run_id": run_id})
                for epoch, metrics, boundary in rows:
                    yield ("epoch", json.loads(metrics), json.loads(boundary) if boundary else None)
                    after = epoch
                watch.queued = status == "queued"
                if status == "completed":
                    yield ("result", json.loads(result))
                    return
                if status == "failed":
                    # a run that raised in training is a bug (500), not a lost worker (503)
                    raise RunFailed(error or WORKER_DIED, 500 if error == FAILED_IN_WORKER else 503)
                if status == "cancelled":
                    raise RunFailed(CANCELLED, status=410)
                if job_id is not None and job_status is None:
                    await self._fail(run_id, JOB_GONE)
                    continue
                if status == "running" and stalled:
                    log.error("training run %s: its worker stopped mid-run", run_id)
                    await self._fail(run_id, WORKER_DIED)
                    continue
                if status == "queued":
                    if waiting is not None and waiting != position:
                        position = waiting
                        yield ("queued", {"position": position, "run_id": run_id})
                    alone_since = None if live else (alone_since or loop.time())
                    if alone_since is not None and loop.time() - alone_since > NO_WORKER_SECONDS:
                        log.error("training run %s: no worker for %ds", run_id, NO_WORKER_SECONDS)
                        await self._fail(run_id, NO_WORKER)
                        continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.event.wait(), POLL_SECONDS)
        finally:
            watches = self._watches.get(run_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[run_id]

    # --- writing -----------------------------------------------------------------------------

    async def _enqueue(self, run_id: str, config: dict[str, Any], boundary_every: int) -> None:
        pool = await self._ready()
        params = {
            "max": self.queue_max,
            "queue": self.queue,
            "task": TASK_NAME,
            # the worker reads the configuration from the run's row, exactly as written here
            "args": Jsonb({"run_id": run_id, "boundary_every": boundary_every}),
            "run": run_id,
            "config": json.dumps(config, allow_nan=False, separators=(",", ":")),
        }
        with _database_errors():
            async with pool.connection() as conn:
                stored = await (await conn.execute(ENQUEUE, params)).fetchone()
        if stored is None:
            raise Busy()

    async def _end(self, run_id: str, status: str, error: str | None) -> int | None:
        """Mark a run that has not finished as failed or cancelled; its job id if it was so."""
        assert self._pool is not None
        async with self._pool.connection() as conn:
            row = await (await conn.execute(END_RUN, (status, error, run_id))).fetchone()
            if row is None:
                return None
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, f"{run_id} state"))
        return row[0] if row[0] is not None else -1

    async def _fail(self, run_id: str, error: str) -> None:
        with _database_errors():
            job_id = await self._end(run_id, "failed", error)
            if job_id is not None and job_id >= 0:
                assert self._jobs is not None
                with contextlib.suppress(queue_errors.ConnectorException):  # already gone
                    await self._jobs.job_manager.finish_job_by_id_async(
                        job_id, procrastinate.jobs.Status.FAILED, delete_job=True
                    )

    async def _cancel(self, run_id: str) -> None:
        """The run's client left: the run is cancelled first, so no worker starts it, then its
        job is deleted if waiting or asked to abort if running."""
        try:
            job_id = await self._end(run_id, "cancelled", None)
            if job_id is not None and job_id >= 0:
                assert self._jobs is not None
                await self._jobs.job_manager.cancel_job_by_id_async(
                    job_id, abort=True, delete_job=True
                )
        except Exception:  # nobody waits for this answer; the worker's sweep catches leftovers
            log.exception("training run %s: could not cancel", run_id)
