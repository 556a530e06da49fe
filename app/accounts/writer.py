"""Group commit for quiz attempts, in a process of its own.

A request is answered only after the transaction holding its attempt has committed, so an
acknowledged attempt is durable; under load, many attempts share one BEGIN IMMEDIATE ... COMMIT
instead of queueing for the write lock one by one (SQLite has a single writer).

The writer is a separate process rather than a thread: a thread shares the GIL with the event
loop, and handing the GIL back and forth around every SQLite call cost the loop more CPU than
storing the attempts did. The loop collects the attempts that arrive while a batch is being
written and sends them as the next batch, one message per batch each way: batches over a one-way
Pipe the loop never watches, answers over an `app.channel` socket the loop reads whole without
blocking (an answer of many failures can be tens of KiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.connection import Connection
from typing import NamedTuple

from ..channel import Receiver, Sender, channel
from ..db import Database
from .progress import AttemptStore, GradeLike, NoSuchUser

log = logging.getLogger("backprop")

MAX_BATCH = 256


class WriterFailed(RuntimeError):
    """The attempt could not be stored (the database refused it, or the writer died)."""


class _Result(NamedTuple):
    question_id: str
    selected_option_id: str | None
    correct_option_id: str
    correct: bool


class _Grade(NamedTuple):
    """A grade as the writer process rebuilds it: what storing needs, from plain tuples."""

    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    results: tuple[_Result, ...]

    @classmethod
    def of(cls, flat: tuple) -> _Grade:
        *head, results = flat
        return cls(*head, tuple(_Result(*r) for r in results))


def _flat(grade: GradeLike) -> tuple:
    """A grade as plain tuples: pickled several times faster than the dataclasses."""
    return (
        grade.lesson_id,
        grade.score,
        grade.total,
        grade.percent,
        grade.passed,
        tuple(
            (r.question_id, r.selected_option_id, r.correct_option_id, r.correct)
            for r in grade.results
        ),
    )


def _writer_main(conn: Connection, answers: socket.socket, database_url: str) -> None:
    """The writer process: store each batch received in one transaction, answer with results."""
    # Ctrl-C and a SIGTERM to the whole process group (systemd, a terminal) go to the server too,
    # which still has requests to finish: it stops us when it closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = Sender(answers)
    db = Database.open(database_url)
    store = AttemptStore(db)
    try:
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):  # the server has gone: nobody waits for answers
                return
            if batch is None:
                return
            try:
                out.send(_store(store, [(user_id, _Grade.of(flat)) for user_id, flat in batch]))
            except (BrokenPipeError, OSError):  # stored, but the server died before the answer
                return
    finally:
        store.close()
        db.close()


def _store(store: AttemptStore, batch: list[tuple[int, GradeLike]]) -> list[object]:
    """Results in batch order: an attempt id, NoSuchUser, or WriterFailed."""
    try:
        return list(store.record(batch))
    except Exception as exc:  # a database error: each entry learns of it, none is lost silently
        if len(batch) > 1:  # retry one by one so that one bad entry fails only itself
            return [result for entry in batch for result in _store(store, [entry])]
        log.exception("storing a quiz attempt failed")
        return [WriterFailed(f"{type(exc).__name__}: {exc}"[:500])]


#: How long a first attempt waits for others to share its batch (like PostgreSQL's commit_delay).
BATCH_WINDOW_S = 0.001

#: After the writer dies, wait this long before starting another: a writer that cannot start
#: (a bad database URL, a full disk) must not cost a new interpreter per submission.
RESTART_DELAY_S = 1.0

NOT_STORED = "the attempt was not stored; please submit again"
UNKNOWN = (
    "the attempt writer stopped while storing this attempt, so it may or may not be stored: "
    "check your attempts before submitting again"
)


class AttemptWriter:
    """Store attempts from the event loop through the writer process, in batches.

    At most one batch is in the pipe at a time: attempts that arrive meanwhile wait in memory
    and go together as soon as it is answered, so the batch grows with the load.
    """

    def __init__(self, db: Database) -> None:
        self.database_url = db.engine.url.render_as_string(hide_password=False)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None  # batches to the writer
        self._answers: Receiver | None = None  # results from it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[int, GradeLike, asyncio.Future]] = []
        self._in_flight: list[asyncio.Future] | None = None
        self._restart_at = 0.0

    def start(self) -> None:
        """Start the writer process now, from the running event loop, rather than on first use."""
        loop = asyncio.get_running_loop()
        if self._conn is not None and self._loop is loop:
            return
        if self._conn is not None:  # a writer of another event loop (tests): let it go
            self._retire()
        if time.monotonic() < self._restart_at:
            raise WriterFailed(NOT_STORED)
        self._spawn(loop)

    async def record(self, *, user_id: int, grade: GradeLike) -> int:
        """The stored attempt's id, once its transaction has committed (NoSuchUser if deleted)."""
        self.start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((user_id, grade, future))
        if self._in_flight is None and len(self._pending) == 1:
            # wait a moment for company: each batch costs two pipe messages and wake-ups of the
            # writer and the loop (~60 µs here), so under load a batch of one costs more than
            # storing it; the attempts that arrive during a batch's write go straight after it
            loop.call_later(BATCH_WINDOW_S, self._send)
        return await future

    def close(self, timeout: float = 30.0) -> None:
        """Store what is in flight or waiting (for up to `timeout` s), then stop the writer."""
        deadline = time.monotonic() + timeout
        while self._conn is not None and (self._in_flight is not None or self._pending):
            if self._in_flight is None:
                self._send()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._answers.wait(remaining):  # type: ignore[union-attr]
                break
            self._receive()
        process = self._process
        self._retire()
        if process is not None:
            process.join(max(1.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()  # it ignores SIGTERM (see _writer_main)
                process.join(5)

    def _spawn(self, loop: asyncio.AbstractEventLoop) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
        batches, self._conn = ctx.Pipe(duplex=False)
        self._answers, answers = channel()
        self._process = ctx.Process(
            target=_writer_main,
            args=(batches, answers, self.database_url),
            name="backprop-attempts",
            daemon=True,
        )
        self._process.start()
        batches.close()
        answers.close()
        self._loop = loop
        loop.add_reader(self._answers.fileno(), self._receive)

    def _retire(self) -> None:
        """Ask the current writer to exit once its batch is done; fail what still waits on it."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
        self._detach()
        self._process = None  # exits by itself; multiprocessing reaps it

    def _send(self) -> None:
        if self._in_flight is not None or not self._pending or self._conn is None:
            return
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            self._conn.send([(user_id, _flat(grade)) for user_id, grade, _ in batch])
        except (OSError, ValueError) as exc:
            self._pending = batch + self._pending
            self._writer_died(exc)
            return
        self._in_flight = [future for _, _, future in batch]

    def _receive(self) -> None:
        try:
            answers = self._answers.take()  # type: ignore[union-attr]
        except (EOFError, OSError) as exc:
            self._writer_died(exc)
            return
        if not answers:  # only part of the answer has arrived yet
            return
        for results in answers:  # one: a batch is sent only once the last one is answered
            futures, self._in_flight = self._in_flight or [], None
            for future, result in zip(futures, results, strict=True):
                if isinstance(result, BaseException):
                    _settle(future, error=result)
                else:
                    _settle(future, result=result)
        self._send()

    def _writer_died(self, exc: BaseException) -> None:
        log.error("the attempt writer process stopped (%s); starting another", exc)
        self._detach()
        self._process = None
        self._restart_at = time.monotonic() + RESTART_DELAY_S

    def _detach(self) -> None:
        """Stop listening to the current writer and fail every attempt waiting on it: a batch it
        was given may or may not have committed; the attempts not yet sent were not stored."""
        if self._answers is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._answers.fileno())
        in_flight, pending = self._in_flight or [], [future for _, _, future in self._pending]
        self._in_flight, self._pending = None, []
        if self._conn is not None:
            self._conn.close()
        if self._answers is not None:
            self._answers.close()
        self._conn, self._answers, self._loop = None, None, None
        for future in in_flight:
            _settle(future, error=WriterFailed(UNKNOWN))
        for future in pending:
            _settle(future, error=WriterFailed(NOT_STORED))


def _settle(future: asyncio.Future, *, result: object = None, error: BaseException | None = None):
    """Give a waiting request its outcome, from whichever thread, on its own event loop."""
    loop = future.get_loop()
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _set(future, result, error)
    else:  # a writer of another event loop being retired (tests)
        loop.call_soon_threadsafe(_set, future, result, error)


def _set(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():  # the client went away; a stored attempt is stored all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


__all__ = ["AttemptWriter", "NoSuchUser", "WriterFailed"]
