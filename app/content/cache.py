"""Rendered lesson bodies kept on disk as JSON, so a restart skips Markdown and Pygments for
bodies that have not changed.

An entry is `<key>.json` holding `{"html": ..., "toc": [{"level", "id", "title"}, ...]}`. The key
hashes the body's Markdown together with the renderer's fingerprint (the versions of markdown,
pygments, nh3, pymdown-extensions and latex2mathml and the source of render.py and mathml.py),
so any change to the text or to how it is rendered is a new key; `prune` deletes the entries
no current lesson uses. Only data is read back, never code: a damaged entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from ..config import make_private_dirs
from .models import TocEntry
from .render import Rendered

log = logging.getLogger("backprop.content")

#: Our file names in the folder: entries, and the pickles an earlier version wrote there.
_OURS = re.compile(r"[0-9a-f]{64}\.(?:json|pickle)")
#: The temporary files `put` writes (process id, thread id), left behind if it was killed.
_OUR_TMP = re.compile(r"\.[0-9a-f]{64}\.\d+\.\d+\.tmp")
#: A temporary file older than this is no write in progress (a write takes milliseconds).
STALE_TMP_SECONDS = 60


def render_cache_dir(data_dir: Path) -> Path:
    """Where the server and `backprop check` keep rendered bodies."""
    return data_dir / "cache" / "lessons"


#: The libraries a rendered body depends on, and our modules that render it.
RENDER_LIBRARIES = ("markdown", "pygments", "nh3", "pymdown-extensions", "latex2mathml")
RENDER_MODULES = ("render.py", "mathml.py")


@lru_cache(maxsize=1)
def renderer_fingerprint() -> str:
    """What a rendered body depends on besides its Markdown: library versions and our renderer."""
    libraries = " ".join(f"{name}={version(name)}" for name in RENDER_LIBRARIES)
    here = Path(__file__).parent
    modules = " ".join(
        f"{name}={hashlib.sha256((here / name).read_bytes()).hexdigest()[:16]}"
        for name in RENDER_MODULES
    )
    return f"{libraries} {modules}"


class RenderCache:
    """(html, toc) per body in one folder; written atomically, read leniently."""

    def __init__(self, folder: Path, fingerprint: str | None = None) -> None:
        self.folder = folder
        self.fingerprint = fingerprint or renderer_fingerprint()

    def key(self, source: str) -> str:
        """The entry name of a body's Markdown under this renderer."""
        return hashlib.sha256(f"{self.fingerprint}\0{source}".encode()).hexdigest()

    def get(self, key: str) -> Rendered | None:
        """The cached (html, toc), or None when absent or unreadable."""
        try:
            data = json.loads((self.folder / f"{key}.json").read_bytes())
            toc = tuple(
                TocEntry(int(e["level"]), str(e["id"]), str(e["title"])) for e in data["toc"]
            )
            html = data["html"]
            if not isinstance(html, str):
                raise TypeError("html is not a string")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:  # damaged: a miss
            log.warning("ignoring unreadable render cache entry %s: %s", key, exc)
            return None
        return html, toc

    def put(self, key: str, rendered: Rendered) -> None:
        """Store an entry: written to a temporary file, then renamed over the entry."""
        html, toc = rendered
        data = {
            "html": html,
            "toc": [{"level": e.level, "id": e.id, "title": e.title} for e in toc],
        }
        # per process and thread: concurrent writers of one key never share a temporary file
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            make_private_dirs(self.folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(data, ensure_ascii=False).encode())
            os.replace(tmp, self.folder / f"{key}.json")
        except OSError as exc:  # a read-only data folder only costs a render per restart
            log.warning("cannot write the render cache: %s", exc)
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def prune(self, keep: Iterable[str]) -> int:
        """Delete our entries whose keys are not in `keep`, and our temporary files older than
        STALE_TMP_SECONDS (a crash mid-write leaves them); returns how many files went."""
        wanted = {f"{key}.json" for key in keep}
        try:
            names = os.listdir(self.folder)
        except OSError:  # no folder yet: nothing to prune
            return 0
        stale_before = time.time() - STALE_TMP_SECONDS
        deleted = 0
        for name in names:
            path = self.folder / name
            try:
                if _OUR_TMP.fullmatch(name):
                    if path.lstat().st_mtime >= stale_before:  # maybe being written right now
                        continue
                elif name in wanted or not _OURS.fullmatch(name):
                    continue
                path.unlink()
                deleted += 1
            except OSError:  # another process pruned it first, or the folder is read-only
                pass
        return deleted
