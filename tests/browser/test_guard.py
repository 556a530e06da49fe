"""The watch every browser test relies on does catch what it is there to catch."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_guard_blocks_and_reports_requests_off_127_0_0_1_and_csp_violations(session):
    page = session.page
    page.goto("/")
    foreign = lambda request: "192.0.2.1" in request.url  # noqa: E731
    csp = lambda message: "Content Security Policy" in message.text  # noqa: E731
    with page.expect_event("requestfailed", foreign) as failed, page.expect_console_message(csp):
        page.evaluate(
            """() => {
            const img = document.createElement("img");
            img.src = "http://192.0.2.1/tracker.png";  // TEST-NET-1: never routable
            document.body.append(img);
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";  // inline: CSP must refuse it
            document.body.append(script);
        }"""
        )
    assert failed.value.failure  # aborted by the guard's route, not merely noticed
    assert page.evaluate("window.inlineRan === undefined")
    problems = session.guard.problems()
    assert "request left 127.0.0.1: http://192.0.2.1/tracker.png" in problems
    assert any("CSP violation: script-src" in p for p in problems), problems
    assert any("Content Security Policy" in p for p in problems), problems
    session.guard.foreign.clear()  # seen; the fixture's teardown would otherwise fail the test
    session.guard.console.clear()
    assert session.guard.requests >= 3  # the page, its stylesheets, the blocked image
