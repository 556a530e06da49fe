"""Where /train's runs train, behind one interface: `request.app.state.training`.

`LocalBackend` (TRAINING_BACKEND=local, the default) trains in this server's own processes
(app/training/pool.py). `QueueBackend` (TRAINING_BACKEND=queue, app/training/queue.py) turns each
run into a procrastinate job on PostgreSQL that any `backprop worker` (app/training/worker.py)
may take, and streams its epochs back from the database. Both yield the same events:
`("queued", {"position", "run_id"})` (queue only), `("epoch", row, boundary)`, `("result", body)`;
both raise Busy (429) and WorkerFailed (503) the same way, and a run that raised while training
fails with a 500 (TrainingError locally, a RunFailed with status 500 from the queue).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from ..config import Settings
from .pool import Busy, Release, TrainingError, TrainingPool, WorkerFailed

__all__ = [
    "Busy",
    "LocalBackend",
    "Release",
    "RunFailed",
    "TrainingBackend",
    "TrainingError",
    "UnknownRun",
    "WorkerFailed",
    "make_backend",
]

#: procrastinate's name for the training task, the same on web instances and workers.
TASK_NAME = "backprop.train"
#: Seconds between a worker's heartbeats.
HEARTBEAT_SECONDS = 2.0
#: A worker whose heartbeat is older than this is taken for dead, and its run for failed.
STALE_SECONDS = 10.0


#: What the client of a run whose worker died is told (by whichever instance noticed first).
WORKER_DIED = "the training worker stopped before the run finished; try again"
#: What a queued run that raised while training is stored with (and its client told, with a 500).
FAILED_IN_WORKER = "the run failed in the training worker; it has been logged, try again"


class RunFailed(WorkerFailed):
    """A queued run that ended without a result; `detail` is safe to show the learner."""

    def __init__(self, detail: str, status: int = 503) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class UnknownRun(LookupError):
    """No stored run has this id (never queued here, or deleted after TRAIN_KEEP_HOURS)."""


class TrainingBackend(Protocol):
    """What /train needs from wherever runs train."""

    async def has_room(self) -> bool:
        """Whether a run asked for now would be admitted rather than turned away (429)."""
        ...

    def stream(
        self, config: dict[str, Any], boundary_every: int = 0, on_release: Release = None
    ) -> AsyncIterator[tuple]:
        """Run one training, yielding its events; closing the iterator early cancels the run.

        Once admitted (not on Busy), the run calls `on_release` once when it gives its place back.
        """
        ...

    async def run(self, config: dict[str, Any], on_release: Release = None) -> dict[str, Any]:
        """Run one training to the end and return the result body; cancelled with the caller."""
        ...

    async def aclose(self) -> None:
        """Release processes and connections (on app shutdown)."""
        ...


class LocalBackend:
    """Runs in this server's worker processes, started on the first run."""

    def __init__(
        self,
        workers: int = 0,
        queue: int = 2,
        on_change: Callable[[int, int], None] | None = None,
    ) -> None:
        self._size, self._queue, self._on_change = workers, queue, on_change
        self._pool: TrainingPool | None = None

    @property
    def pool(self) -> TrainingPool:
        """The process pool, created on first use (no process starts until a run needs one)."""
        if self._pool is None:
            self._pool = TrainingPool(self._size, self._queue, self._on_change)
        return self._pool

    async def has_room(self) -> bool:
        """Whether a process or a place in the waiting line is free."""
        return self.pool.has_room()

    def stream(
        self, config: dict[str, Any], boundary_every: int = 0, on_release: Release = None
    ) -> AsyncIterator[tuple]:
        """The pool's stream of ("epoch", row, boundary)... ("result", body)."""
        return self.pool.stream(config, boundary_every, on_release)

    async def run(self, config: dict[str, Any], on_release: Release = None) -> dict[str, Any]:
        """The pool's result for one run."""
        return await self.pool.run(config, on_release)

    def close(self) -> None:
        """Stop the worker processes, if any started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def aclose(self) -> None:
        """Stop the worker processes."""
        self.close()


def is_postgresql(url: str) -> bool:
    """Whether a SQLAlchemy URL names a PostgreSQL database."""
    return make_url(url).get_backend_name() == "postgresql"


def conninfo(url: str) -> str:
    """The libpq connection URL for a SQLAlchemy one (`postgresql+psycopg://` → `postgresql://`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def channel_for(queue_name: str) -> str:
    """The NOTIFY channel announcing the runs of one queue (payload: "<run id> epoch|state")."""
    return f"backprop_{queue_name}"


def make_backend(
    settings: Settings, on_change: Callable[[int, int], None] | None = None
) -> TrainingBackend:
    """The backend TRAINING_BACKEND names (Settings has refused `queue` without PostgreSQL);
    `on_change` hears the local pool's (waiting, running) for the metrics' gauges."""
    if settings.training_backend == "queue":
        from .queue import QueueBackend

        return QueueBackend(settings)
    return LocalBackend(settings.train_workers, settings.train_queue, on_change)
