"""Screenshots of the real pages, light and dark, for the README (docs/screenshots/).

Starts its own uvicorn on 127.0.0.1 with a throwaway data folder and stops it by PID.
Usage: python scripts/screenshots.py [--out docs/screenshots] [--only course,lesson,...]
"""

from __future__ import annotations

import argparse
import html
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from app.content import load_course  # noqa: E402
from tests.live import CHROMIUM, CHROMIUM_ARGS, LiveServer, server_env  # noqa: E402

SEED = "dl-intro-neural-networks"


def sign_up(page: Page, base: str, name: str) -> None:
    """Register through the form (which signs in), so pages show progress and saved attempts."""
    page.goto(base + "/register")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill("screenshot-password")
    with page.expect_navigation():  # the page is already loaded: wait for the POST's answer
        page.get_by_role("button", name="Create account").click()


def shoot_course(page: Page, base: str) -> None:
    """After the review: the seed lesson completed, the progress bar full."""
    page.goto(base + "/")


def shoot_lesson(page: Page, base: str) -> None:
    page.goto(f"{base}/lessons/{SEED}")


def shoot_review(page: Page, base: str) -> None:
    """The review after a real submission: four right, the last one wrong."""
    quiz = load_course(ROOT / "content").get(SEED).quiz
    page.goto(f"{base}/lessons/{SEED}#quiz")
    fieldsets = page.locator("form.quiz fieldset").all()
    for question, fieldset in zip(quiz.questions, fieldsets, strict=True):
        wrong = next(o for o in question.options if not o.correct)
        choice = wrong if question is quiz.questions[-1] else question.correct_option
        # by its text: option ids are the visitor's own
        fieldset.get_by_label(html.unescape(choice.html), exact=True).check()
    with page.expect_navigation():
        page.locator("form.quiz button[type=submit]").click()


#: The SQLite file of the server being shot (set by main).
SITE_DB: list[str] = []


def shoot_spaced_review(page: Page, base: str) -> None:
    """/review with the quiz's cards due, as they are after their interval has passed."""
    with sqlite3.connect(SITE_DB[0]) as conn:
        conn.execute("UPDATE review_cards SET due = '2000-01-01 00:00:00.000000'")
    page.goto(f"{base}/review")


def shoot_playground(page: Page, base: str) -> None:
    """A spiral being learnt: shot mid-run, with the chart and boundary part-way."""
    page.goto(f"{base}/playground?dataset=spiral&hidden_layers=32,32&epochs=400&batch_size=16")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function(
        "() => parseInt(document.getElementById('m-epoch').textContent) >= 150", timeout=60_000
    )
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")


def own_points_csv() -> str:
    """Three clusters a learner might have measured, in their own units (0-100), as a CSV."""
    import math

    rows = ["x1,x2,label"]
    for i in range(150):
        name, (cx, cy) = [("oak", (25, 70)), ("birch", (70, 75)), ("pine", (50, 25))][i % 3]
        angle, radius = i * 2.399, 4 + (i * 7 % 17)
        rows.append(
            f"{cx + radius * math.cos(angle):.1f},{cy + radius * math.sin(angle):.1f},{name}"
        )
    return "\n".join(rows) + "\n"


def shoot_playground_own(page: Page, base: str) -> None:
    """A learner's own CSV trained: the boundary drawn over their points, the download offered."""
    page.goto(f"{base}/playground?dataset=custom&hidden_layers=8,8&epochs=150&batch_size=16")
    page.locator("#f-csv").set_input_files(
        files=[{"name": "trees.csv", "mimeType": "text/csv", "buffer": own_points_csv().encode()}]
    )
    page.get_by_role("button", name="Start training").click()
    page.wait_for_function(
        "() => document.getElementById('status').textContent.startsWith('Done')", timeout=60_000
    )
    page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")


def shoot_playground_step(page: Page, base: str) -> None:
    """Step by step: the second mini-batch of a tiny XOR network, its numbers in tables."""
    page.goto(f"{base}/playground?dataset=xor&hidden_layers=3&batch_size=20&learning_rate=0.5")
    step = page.get_by_role("button", name="Step", exact=True)
    for n in (1, 2):
        step.click()
        page.wait_for_function(
            f"() => document.getElementById('step-summary').textContent.startsWith('Step {n},')"
        )
    page.evaluate(
        "document.activeElement.blur(); document.getElementById('step-card').scrollIntoView()"
    )


#: Taller viewports where the point of the picture would otherwise be below the fold.
HEIGHTS = {"playground": 1240, "playground-own": 1240, "playground-step": 1240}

#: In this order: the course is shot after the quiz has been passed.
SHOTS = {
    "lesson": shoot_lesson,
    "review": shoot_review,
    "course": shoot_course,
    "spaced-review": shoot_spaced_review,
    "playground": shoot_playground,
    "playground-own": shoot_playground_own,
    "playground-step": shoot_playground_step,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", default=",".join(SHOTS), help="in this order")
    parser.add_argument("--full-page", action="store_true")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=860)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(
            server_env(Path(tmp) / "data"),
            log_path=Path(tmp) / "server.log",
        ).start()
        SITE_DB[:] = [server.env["DATABASE_URL"].removeprefix("sqlite:///")]
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport={"width": args.width, "height": args.height}, color_scheme=scheme
                    )
                    page = context.new_page()
                    sign_up(page, server.url, f"ada-{scheme}")
                    for name in args.only.split(","):
                        height = HEIGHTS.get(name, args.height)
                        page.set_viewport_size({"width": args.width, "height": height})
                        SHOTS[name](page, server.url)
                        path = args.out / f"{name}-{scheme}.png"
                        page.screenshot(path=str(path), full_page=args.full_page)
                        print(path)
                    context.close()
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
