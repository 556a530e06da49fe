"""Startup time with a large course: generate N lessons, time `create_app` (load, validate,
render, pre-render pages) cold and then warm (render cache filled), and compare with an app
serving the bundled course, in one run.

    python bench/startup.py [--lessons 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402

SEED = ROOT / "content" / "dl-intro-neural-networks.md"


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
        path.write_text(f"{meta}\n---\n{body}", encoding="utf-8")


def timed(settings: Settings) -> tuple[float, int]:
    start = time.perf_counter()
    app = create_app(settings)
    return time.perf_counter() - start, len(app.state.course.lessons)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lessons", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "content"
        generate(content, args.lessons)
        common = {"data_dir": Path(tmp) / "data", "secret_key": "bench", "_env_file": None}
        baseline, _ = timed(Settings(content_dir=ROOT / "content", **common))
        cold, served = timed(Settings(content_dir=content, **common))
        warm, _ = timed(Settings(content_dir=content, **common))
    print(f"bundled course (1 lesson): {baseline:.3f} s")
    for name, elapsed in (("cold (empty render cache)", cold), ("warm (render cache)", warm)):
        print(
            f"{served} lessons, {name}: {elapsed:.3f} s ({elapsed / served * 1000:.2f} ms/lesson)"
            f" — target < 3 s {'met' if elapsed < 3 else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
