"""Per-client training quotas: runs at once (TRAIN_PER_CLIENT) and runs a minute (TRAIN_PER_MINUTE).

A client is its account when signed in; a guest is its address and, if it has one, its visitor
cookie, each limited on its own (a cookie costs nothing to drop, an address does). The counts
live in this process, beside the pool whose places they ration; everything here runs on the
event loop, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

MINUTE = 60.0
#: Seconds a client at its concurrent limit is asked to wait: a stopped run frees its place
#: within an epoch, and the playground retries waits this short by itself.
BUSY_RETRY_AFTER = 1
#: Keys kept before idle ones are swept out (memory stays bounded whoever asks).
SWEEP_AT = 10_000


class QuotaExceeded(Exception):
    """This client is at one of its limits; `detail` says which."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = max(1, int(retry_after + 0.999))


class Ticket:
    """One admitted run's hold on its client's quota."""

    def __init__(self, quota: TrainingQuota, keys: Sequence[str], started: float) -> None:
        self.quota = quota
        self.keys = tuple(keys)
        self.started = started
        #: set once the run is handed to the pool, which then calls release() when it ends
        self.handed_over = False
        self._released = False

    def release(self) -> None:
        """The run has ended (its training process is free again); idempotent."""
        if self._released:
            return
        self._released = True
        for key in self.keys:
            left = self.quota.running.get(key, 0) - 1
            if left > 0:
                self.quota.running[key] = left
            else:
                self.quota.running.pop(key, None)

    def cancel(self) -> None:
        """The run never started (the pool was full): it counts neither at once nor per minute."""
        self.release()
        for key in self.keys:
            starts = self.quota.starts.get(key)
            if starts is not None and self.started in starts:
                starts.remove(self.started)


class TrainingQuota:
    def __init__(
        self,
        per_client: int,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sweep_at: int = SWEEP_AT,
    ) -> None:
        self.per_client = per_client
        self.per_minute = per_minute
        self.clock = clock
        self.sweep_at = sweep_at
        self.running: dict[str, int] = {}
        self.starts: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        starts = self.starts.setdefault(key, deque())
        while starts and starts[0] <= now - MINUTE:
            starts.popleft()
        return starts

    def admit(self, keys: Sequence[str]) -> Ticket:
        """A ticket for one more run by the client with these keys, or QuotaExceeded."""
        now = self.clock()
        if len(self.starts) > self.sweep_at:
            self._sweep(now)
        for key in keys:
            if self.running.get(key, 0) >= self.per_client:
                runs = "one training run" if self.per_client == 1 else f"{self.per_client} runs"
                raise QuotaExceeded(
                    f"you already have {runs} going, the most one client may have at once "
                    f"(TRAIN_PER_CLIENT); wait for it to finish or stop it",
                    BUSY_RETRY_AFTER,
                )
            recent = self._recent(key, now)
            if len(recent) >= self.per_minute:
                wait = recent[-self.per_minute] + MINUTE - now
                raise QuotaExceeded(
                    f"you started {len(recent)} training runs in the last minute, the most one "
                    f"client may (TRAIN_PER_MINUTE); try again in {max(1, round(wait))} s",
                    wait,
                )
        for key in keys:
            self.running[key] = self.running.get(key, 0) + 1
            self._recent(key, now).append(now)
        return Ticket(self, keys, now)

    def _sweep(self, now: float) -> None:
        for key in list(self.starts):
            if not self._recent(key, now) and key not in self.running:
                del self.starts[key]
