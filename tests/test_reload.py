"""The authors' loop: `backprop serve --reload` shows an edited lesson on the next page load."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .live import ROOT, free_port

SEED = ROOT / "content" / "dl-intro-neural-networks.md"


def wait_for(url: str, predicate, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=2).text
            if predicate(last):
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s; last page: {last[:200]!r}")


def test_serve_reload_picks_up_an_edited_lesson(tmp_path: Path):
    content = tmp_path / "content"
    content.mkdir()
    lesson = content / SEED.name
    shutil.copy(SEED, lesson)
    port = free_port()
    env = {**os.environ, "CONTENT_DIR": str(content), "DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--reload", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/lessons/dl-intro-neural-networks"
    try:
        wait_for(url, lambda page: "Deeper networks can learn" in page)
        lesson.write_text(
            lesson.read_text().replace("Deeper networks can learn", "Deeper models can learn")
        )
        wait_for(url, lambda page: "Deeper models can learn" in page)
    finally:
        # The reloader and its worker share the session we started: stop that group by its id.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
