"""Training off the web process: a small pool of worker processes, each with a channel each way.

NumPy holds the GIL between BLAS calls, so training in threads would stall every page request;
each run goes to its own process instead. A worker streams `("epoch", row, boundary)` messages
and then one `("result", body)` back over an `app.channel` socket, which the event loop reads
without blocking and without ever taking half a message (a result can be tens of KiB); the web
process sends the run, and `"stop"` at any time, over a one-way Pipe the loop never watches, and
the worker notices a stop within an epoch. At most `size` runs train at once, `queue` more may
wait, and the rest are turned away with Busy (the route answers 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import traceback
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from typing import Any

from ..channel import Sender, channel

log = logging.getLogger("backprop.training")


#: Called once when an admitted run gives its place back.
Release = Callable[[], None] | None


class Busy(Exception):
    """Every worker is training and the waiting line is full."""


class WorkerFailed(RuntimeError):
    """A worker process died (or stopped answering) before its run finished."""


class TrainingError(RuntimeError):
    """A run raised inside its worker: a bug in training, not a lost process (the worker lives
    on and takes the next run). The message is the exception's type and text; the traceback
    was logged."""


def _worker_main(conn: Connection, results: socket.socket) -> None:
    """A worker process: one BLAS thread, then runs (config, boundary_every) requests forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    out = Sender(results)
    from .datasets import load_dataset
    from .runner import train  # it limits BLAS to one thread for each run

    load_dataset("digits")  # warm: read the images before a request waits
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        if message == "stop":  # arrived after its run had already finished
            continue
        config, boundary_every = message
        stop = shutdown = False

        def should_stop() -> bool:
            nonlocal stop, shutdown
            while not stop and conn.poll():
                message = conn.recv()
                shutdown = message is None  # the pool is closing: stop, then exit
                stop = shutdown or message == "stop"
            return stop

        def on_epoch(row: dict, boundary: list | None) -> None:
            out.send(("epoch", row, boundary))

        try:
            result = train(
                config,
                on_epoch=on_epoch,
                should_stop=should_stop,
                boundary_every=boundary_every,
                keep_params=True,  # for GET /train/{run_id}/export; the route takes them out
            )
            if shutdown:
                return
            out.send(("result", result))
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # report, stay alive for the next run
            out.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class _Worker:
    """One worker process, the parent's end of its command pipe, and its messages' receiver."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
        commands, self.conn = ctx.Pipe(duplex=False)
        try:
            self.messages, results = channel()
        except BaseException:
            commands.close()
            self.conn.close()
            raise
        try:
            self.process = ctx.Process(
                target=_worker_main, args=(commands, results), name="backprop-train", daemon=True
            )
            self.process.start()
        except BaseException:  # no process (out of descriptors or processes): nothing may leak
            self.conn.close()
            self.messages.close()
            raise
        finally:
            # the child has its own copies of these ends now, or there is no child
            commands.close()
            results.close()

    async def recv(self) -> tuple:
        """The next whole message, awaited without blocking the event loop."""
        try:
            return await self.messages.recv()
        except (EOFError, OSError) as exc:
            raise WorkerFailed("the training process exited") from exc

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        """Ask the process to exit, then make sure it has."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.conn.close()
        self.messages.close()


class TrainingPool:
    """Up to `size` worker processes (started on demand), a waiting line of `queue` requests."""

    def __init__(
        self,
        size: int = 0,
        queue: int = 2,
        on_change: Callable[[int, int], None] | None = None,
    ) -> None:
        self.size = size or os.cpu_count() or 1
        self.queue = queue
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._admitted = 0
        self._running = 0
        self._tasks: set[asyncio.Task] = set()
        #: told (waiting, running) whenever either changes: the metrics' gauges
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._admitted - self._running, self._running)

    def has_room(self) -> bool:
        """Whether a run asked for now would be admitted (training or waiting)."""
        return self._admitted < self.size + self.queue

    def _take_worker(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            self._discard(worker)
        worker = _Worker()
        self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        worker.close(timeout=0.5)

    def _release(self, worker: _Worker | None, healthy: bool, on_release: Release = None) -> None:
        if worker is not None:
            if healthy:
                self._idle.append(worker)
            else:
                self._discard(worker)
        self._slots.release()
        self._admitted -= 1
        self._running -= 1
        self._changed()
        if on_release is not None:
            on_release()

    async def _stop_and_release(self, worker: _Worker, on_release: Release = None) -> None:
        """Stop a run nobody is waiting for; the slot frees once its worker is idle again."""
        healthy = False
        try:
            worker.conn.send("stop")
            while True:
                kind = (await asyncio.wait_for(worker.recv(), timeout=60))[0]
                if kind in ("result", "error"):
                    healthy = True
                    break
        except (Exception, asyncio.CancelledError):
            healthy = False
        finally:
            self._release(worker, healthy, on_release)

    async def stream(
        self, config: dict[str, Any], boundary_every: int = 0, on_release: Release = None
    ) -> AsyncIterator[tuple]:
        """Run one training: yields ("epoch", row, boundary)... then ("result", body).

        Raises Busy at once when there is no room, TrainingError when the run raised in its
        worker, WorkerFailed when the worker process died. Closing or cancelling the iterator early
        stops the run in its worker within an epoch. Once admitted, the run calls `on_release`
        when it gives its place back: when its worker is free again, not when the caller left.
        """
        if not self.has_room():
            raise Busy()
        self._admitted += 1
        self._changed()
        try:
            await self._slots.acquire()
        except BaseException:
            self._admitted -= 1
            self._changed()
            if on_release is not None:
                on_release()
            raise
        self._running += 1
        self._changed()
        worker: _Worker | None = None
        finished = False
        try:
            worker = self._take_worker()
            worker.conn.send((config, boundary_every))
            while True:
                message = await worker.recv()
                if message[0] == "error":
                    log.error("training failed in a worker: %s\n%s", message[1], message[2])
                    finished = True
                    self._release(worker, True, on_release)
                    raise TrainingError(message[1])
                if message[0] == "result":
                    finished = True
                    self._release(worker, True, on_release)
                yield message
                if finished:
                    return
        except WorkerFailed as exc:
            if not finished:
                log.error("a training process stopped mid-run: %s", exc)
                finished = True
                self._release(worker, False, on_release)
            raise
        finally:
            if not finished:
                if worker is None:
                    self._release(None, False, on_release)
                else:
                    stopping = self._stop_and_release(worker, on_release)
                    task = asyncio.get_running_loop().create_task(stopping)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def run(self, config: dict[str, Any], on_release: Release = None) -> dict[str, Any]:
        """Run one training to the end and return its result body (Busy when there is no room)."""
        async with contextlib.aclosing(self.stream(config, on_release=on_release)) as messages:
            async for message in messages:
                if message[0] == "result":
                    return message[1]
        raise WorkerFailed("the training process sent no result")

    def ready(self) -> None:
        """Make sure a worker process is up, starting one if none is (OSError if none can)."""
        if not any(worker.alive() for worker in self._all):
            worker = _Worker()
            self._all.add(worker)
            self._idle.append(worker)

    def close(self) -> None:
        """Stop every worker process (on app shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for worker in list(self._all):
            self._discard(worker)
        self._idle.clear()
