"""Group commit for quiz attempts: one thread writes whatever has queued up in one transaction.

A request is answered only after the transaction holding its attempt has committed, so an
acknowledged attempt is durable; under load, many attempts share one BEGIN IMMEDIATE ... COMMIT
instead of queueing for the write lock one by one (SQLite has a single writer).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

from ..db import Database
from .progress import AttemptStore, GradeLike, NoSuchUser

log = logging.getLogger("backprop")

MAX_BATCH = 256

#: (user id, grade, future, its event loop); a tuple is the cheapest thing to queue
_Job = tuple[int, GradeLike, asyncio.Future, asyncio.AbstractEventLoop]


class AttemptWriter:
    """Queue attempts from the event loop; a daemon thread stores them in batches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def record(self, *, user_id: int, grade: GradeLike) -> int:
        """The stored attempt's id, once its transaction has committed (NoSuchUser if deleted)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._thread is None:
            self._start()
        self._queue.put((user_id, grade, future, loop))
        return await future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30)
            self._thread = None

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="attempt-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        # One DB-API connection for the thread's life: a Session, pool checkout and SQLAlchemy's
        # BEGIN/COMMIT events per batch would cost more CPU than storing a small batch.
        store = AttemptStore(self.db)
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._write(store, batch)
                if stop:
                    return
        finally:
            store.close()

    def _write(self, store: AttemptStore, batch: list[_Job]) -> None:
        try:
            results: list[object] = store.record([(job[0], job[1]) for job in batch])
        except Exception as exc:  # a database error: each job learns of it, none is lost silently
            if len(batch) > 1:  # retry one by one so that one bad entry fails only itself
                for job in batch:
                    self._write(store, [job])
                return
            log.exception("storing a quiz attempt failed")
            results = [exc]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, object]]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job[3], []).append((job[2], result))
        for loop, settled in by_loop.items():  # one wake-up per loop, not one per attempt
            try:
                loop.call_soon_threadsafe(_settle_all, settled)
            except RuntimeError:  # that event loop has closed: nobody is waiting any more
                pass


def _settle_all(settled: list[tuple[asyncio.Future, object]]) -> None:
    for future, result in settled:
        if future.done():  # the client went away; the attempt is stored all the same
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


__all__ = ["AttemptWriter", "NoSuchUser"]
