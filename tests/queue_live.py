"""The training queue for end-to-end tests: `backprop worker` subprocesses, SSE reading, waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
#: Fields of a result that differ between any two runs of one configuration.
VARYING = ("run_id", "duration_seconds", "samples_per_second")


class Worker:
    """`backprop worker --processes N` in a subprocess; stopped or killed by its own PID."""

    def __init__(self, env: dict[str, str], processes: int, log_path: Path) -> None:
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--processes", str(processes)],
            cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """The PIDs of this supervisor's worker processes (from /proc)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                # multiprocessing's resource tracker is a child too, but trains nothing
                if int(fields[1]) == self.pid and b"spawn_main" in command:
                    found.append(int(entry.name))
        return found

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it would not go; the exit code."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for child in self.children():
                os.kill(child, signal.SIGKILL)
            self.process.kill()
            self.process.wait(10)
        self._log.close()
        return self.process.returncode


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def same_run(result: dict) -> str:
    """A result without what changes from run to run, as canonical JSON (floats exactly)."""
    kept = {k: v for k, v in result.items() if k not in VARYING}
    return json.dumps(kept, sort_keys=True, allow_nan=False)


class Queue:
    """SQL on the test's schema: what the queue holds."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()

    def run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT * FROM training_runs WHERE id = :id"), {"id": run_id}
            ).mappings()
            return dict(row.one())

    def job_exists(self, job_id: int | None) -> bool:
        found = self.scalar("SELECT count(*) FROM procrastinate_jobs WHERE id = :id", id=job_id)
        return bool(found)

    def live_workers(self) -> int:
        return self.scalar(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - interval '5 seconds'"
        )

    def epochs(self, run_id: str) -> int:
        return self.scalar("SELECT count(*) FROM training_epochs WHERE run_id = :id", id=run_id)

    def clear(self) -> None:
        """Nothing left waiting or running (between tests)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM procrastinate_jobs"))
            conn.execute(sa.text("DELETE FROM procrastinate_workers"))
            conn.execute(
                sa.text(
                    "UPDATE training_runs SET status = 'cancelled', finished_at = now() "
                    "WHERE status IN ('queued', 'running')"
                )
            )
