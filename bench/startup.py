"""Startup time with a large course: generate N lessons and, in one run, compare with an app
serving the bundled one-lesson course.

Cold (empty render cache): how long `create_app` takes (read and validate every file; bodies are
rendered on first use), how long until the app has served a lesson page through ASGI (with its
lifespan), and how long a not-yet-rendered lesson's first request takes. Then `backprop check`
fills the render cache (the one command a deploy runs to warm it), and warm: the same again,
where a lesson's first request reads its body from the cache instead of rendering it.

The generated lessons are the seed lesson with its code varied per lesson (identifiers and
integers), so no two lessons share a code block.

    python bench/startup.py [--lessons 1000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from app.config import Settings  # noqa: E402
from app.content.cache import render_cache_dir  # noqa: E402
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


def median_ms(client: TestClient, url: str, count: int = 100) -> float:
    return statistics.median(get(client, url) for _ in range(count)) * 1000


def start(settings: Settings, first_url: str) -> dict[str, float]:
    """Time create_app, the first lesson page, first requests of lessons not used yet, a page."""
    result: dict[str, float] = {}
    t0 = time.perf_counter()
    app = create_app(settings)
    result["create_app"] = time.perf_counter() - t0
    course = app.state.course
    result["lessons"] = len(course.lessons)
    with TestClient(app) as client:
        get(client, first_url)
        result["first_page"] = time.perf_counter() - t0
        last = course.lessons[-10:]
        result["unrendered"] = not any(lesson.body.is_rendered for lesson in last)
        result["first_request"] = statistics.median(get(client, les.url) for les in last)
        result["page_ms"] = median_ms(client, first_url)
    return result


def check(content: Path, data: Path) -> tuple[float, int]:
    """Run `backprop check` on the served folder: seconds taken, cache entries afterwards."""
    env = {**os.environ, "CONTENT_DIR": str(content), "DATA_DIR": str(data)}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "check"], cwd=ROOT, env=env, capture_output=True
    )
    elapsed = time.perf_counter() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    return elapsed, len(list(render_cache_dir(data).glob("*.json")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lessons", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "content"
        generate(content, args.lessons)
        common = {"secret_key": "b" * 32, "_env_file": None}
        baseline = start(
            Settings(content_dir=ROOT / "content", data_dir=Path(tmp) / "bundled", **common),
            "/lessons/dl-intro-neural-networks",
        )
        data = Path(tmp) / "data"
        served = Settings(content_dir=content, data_dir=data, **common)
        cold = start(served, "/lessons/lesson-0000")
        shutil.rmtree(render_cache_dir(data))  # what the cold run's first requests rendered
        check_seconds, cache_entries = check(content, data)
        warm = start(served, "/lessons/lesson-0000")
    count = int(cold["lessons"])

    def verdict(seconds: float) -> str:
        return f"target < 3 s {'met' if seconds < 3 else 'NOT met'}"

    print(
        f"bundled course (1 lesson): create_app {baseline['create_app']:.3f} s,"
        f" first lesson page served {baseline['first_page']:.3f} s"
    )
    for name, run in (("cold (empty render cache)", cold), ("warm (after backprop check)", warm)):
        print(
            f"{count} lessons, {name}: create_app {run['create_app']:.3f} s"
            f" ({run['create_app'] / count * 1000:.2f} ms/lesson), first lesson page served"
            f" {run['first_page']:.3f} s — {verdict(run['first_page'])}"
        )
        print(
            f"{count} lessons, {name}: first request of a lesson not used yet (median of the"
            f" last 10 in course order, {'none' if run['unrendered'] else 'SOME'} rendered"
            f" before) {run['first_request'] * 1000:.1f} ms; a lesson page already used"
            f" (median of 100, in-process client) {run['page_ms']:.2f} ms"
        )
    print(
        f"{count} lessons: backprop check (fills the render cache) {check_seconds:.1f} s,"
        f" {cache_entries} cache entries"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
