"""What the server prints on stderr: time, level and logger on every line, in text or JSON."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.logs import RequestLog, configure_logging

from .live import ROOT, free_port, server_env

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S"
)
LESSON = "/lessons/dl-intro-neural-networks"
#: What the server says it serves of the bundled course: every lesson in content/.
SERVING = f"serving {len(list((ROOT / 'content').glob('*.md')))} lessons"


class Served:
    """A server started by `serving`: its URL, then (once stopped) what it wrote to stderr."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stderr = ""

    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@contextmanager
def serving(tmp_path: Path, command: list[str], **env: str) -> Iterator[Served]:
    """Run `command` (a server on `{port}`) with `env`, until it answers /healthz; stop it by
    PID on leaving, then fill in its stderr."""
    port = free_port()
    values = {
        **os.environ,
        **server_env(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "text",
        **env,
    }
    err_path = tmp_path / "stderr.log"
    served = Served(f"http://127.0.0.1:{port}")
    with open(err_path, "wb") as err:
        process = subprocess.Popen(
            [part.format(port=port) for part in command],
            cwd=ROOT, env=values, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, err_path.read_text()
                assert time.monotonic() < deadline, "no answer from /healthz within 30 s"
                try:
                    if httpx.get(served.url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            yield served
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    served.stderr = err_path.read_text(encoding="utf-8")


UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port",
           "{port}"]  # fmt: skip
BACKPROP_SERVE = [sys.executable, "-m", "app.cli", "serve", "--port", "{port}"]


def json_lines(stderr: str) -> list[dict]:
    entries = [json.loads(line) for line in stderr.splitlines()]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    return entries


def test_with_log_format_json_every_stderr_line_of_uvicorn_is_a_json_object(tmp_path):
    with serving(tmp_path, UVICORN, LOG_FORMAT="json") as server:
        assert httpx.get(server.url + LESSON + "?token=never-logged").status_code == 200
        assert httpx.get(server.url + "/no%0Awhere").status_code == 404
    entries = json_lines(server.stderr)
    assert any(
        e["logger"] == "backprop" and e["level"] == "INFO" and SERVING in e["message"]
        for e in entries
    )
    # uvicorn's own lines share the format, from startup to shutdown
    messages = {e["message"] for e in entries if e["logger"] == "uvicorn.error"}
    assert {"Application startup complete.", "Application shutdown complete."} <= messages
    requests = [e for e in entries if e.get("path") == LESSON]
    assert len(requests) == 1  # ours only: uvicorn's access log is off
    assert requests[0]["logger"] == "backprop.access"
    assert requests[0]["method"] == "GET" and requests[0]["status"] == 200
    assert isinstance(requests[0]["duration_ms"], float) and requests[0]["duration_ms"] > 0
    assert [e["status"] for e in entries if e.get("path") == "/no\nwhere"] == [404]
    assert "never-logged" not in server.stderr


def test_with_log_format_json_backprop_serve_prints_only_json_lines_too(tmp_path):
    with serving(tmp_path, BACKPROP_SERVE, LOG_FORMAT="json") as server:
        assert httpx.get(server.url + "/docs").status_code == 200
    entries = json_lines(server.stderr)
    assert any(e["message"].startswith("Uvicorn running on") for e in entries)
    assert any(SERVING in e["message"] for e in entries)
    assert [(e["method"], e["status"]) for e in entries if e.get("path") == "/docs"] == [
        ("GET", 200)
    ]


def test_text_lines_have_time_level_and_logger_and_a_request_is_one_line(tmp_path):
    with serving(tmp_path, UVICORN) as server:
        assert httpx.get(server.url + LESSON + "?token=never-logged").status_code == 200
        assert httpx.get(server.url + "/no%0Awhere%1b[2J").status_code == 404
    lines = server.lines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), server.stderr
    assert any(f" INFO backprop: {SERVING} from " in line for line in lines)
    assert any(" INFO uvicorn.error: Application startup complete." in line for line in lines)
    requests = [line for line in lines if LESSON in line]
    assert len(requests) == 1 and f" INFO backprop.access: GET {LESSON} 200 " in requests[0]
    assert any(r"backprop.access: GET /no\nwhere\x1b[2J 404 " in line for line in lines)
    assert "never-logged" not in server.stderr


def test_log_level_warning_drops_the_info_lines_and_keeps_warnings_formatted(tmp_path):
    seed_only = tmp_path / "seed-only"
    seed_only.mkdir()
    seed = ROOT / "content" / "dl-intro-neural-networks.md"
    (seed_only / seed.name).write_bytes(seed.read_bytes())
    with serving(tmp_path, UVICORN, LOG_LEVEL="WARNING", CONTENT_DIR=str(seed_only)) as server:
        assert httpx.get(server.url + LESSON).status_code == 200
    lines = server.lines()
    assert "serving" not in server.stderr and " INFO " not in server.stderr
    # the seed alone links to a lesson that is not there: a warning at load
    [warning] = [line for line in lines if "nextLessonId" in line]
    assert TEXT_LINE.match(warning) and " WARNING backprop.content: " in warning


def test_a_course_with_a_broken_file_says_how_many_were_skipped(make_app, content_dir, capsys):
    good = (ROOT / "content" / "dl-intro-neural-networks.md").read_text(encoding="utf-8")
    (content_dir / "good.md").write_text(good, encoding="utf-8")
    make_app(content_dir=content_dir)
    (content_dir / "broken.md").write_text("---\nid: [\n---\nBody\n", encoding="utf-8")
    make_app(content_dir=content_dir)
    serving_lines = [line for line in capsys.readouterr().err.splitlines() if "serving" in line]
    assert len(serving_lines) == 2, serving_lines  # one per app: no handler added twice
    assert serving_lines[0].endswith(f"INFO backprop: serving 1 lessons from {content_dir}")
    assert serving_lines[1].endswith(
        f"INFO backprop: serving 1 lessons from {content_dir} (1 files skipped with errors)"
    )


def test_a_missing_content_folder_is_not_counted_as_a_skipped_file(make_app, tmp_path, capsys):
    make_app(content_dir=tmp_path / "absent")
    err = capsys.readouterr().err
    assert "content folder does not exist" in err
    assert f"serving 0 lessons from {tmp_path / 'absent'}\n" in err


def test_a_request_that_raises_is_logged_as_500_and_a_traceback_stays_on_one_json_line(capsys):
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("boom\nsecond line")

    configure_logging("INFO", "json")
    try:
        client = TestClient(RequestLog(broken), raise_server_exceptions=False)  # no lifespan
        assert client.get("/boom").status_code == 500
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("backprop").exception("handled")
        lines = capsys.readouterr().err.splitlines()
    finally:
        configure_logging("INFO", "text")
    entries = json_lines("\n".join(lines))
    assert [(e["path"], e["status"]) for e in entries if e["logger"] == "backprop.access"] == [
        ("/boom", 500)
    ]
    [handled] = [e for e in entries if e["message"] == "handled"]
    assert handled["level"] == "ERROR" and "ValueError: bad" in handled["exception"]
