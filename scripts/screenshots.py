"""Screenshots of the real pages, light and dark, for the README (docs/screenshots/).

Starts its own uvicorn on 127.0.0.1 with a throwaway data folder and stops it by PID.
Usage: python scripts/screenshots.py [--out docs/screenshots] [--only course,lesson,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.live import LiveServer  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEED = "dl-intro-neural-networks"


def shoot_course(page: Page, base: str) -> None:
    page.goto(base + "/")


def shoot_lesson(page: Page, base: str) -> None:
    page.goto(f"{base}/lessons/{SEED}")


def shoot_review(page: Page, base: str) -> None:
    page.goto(f"{base}/lessons/{SEED}#quiz")
    for index, fieldset in enumerate(page.locator("form.quiz fieldset").all()):
        fieldset.locator("input[type=radio]").nth(index % 2).check()
    page.locator("form.quiz button[type=submit]").click()
    page.wait_for_load_state()


def shoot_playground(page: Page, base: str) -> None:
    page.goto(f"{base}/playground?dataset=spiral&hidden_layers=32,32&epochs=200&batch_size=32")
    start = page.get_by_role("button", name="Start")
    if start.count():
        start.click()
        page.wait_for_timeout(2500)


SHOTS = {
    "course": shoot_course,
    "lesson": shoot_lesson,
    "review": shoot_review,
    "playground": shoot_playground,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", default=",".join(SHOTS))
    parser.add_argument("--full-page", action="store_true")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(
            {"CONTENT_DIR": str(ROOT / "content"), "DATA_DIR": tmp},
            log_path=Path(tmp) / "server.log",
        ).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport={"width": args.width, "height": 900}, color_scheme=scheme
                    )
                    page = context.new_page()
                    for name in args.only.split(","):
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
