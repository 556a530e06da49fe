"""Lesson bodies rendered on first use, once, and ahead of time by the background warm-up."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.content import load_course, loader
from app.content.warmup import MIN_LESSONS

from .conftest import ROOT, SEED

SEED_TEXT = (SEED / "dl-intro-neural-networks.md").read_text(encoding="utf-8")


def seed_copies(folder: Path, count: int) -> list[str]:
    """`count` lessons shaped like the seed, each with its own id and its own code."""
    head, body = SEED_TEXT.split("\n---\n", 1)
    ids = []
    for n in range(count):
        lesson_id = f"copy-{n:02d}"
        meta = head.replace("id: dl-intro-neural-networks", f"id: {lesson_id}")
        meta = meta.replace("order: 1", f"order: {n}")
        text = f"{meta}\n---\n{body.replace('def relu(', f'def relu_{n}(')}"
        (folder / f"{lesson_id}.md").write_text(text, encoding="utf-8")
        ids.append(lesson_id)
    return ids


def in_parallel(count: int, work) -> list:
    """Run `work()` in `count` threads released together, so their first uses race."""
    barrier = threading.Barrier(count)

    def run(_: int):
        barrier.wait()
        return work()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_lazily_loaded_lessons_render_the_same_html_and_toc_as_an_eager_load(
    fixture_course, tmp_path
):
    eager = load_course(fixture_course)
    lazy = load_course(fixture_course, lazy=True)
    cached = load_course(fixture_course, lazy=True, cache_dir=tmp_path / "cache")
    assert all(lesson.body.is_rendered for lesson in eager.lessons)
    assert not any(lesson.body.is_rendered for lesson in lazy.lessons + cached.lessons)
    for lesson in eager.lessons:
        for other in (lazy.get(lesson.id), cached.get(lesson.id)):
            assert (other.html, other.toc) == (lesson.html, lesson.toc)
    # what the lazy load rendered is now in the cache, and a later load reads it from there
    reloaded = load_course(fixture_course, lazy=True, cache_dir=tmp_path / "cache")
    assert all(lesson.body.is_rendered for lesson in reloaded.lessons)
    assert reloaded.lessons == eager.lessons
    assert [(les.html, les.toc) for les in reloaded.lessons] == [
        (les.html, les.toc) for les in eager.lessons
    ]


def test_the_lesson_page_and_api_of_a_lazily_loaded_lesson_show_the_eagerly_rendered_body(
    make_app, fixture_course
):
    eager = load_course(fixture_course).get("dl-intro-neural-networks")
    with TestClient(make_app(content_dir=fixture_course)) as client:
        detail = client.get("/api/lessons/dl-intro-neural-networks").json()
        page = client.get("/lessons/dl-intro-neural-networks").text
    assert detail["html"] == eager.html
    assert detail["toc"] == [{"level": t.level, "id": t.id, "title": t.title} for t in eager.toc]
    assert eager.html in page
    assert all(f'href="#{entry.id}"' in page for entry in eager.toc)


def _no_render(source: str):
    raise AssertionError("rendered in the server process instead of read from the cache")


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """The sources rendered from now on: the real renderer, with a tally."""
    seen: list[str] = []
    real = loader.render_body

    def counted(source: str):
        seen.append(source)
        return real(source)

    monkeypatch.setattr(loader, "render_body", counted)
    return seen


def test_concurrent_first_uses_of_a_body_render_it_once(content_dir, tmp_path, renders):
    seed_copies(content_dir, 1)
    (lesson,) = load_course(content_dir, lazy=True, cache_dir=tmp_path / "cache").lessons
    results = in_parallel(8, lambda: lesson.body.rendered())
    # One render: every thread got the very same objects, not equal copies.
    assert all(result is results[0] for result in results)
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 1
    assert len(renders) == 1


def test_concurrent_first_requests_for_a_lesson_page_build_it_once(make_app, content_dir):
    seed_copies(content_dir, 2)
    app = make_app(content_dir=content_dir)
    lesson = app.state.course.get("copy-01")
    assert not lesson.body.is_rendered
    pages = in_parallel(8, lambda: app.state.lesson_pages["copy-01"])
    assert all(page is pages[0] for page in pages)
    assert not app.state.course.get("copy-00").body.is_rendered  # only what was asked for
    with TestClient(app) as client:
        responses = in_parallel(4, lambda: client.get("/lessons/copy-00"))
    assert {r.status_code for r in responses} == {200}
    assert all(">relu_0<" in r.text for r in responses)


def test_a_broken_lesson_is_reported_with_file_and_line_at_startup_and_not_served(
    make_app, content_dir, caplog
):
    seed_copies(content_dir, 1)
    # the first question lists one option twice: an error found while building the quiz
    broken_quiz = SEED_TEXT.replace("id: dl-intro-neural-networks", "id: broken-quiz").replace(
        "   - To speed up training\n", "   - To normalize inputs\n", 1
    )
    assert broken_quiz != SEED_TEXT.replace("id: dl-intro-neural-networks", "id: broken-quiz")
    (content_dir / "broken-quiz.md").write_text(broken_quiz, encoding="utf-8")
    (content_dir / "broken-meta.md").write_text(
        "---\nid: broken-meta\ntitle: T\nsection: s\nduration: soon\n---\nBody\n", encoding="utf-8"
    )
    with caplog.at_level(logging.ERROR, logger="backprop.content"):
        app = make_app(content_dir=content_dir)
    errors = {(p.path, p.line): p.message for p in app.state.course.errors}
    quiz_line = next(
        n for n, line in enumerate(broken_quiz.split("\n"), 1) if line.startswith("1. What is")
    )
    assert "the same option twice" in errors["broken-quiz.md", quiz_line]
    assert "cannot read duration" in errors["broken-meta.md", 5]
    logged = caplog.text
    assert f"broken-quiz.md:{quiz_line}: error:" in logged and "broken-meta.md:5: error:" in logged
    with TestClient(app) as client:
        assert client.get("/lessons/broken-quiz").status_code == 404
        assert client.get("/lessons/broken-meta").status_code == 404
        assert client.get("/lessons/copy-00").status_code == 200


def test_backprop_check_still_renders_every_body(content_dir, capsys, renders):
    from app.cli import main

    seed_copies(content_dir, 2)
    assert main(["check", str(content_dir)]) == 0
    assert "2 lesson(s) OK" in capsys.readouterr().out
    assert len(renders) == 2  # what the command itself rendered
    assert all(lesson.body.is_rendered for lesson in load_course(content_dir).lessons)


def test_a_small_course_starts_no_warm_up_process(client):
    assert client.app.state.render_warmup is None  # rendering on demand costs less


def test_the_background_warm_up_fills_the_cache_and_the_server_then_reads_it(
    make_app, make_settings, content_dir, monkeypatch
):
    ids = seed_copies(content_dir, MIN_LESSONS + 2)
    cache = make_settings().data_dir / "cache" / "lessons"
    app = make_app(content_dir=content_dir)
    with TestClient(app) as client:
        warmup = app.state.render_warmup
        assert warmup is not None
        assert warmup.wait(120), "the warm-up did not finish"
        assert warmup.process.returncode == 0
        assert len(list(cache.glob("*.pickle"))) == len(ids)
        lesson = app.state.course.get(ids[-1])
        assert not lesson.body.is_rendered  # the server has rendered nothing itself
        # read from the cache the warm-up wrote: any render in this process would now fail
        real = loader.render_body
        monkeypatch.setattr(loader, "render_body", _no_render)
        lesson.body.rendered()
        monkeypatch.setattr(loader, "render_body", real)
        assert client.get(f"/lessons/{ids[-1]}").status_code == 200
    eager = load_course(content_dir).get(ids[-1])
    assert (lesson.html, lesson.toc) == (eager.html, eager.toc)


def test_shutdown_stops_a_warm_up_that_is_still_running(make_app, make_settings, content_dir):
    seed_copies(content_dir, 60)
    app = make_app(content_dir=content_dir)
    with TestClient(app):
        warmup = app.state.render_warmup
        assert warmup.running
    # The lifespan's shutdown has stopped it and reaped it: no process is left behind.
    assert warmup.process.returncode is not None
    assert not warmup.running
    cache = make_settings().data_dir / "cache" / "lessons"
    assert len(list(cache.glob("*.pickle"))) < 60  # stopped, rather than waited for


def test_the_warm_up_process_stops_when_the_server_process_dies(content_dir, tmp_path):
    seed_copies(content_dir, 40)
    server = subprocess.run(
        [sys.executable, "-c", DYING_SERVER, str(content_dir), str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    pid = int(server.stdout)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.05)
    assert not process_alive(pid), "the warm-up outlived the server that started it"
    # it stopped early rather than running to the end: most lessons were never rendered
    assert len(list((tmp_path / "cache").glob("*.pickle"))) < 40


#: A "server" that starts the warm-up, then dies without any shutdown (as under kill -9).
DYING_SERVER = """
import os, sys
from pathlib import Path
from app.content.warmup import Warmup
content, cache = Path(sys.argv[1]), Path(sys.argv[2])
warmup = Warmup.start(content, cache, sorted(p.name for p in content.glob("*.md")))
print(warmup.process.pid, flush=True)
os._exit(0)
"""


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
