"""Filling the render cache in the background, in another process, after the server starts.

The server loads lessons lazily (see loader.py): a body is rendered on its first request, which
costs about 25 ms. This process renders the bodies the cache does not have yet, in course order,
and writes them to the cache; the server then reads each one from disk (well under a millisecond)
when it is first asked for. A process rather than a thread, so highlighting never holds the
server's GIL; at the lowest CPU priority, so it yields the CPU to requests.

The server writes the lessons' paths to the process's stdin, one JSON list on one line, and keeps
stdin open: end of file (the server stopping, or dying) makes the process stop after the lesson
it is rendering.

    python -m app.content.warmup CONTENT_DIR CACHE_DIR < paths.json
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..config import get_settings
from ..logs import configure_logging
from .cache import RenderCache
from .loader import ContentError, load_lesson, read_bytes

log = logging.getLogger("backprop.content")

#: Below this many unrendered lessons, starting a process costs more than rendering them on demand.
MIN_LESSONS = 8

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def warm(content_dir: Path, cache_dir: Path, paths: Sequence[str], stop: threading.Event) -> int:
    """Render and cache every listed lesson the cache lacks; returns how many were rendered."""
    cache = RenderCache(cache_dir)
    rendered = 0
    for rel in paths:
        if stop.is_set():
            break
        try:
            raw = read_bytes(content_dir / rel)
            key = cache.key(rel, raw)
            if key in cache:  # the server needed it first, or another warm-up got there
                continue
            cache.put(key, load_lesson(content_dir / rel, rel, raw))
            rendered += 1
        except ContentError:
            continue  # edited into an error since the server loaded it: the server reports it
        except Exception:  # the server hits the same failure on first use; keep warming the rest
            log.exception("cannot render %s", rel)
    return rendered


class Warmup:
    """The warm-up process as the server sees it: started after startup, stopped at shutdown."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    @classmethod
    def start(cls, content_dir: Path, cache_dir: Path, paths: Sequence[str]) -> Warmup:
        """Start rendering `paths` (relative to `content_dir`, in this order) in another process."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH")])
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "app.content.warmup", str(content_dir), str(cache_dir)],
            stdin=subprocess.PIPE,
            env=env,
        )
        _lowest_priority(process.pid)  # at once, not only once its imports are done
        assert process.stdin is not None
        process.stdin.write(json.dumps(list(paths)).encode() + b"\n")
        process.stdin.flush()
        return cls(process)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the warm-up to finish; False if it is still running after `timeout`."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the process to stop (end of its stdin), wait for it, kill it if it lingers."""
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:  # it has already exited and the pipe is broken
                pass
        if not self.wait(timeout):
            self.process.kill()
            self.process.wait()


def _lowest_priority(pid: int = 0) -> None:
    """Run only on CPU time requests leave over: SCHED_IDLE on Linux, else the highest nice."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or the process has already gone
        try:
            os.setpriority(os.PRIO_PROCESS, pid, 19)
        except OSError:
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """The warm-up process: read the list, render until done or until stdin closes."""
    settings = get_settings()  # the server's environment: its lines share the server's format
    configure_logging(settings.log_level, settings.log_format)
    content_dir, cache_dir = (Path(arg) for arg in (argv or sys.argv[1:]))
    paths = json.loads(sys.stdin.buffer.readline() or b"[]")
    _lowest_priority()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".warmup.lock", "wb") as lock:
        try:  # several server workers share one cache: one warm-up is enough
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        stop = threading.Event()

        def watch_stdin() -> None:
            # Unbuffered: a daemon thread blocked inside sys.stdin's lock aborts interpreter exit.
            while os.read(sys.stdin.fileno(), 4096):
                pass  # end of file: the server is stopping or gone
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        warm(content_dir, cache_dir, paths, stop)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: stop quietly
        sys.exit(130)
