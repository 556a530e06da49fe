"""Startup time with a large course: generate N lessons and, in one run, compare with an app
serving the bundled one-lesson course.

Cold (empty render cache): how long `create_app` takes (read and validate every file; bodies are
rendered on first use), how long until the app has served a lesson page through ASGI (with its
lifespan, which starts the background warm-up), how long a not-yet-rendered lesson's first
request takes, how long the background warm-up takes to fill the render cache, and whether
serving slows down meanwhile. Warm: the same with the cache filled.

The generated lessons are the seed lesson with its code varied per lesson (identifiers and
integers), so no two lessons share a code block.

    python bench/startup.py [--lessons 1000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from app.config import Settings  # noqa: E402
from app.content import Lesson  # noqa: E402
from app.main import create_app  # noqa: E402

SEED = ROOT / "content" / "dl-intro-neural-networks.md"
FENCED = re.compile(r"^```[^\n]*\n.*?^```$", re.MULTILINE | re.DOTALL)
DEFINED = re.compile(r"\b(?:def|class)\s+([A-Za-z_]\w*)")
INTEGER = re.compile(r"(?<![\w.])\d+(?![\w.])")


def vary_code(body: str, n: int) -> str:
    """Rename what each code block defines and shift its integers: no two lessons share code."""

    def vary(match: re.Match) -> str:
        code = match.group(0)
        for name in set(DEFINED.findall(code)) - {"__init__"}:
            code = re.sub(rf"\b{name}\b", f"{name}_{n}", code)
        return INTEGER.sub(lambda m: str(int(m.group(0)) + n), code)

    return FENCED.sub(vary, body)


def generate(folder: Path, count: int) -> None:
    """`count` lessons shaped like the seed (code, diagrams, a quiz), in 10 sections."""
    text = SEED.read_text(encoding="utf-8")
    head, body = text.split("\n---\n", 1)
    for n in range(count):
        meta = (
            head.replace("id: dl-intro-neural-networks", f"id: lesson-{n:04d}")
            .replace("order: 1", f"order: {n}")
            .replace("section: fundamentals", f"section: section-{n % 10}")
            .replace("nextLessonId: dl-building-networks", f"nextLessonId: lesson-{n + 1:04d}")
        )
        path = folder / f"section-{n % 10}" / f"lesson-{n:04d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{meta}\n---\n{vary_code(body, n)}", encoding="utf-8")


def get(client: TestClient, url: str) -> float:
    """Seconds one GET takes; it must succeed."""
    start = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def timed_body(lesson: Lesson) -> float:
    """Seconds to get a lesson's html and toc (from the disk cache, if the warm-up put it there)."""
    start = time.perf_counter()
    lesson.body.rendered()
    return time.perf_counter() - start


def timed_page(pages: Mapping[str, object], lesson: Lesson) -> float:
    """Seconds to build a lesson's page on its first lookup (body from the cache, Jinja)."""
    start = time.perf_counter()
    pages[lesson.id]
    return time.perf_counter() - start


def median_ms(client: TestClient, url: str, count: int = 100) -> float:
    return statistics.median(get(client, url) for _ in range(count)) * 1000


def start(settings: Settings, first_url: str) -> dict[str, float]:
    """Time create_app, the first lesson page, a not-yet-rendered lesson and the warm-up."""
    result: dict[str, float] = {}
    t0 = time.perf_counter()
    app = create_app(settings)
    result["create_app"] = time.perf_counter() - t0
    course = app.state.course
    result["lessons"] = len(course.lessons)
    with TestClient(app) as client:  # runs the lifespan: the warm-up starts here
        get(client, first_url)
        result["first_page"] = time.perf_counter() - t0
        # The warm-up goes in course order: the last lessons are the last it reaches.
        cache_dir = settings.data_dir / "cache" / "lessons"
        result["cached_by_then"] = len(list(cache_dir.glob("*.pickle")))
        last = course.lessons[-10:]
        result["unrendered"] = not any(lesson.body.is_rendered for lesson in last)
        result["unrendered_request"] = statistics.median(get(client, les.url) for les in last)
        warmup = app.state.render_warmup
        result["page_during_warmup_ms"] = median_ms(client, first_url)
        result["warmup_running"] = warmup is not None and warmup.running
        if warmup is not None:
            warmup.wait(600)
        result["warmed"] = time.perf_counter() - t0
        # Lessons the warm-up cached and this process has not touched yet, 10 for each figure.
        lessons = course.lessons
        middle = lessons[len(lessons) // 2 :][:10]
        result["cached_first_request"] = statistics.median(get(client, les.url) for les in middle)
        result["cached_body_load"] = statistics.median(
            timed_body(les) for les in lessons[len(lessons) // 3 :][:10]
        )
        result["cached_page_build"] = statistics.median(
            timed_page(app.state.lesson_pages, les) for les in lessons[len(lessons) // 4 :][:10]
        )
        result["page_after_warmup_ms"] = median_ms(client, first_url)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lessons", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "content"
        generate(content, args.lessons)
        common = {"data_dir": Path(tmp) / "data", "secret_key": "b" * 32, "_env_file": None}
        baseline = start(
            Settings(content_dir=ROOT / "content", **common), "/lessons/dl-intro-neural-networks"
        )
        cold = start(Settings(content_dir=content, **common), "/lessons/lesson-0000")
        cache_entries = len(list((Path(tmp) / "data" / "cache" / "lessons").glob("*.pickle")))
        warm = start(Settings(content_dir=content, **common), "/lessons/lesson-0000")
    served = int(cold["lessons"])

    def verdict(seconds: float) -> str:
        return f"target < 3 s {'met' if seconds < 3 else 'NOT met'}"

    print(
        f"bundled course (1 lesson): create_app {baseline['create_app']:.3f} s,"
        f" first lesson page served {baseline['first_page']:.3f} s"
    )
    print(
        f"{served} lessons, cold (empty render cache): create_app {cold['create_app']:.3f} s"
        f" ({cold['create_app'] / served * 1000:.2f} ms/lesson) — {verdict(cold['create_app'])}"
    )
    print(
        f"{served} lessons, cold: first lesson page served {cold['first_page']:.3f} s"
        f" after the start — {verdict(cold['first_page'])}"
    )
    print(
        f"{served} lessons, cold: first request of a not-yet-rendered lesson (median of the"
        f" last 10 in course order, {'none' if cold['unrendered'] else 'SOME'} rendered before;"
        f" {int(cold['cached_by_then'])} cache entries by then):"
        f" {cold['unrendered_request'] * 1000:.1f} ms"
    )
    print(
        f"{served} lessons, cold: background warm-up done {cold['warmed']:.3f} s after the start"
        f" ({cache_entries} cache entries); first request of a lesson it cached (median of 10):"
        f" {cold['cached_first_request'] * 1000:.1f} ms (in the server: loading a body it cached"
        f" {cold['cached_body_load'] * 1000:.2f} ms, building the page with it"
        f" {cold['cached_page_build'] * 1000:.2f} ms)"
    )
    print(
        f"{served} lessons, cold: a rendered lesson page (median of 100, in-process client)"
        f" {cold['page_during_warmup_ms']:.2f} ms while the warm-up ran"
        f"{'' if cold['warmup_running'] else ' (it had ALREADY finished)'},"
        f" {cold['page_after_warmup_ms']:.2f} ms after"
    )
    print(
        f"{served} lessons, warm (render cache filled): create_app {warm['create_app']:.3f} s"
        f" ({warm['create_app'] / served * 1000:.2f} ms/lesson), first lesson page served"
        f" {warm['first_page']:.3f} s — {verdict(warm['first_page'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
