"""axe-core in Chromium on every kind of page, light and dark: no serious or critical violation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from ..conftest import ROOT
from .conftest import PASSWORD, create_user

pytestmark = pytest.mark.browser

AXE = (ROOT / "tests" / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SEED_ID = "dl-intro-neural-networks"


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE)  # the context bypasses CSP for this only
    results = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    found = []
    for violation in results:
        if violation["impact"] in ("serious", "critical"):
            for node in violation["nodes"]:
                found.append(
                    f"{violation['impact']} {violation['id']}: {violation['help']} at "
                    f"{node['target']} — {node.get('failureSummary', '').splitlines()[-1:]}"
                )
    return found


def audit(page: Page, where: str, report: dict[str, list[str]]) -> None:
    page.wait_for_load_state("load")
    violations = axe_violations(page)
    if violations:
        report[where] = violations


def answer_quiz(page: Page) -> None:
    for fieldset in page.locator("form.quiz fieldset").all():
        fieldset.locator("input[type=radio]").first.check()
    page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("heading", name="Your results")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_or_critical_accessibility_violation(site, open_session, scheme):
    report: dict[str, list[str]] = {}
    # bypass_csp only so that axe can be injected; the other browser tests run under the CSP
    watched = open_session(color_scheme=scheme, bypass_csp=True)
    watched.guard.allowed.append(r"status of 404 \(Not Found\)")  # the 404 page, on purpose
    guest = watched.page
    guest.goto("/")
    audit(guest, "course (guest)", report)
    guest.goto(f"/lessons/{SEED_ID}")
    audit(guest, "lesson (guest)", report)
    answer_quiz(guest)
    audit(guest, "quiz review (guest)", report)
    guest.goto("/login")
    audit(guest, "login", report)
    guest.goto("/register")
    audit(guest, "register", report)
    guest.goto("/lessons/no-such-lesson")
    audit(guest, "404", report)
    guest.goto("/playground?dataset=moons&hidden_layers=8&epochs=20")
    audit(guest, "playground", report)
    guest.get_by_role("button", name="Start training").click()
    expect(guest.locator("#status")).to_contain_text("Done in", timeout=60_000)
    audit(guest, "playground after a 2-D run", report)
    guest.goto("/playground?dataset=digits&hidden_layers=16&epochs=3")
    guest.get_by_role("button", name="Start training").click()
    expect(guest.locator("#status")).to_contain_text("Done in", timeout=60_000)
    audit(guest, "playground after a digits run (confusion matrix)", report)
    guest.goto("/playground?dataset=custom&hidden_layers=4&epochs=20")
    rows = "".join(f"{k % 5},{k // 5},{'ab'[k % 2]}\n" for k in range(30))
    guest.locator("#f-csv").set_input_files(
        files=[{"name": "own.csv", "mimeType": "text/csv", "buffer": rows.encode()}]
    )
    expect(guest.locator("#own-count")).to_have_text("30 points in 2 classes.")
    audit(guest, "playground with own points", report)
    guest.get_by_role("button", name="Start training").click()
    expect(guest.locator("#status")).to_contain_text("Done in", timeout=60_000)
    guest.get_by_role("button", name="Step", exact=True).click()
    expect(guest.locator("#step-summary")).to_contain_text("Step 1,")
    audit(guest, "playground: own points trained, a step's tables", report)

    name = create_user(site, f"teacher-{scheme}", role="instructor")
    page = open_session(color_scheme=scheme, bypass_csp=True).page
    page.goto("/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Instructor")).to_be_visible()
    page.goto(f"/lessons/{SEED_ID}")
    answer_quiz(page)
    audit(page, "quiz review (signed in)", report)
    page.goto("/")
    audit(page, "course (signed in, progress)", report)
    page.goto(f"/lessons/{SEED_ID}")
    audit(page, "lesson (signed in)", report)
    page.goto("/me")
    audit(page, "/me", report)
    page.goto("/instructor")
    audit(page, "/instructor", report)

    link = subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "reset-link", name, "--base-url", site.url],
        capture_output=True, text=True, check=True, cwd=ROOT, env={**os.environ, **site.env},
    ).stdout.strip()  # fmt: skip
    guest.goto(link)
    audit(guest, "reset-link form", report)
    guest.get_by_label("New password", exact=True).fill(PASSWORD)
    guest.get_by_role("button", name="Set password").click()
    expect(guest.get_by_role("heading", name="Your password is set")).to_be_visible()
    audit(guest, "reset-link done", report)
    guest.goto(link)
    audit(guest, "reset-link used (404)", report)

    assert not report, "\n".join(f"{where}:\n  " + "\n  ".join(v) for where, v in report.items())
