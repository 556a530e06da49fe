"""Lesson bodies rendered on first use, once, and read from the render cache after a restart."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.content import load_course, loader
from app.content.cache import render_cache_dir

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


def test_after_a_restart_first_uses_read_the_cache_instead_of_rendering(
    fixture_course, tmp_path, renders
):
    first = load_course(fixture_course, lazy=True, cache_dir=tmp_path / "cache")
    expected = [(les.html, les.toc) for les in first.lessons]
    assert len(renders) == len(first.lessons)
    reloaded = load_course(fixture_course, lazy=True, cache_dir=tmp_path / "cache")
    assert not any(lesson.body.is_rendered for lesson in reloaded.lessons)
    assert [(les.html, les.toc) for les in reloaded.lessons] == expected
    assert len(renders) == len(first.lessons)  # none since the restart


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


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """The sources rendered from now on: the real renderer, with a tally."""
    seen: list[str] = []
    real = loader.render_body

    def counted(source: str, math_errors: list | None = None):
        seen.append(source)
        return real(source, math_errors)

    monkeypatch.setattr(loader, "render_body", counted)
    return seen


def _no_render(source: str, math_errors: list | None = None):
    raise AssertionError("rendered in the server process instead of read from the cache")


def test_concurrent_first_uses_of_a_body_render_it_once(content_dir, tmp_path, renders):
    seed_copies(content_dir, 1)
    (lesson,) = load_course(content_dir, lazy=True, cache_dir=tmp_path / "cache").lessons
    results = in_parallel(8, lambda: lesson.body.rendered())
    # One render: every thread got the very same objects, not equal copies.
    assert all(result is results[0] for result in results)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert len(renders) == 1


def test_concurrent_first_requests_for_a_lesson_page_render_its_body_once(
    make_app, content_dir, renders
):
    seed_copies(content_dir, 2)
    app = make_app(content_dir=content_dir)
    assert not app.state.course.get("copy-01").body.is_rendered
    with TestClient(app) as client:
        responses = in_parallel(4, lambda: client.get("/lessons/copy-01"))
    assert {r.status_code for r in responses} == {200}
    assert all(">relu_1<" in r.text for r in responses)
    assert len(renders) == 1
    assert not app.state.course.get("copy-00").body.is_rendered  # only what was asked for


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


def run_check(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "check", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def test_backprop_check_of_the_served_folder_fills_the_cache_so_the_server_renders_nothing(
    make_app, make_settings, content_dir, monkeypatch
):
    ids = seed_copies(content_dir, 3)
    data_dir = make_settings().data_dir
    env = {"CONTENT_DIR": str(content_dir), "DATA_DIR": str(data_dir)}
    result = run_check(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(render_cache_dir(data_dir).glob("*.json"))) == 3
    eager = load_course(content_dir)
    monkeypatch.setattr(loader, "render_body", _no_render)
    app = make_app(content_dir=content_dir)
    with TestClient(app) as client:
        for lesson_id in ids:
            assert client.get(f"/lessons/{lesson_id}").status_code == 200
            detail = client.get(f"/api/lessons/{lesson_id}").json()
            assert detail["html"] == eager.get(lesson_id).html


def test_backprop_check_of_another_folder_leaves_the_render_cache_alone(
    make_settings, content_dir, tmp_path
):
    seed_copies(content_dir, 1)
    served = tmp_path / "served"
    served.mkdir()
    data_dir = make_settings().data_dir
    result = run_check(
        str(content_dir), env={"CONTENT_DIR": str(served), "DATA_DIR": str(data_dir)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not render_cache_dir(data_dir).exists()
