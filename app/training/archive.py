"""Finished runs kept for an hour so their networks can be downloaded (GET /train/{id}/export).

In this process's memory, bounded by count and by bytes: the oldest runs go first, and a run
older than KEEP_SECONDS is gone. The run id is the key and the only credential: 128 random bits
returned to whoever started the run, so a run is downloaded by whoever it was given to. With
several web processes (or TRAINING_BACKEND=queue behind a load balancer) a run is kept by the
process that answered its POST /train; the others answer 404.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: How long a finished run can be exported.
KEEP_SECONDS = 3600.0
MAX_RUNS = 500
#: Parameters and custom points together, in bytes (a 100,000-parameter network is 400 KB).
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KeptRun:
    """What export needs: the configuration as trained (custom points too), and the weights."""

    config: dict[str, Any]
    params: bytes | None  # float32, little-endian; None: too large to keep, or not completed
    status: str
    test_accuracy: float
    kept_at: float

    @property
    def size(self) -> int:
        rows = len((self.config.get("data") or {}).get("y") or ())
        return len(self.params or b"") + 64 * rows + 1024


class RunArchive:
    """run id -> KeptRun, the newest MAX_RUNS within MAX_BYTES, each for KEEP_SECONDS."""

    def __init__(
        self,
        *,
        keep_seconds: float = KEEP_SECONDS,
        max_runs: int = MAX_RUNS,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keep_seconds, self.max_runs, self.max_bytes = keep_seconds, max_runs, max_bytes
        self.clock = clock
        self._runs: OrderedDict[str, KeptRun] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._runs)

    def _drop_oldest(self) -> None:
        _, run = self._runs.popitem(last=False)
        self._bytes -= run.size

    def _expire(self, now: float) -> None:
        while self._runs and next(iter(self._runs.values())).kept_at <= now - self.keep_seconds:
            self._drop_oldest()

    def keep(self, *, config: dict[str, Any], result: dict[str, Any]) -> bool:
        """Keep a finished run; takes `params` out of `result` (it is never sent to clients).
        Whether the run can be exported from here."""
        encoded = result.pop("params", None)
        run_id = result.get("run_id")
        if not run_id:
            return False
        now = self.clock()
        self._expire(now)
        params = base64.b64decode(encoded) if encoded else None
        run = KeptRun(
            config=_compact(config),
            params=params,
            status=str(result.get("status")),
            test_accuracy=float(result.get("test_accuracy", 0.0)),
            kept_at=now,
        )
        if run.size > self.max_bytes:
            return False
        self._runs[run_id] = run
        self._bytes += run.size
        while len(self._runs) > self.max_runs or self._bytes > self.max_bytes:
            self._drop_oldest()
        return params is not None and run.status == "completed"

    def get(self, run_id: str) -> KeptRun | None:
        """The run, if it finished here within KEEP_SECONDS."""
        self._expire(self.clock())
        return self._runs.get(run_id)


def _compact(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with own points as one float64 array and one string per class: what
    KeptRun.size counts (as lists of Python floats and strings they take several times more)."""
    data = config.get("data")
    if not data:
        return config
    names: dict[str, str] = {}
    labels = [names.setdefault(label, label) for label in data["y"]]
    return {**config, "data": {"x": np.asarray(data["x"], dtype=np.float64), "y": labels}}


def archive_of(state: Any) -> RunArchive:
    """The app's archive (`app.state.training_archive`), created with the first run kept."""
    archive = getattr(state, "training_archive", None)
    if archive is None:
        archive = state.training_archive = RunArchive()
    return archive
