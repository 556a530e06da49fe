"""A real uvicorn in a subprocess on 127.0.0.1, for end-to-end, browser and fault tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

#: Debian's Chromium, or another binary named by BACKPROP_CHROMIUM.
CHROMIUM = os.environ.get("BACKPROP_CHROMIUM", "/usr/bin/chromium")
#: Flags for Debian's Chromium here: as root it needs --no-sandbox, and without the
#: background-networking flags it keeps trying to reach Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def server_env(data: Path, content: Path = ROOT / "content") -> dict[str, str]:
    """A course served on a throwaway SQLite file in `data`: a DATABASE_URL from the shell or a
    .env must not send a test's or a benchmark's migrations and rows to some other database."""
    return {
        "CONTENT_DIR": str(content),
        "DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite:///{(data / 'backprop.db').as_posix()}",
    }


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs from a Server-Sent Events response, as they arrive."""
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The default command: uvicorn itself, with its own defaults (proxy headers on, trusting
#: 127.0.0.1), as a deployment that runs `uvicorn app.main:app` has them.
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
           "--port", "{port}", "--log-level", "warning"]  # fmt: skip
BACKPROP_SERVE = [sys.executable, "-m", "app.cli", "serve", "--port", "{port}"]


class LiveServer:
    """Starts `uvicorn app.main:app` (or `command`, "{port}" filled in) with the given
    environment; stopped by its own PID."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_path: Path,
        port: int | None = None,
        command: list[str] = UVICORN,
    ) -> None:
        self.env = env
        self.port = port or free_port()
        self.log_path = log_path
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LiveServer:
        env = {**os.environ, **self.env}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {timeout}s")

    def kill(self) -> None:
        """SIGKILL by PID: no shutdown handlers, no flushing — a crash."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close()

    def _close(self) -> None:
        log = getattr(self, "_log", None)
        if log and not log.closed:
            log.close()
