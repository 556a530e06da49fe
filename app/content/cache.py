"""An on-disk cache of rendered lessons, so restarts skip Markdown and Pygments for files
that have not changed. Highlighting dominates load time (about 25 ms for the seed lesson);
a cached lesson loads in well under a millisecond.

Keys cover the file's bytes, its path, the renderer's source and the library versions, so any
change to the content or to how it is rendered misses the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from .models import Lesson, Problem

log = logging.getLogger("backprop.content")


@lru_cache(maxsize=1)
def _fingerprint() -> bytes:
    digest = hashlib.sha256()
    for module in ("loader.py", "render.py", "models.py", "cache.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    for package in ("markdown", "pygments", "nh3", "pyyaml"):
        digest.update(f"{package}={version(package)}".encode())
    return digest.digest()


class RenderCache:
    """Pickled (Lesson, warnings) per key in one folder; written atomically, read leniently."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, shown_path: str, raw: bytes) -> str:
        digest = hashlib.sha256(_fingerprint())
        digest.update(shown_path.encode())
        digest.update(b"\0")
        digest.update(raw)
        return digest.hexdigest()

    def __contains__(self, key: str) -> bool:
        return (self.folder / f"{key}.pickle").is_file()

    def get(self, key: str) -> tuple[Lesson, list[Problem]] | None:
        try:
            with open(self.folder / f"{key}.pickle", "rb") as fh:
                # Our own files in our own data folder: whoever can write there can run code anyway.
                value = pickle.load(fh)  # noqa: S301
        except FileNotFoundError:
            return None
        except Exception:  # a truncated or stale entry is a miss, not a failure
            log.warning("ignoring unreadable render cache entry %s", key)
            return None
        return value if isinstance(value, tuple) and isinstance(value[0], Lesson) else None

    def put(self, key: str, value: tuple[Lesson, list[Problem]]) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # per process and thread: concurrent writers of one key never share a temporary file
            tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            # owner-only: a rendered lesson holds its quiz's answer key
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as fh:
                fh.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, self.folder / f"{key}.pickle")
        except OSError as exc:  # a read-only data folder only costs speed
            log.warning("cannot write the render cache: %s", exc)
