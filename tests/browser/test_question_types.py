"""Every question type in Chromium: the no-JavaScript form round trip, keyboard only, labelled
controls, and the review of each type with a predict-then-run question's real run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.content import load_course

from ..live import LiveServer, server_env
from ..question_types_util import EVERY_TYPE, LESSON
from .test_accessibility import axe_violations

pytestmark = pytest.mark.browser

QUIZ = load_course(EVERY_TYPE.parent).get(LESSON).quiz
ORDER = ["Forward pass", "Compute the loss", "Backward pass", "Update the weights"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    """A server of its own (overriding conftest's) serving only the lesson of every type."""
    tmp = tmp_path_factory.mktemp("question-types-site")
    content = tmp / "content"
    content.mkdir()
    shutil.copy(EVERY_TYPE, content / EVERY_TYPE.name)
    env = {
        **server_env(tmp / "data", content),
        "SECRET_KEY": "browser-question-types-secret-0123456789",
        "TRAIN_WORKERS": "1",
    }
    server = LiveServer(env, log_path=tmp / "server.log").start()
    yield server
    server.stop()


def fieldset(page: Page, number: int):
    return page.locator("form.quiz fieldset").nth(number - 1)


def answer_everything_right(page: Page) -> None:
    """Fill the form by its labels, as a screen-reader user would find each control."""
    fieldset(page, 1).get_by_label("Sigmoid", exact=True).check()
    for name in ("ReLU", "tanh"):
        fieldset(page, 2).get_by_label(name, exact=True).check()
    fieldset(page, 3).get_by_label("Cross-entropy", exact=True).check()
    fieldset(page, 4).get_by_label("Your answer").fill(" .5")
    fieldset(page, 5).get_by_label("Your answer").fill("1e2")
    for position, item in enumerate(ORDER, start=1):
        fieldset(page, 6).get_by_label(f"Position of {item}").select_option(str(position))
    fieldset(page, 7).get_by_label("Yes, above 90%").check()


def test_without_javascript_every_type_submits_and_its_review_shows_each_answer(open_session):
    page = open_session(java_script_enabled=False).page
    page.goto(f"/lessons/{LESSON}")
    expect(page.locator("form.quiz fieldset")).to_have_count(7)
    expect(fieldset(page, 2).locator("input[type=checkbox]")).to_have_count(4)
    expect(fieldset(page, 4).locator("input[inputmode=decimal]")).to_have_count(1)
    expect(fieldset(page, 6).locator("select")).to_have_count(4)
    expect(fieldset(page, 7).locator(".run-config")).to_contain_text("xor")
    answer_everything_right(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("status")).to_contain_text("7 of 7 correct (100.0%)")
    results = page.locator("ol.results > li")
    expect(results).to_have_count(7)
    expect(results.nth(0).locator(".feedback")).to_have_text(
        "Right: 1 / (1 + e^-x) never leaves (0, 1)."
    )
    expect(results.nth(1).locator("li.is-correct")).to_have_count(2)
    expect(results.nth(3).locator(".numeric-review")).to_contain_text(".5")
    expect(results.nth(3).locator(".numeric-review")).to_contain_text("0.5 ± 0.01")
    expect(results.nth(4).locator(".numeric-review")).to_contain_text("100 ± 5%")
    rows = results.nth(5).locator("tbody tr")
    expect(rows).to_have_count(4)
    for row, (position, item) in zip(rows.all(), enumerate(ORDER, start=1), strict=True):
        expect(row).to_have_text(re.compile(rf"{item}\s*{position}\s*{position}"))
    run = results.nth(6).locator(".real-run")
    expect(run).to_contain_text("Status: completed after 40 epochs")
    expect(run.locator("svg.run-chart")).to_have_count(2)
    expect(run.locator("svg.run-chart polyline")).to_have_count(3)  # loss; train and test


def test_wrong_answers_of_each_type_are_explained_and_unreadable_ones_say_why(open_session):
    page = open_session(java_script_enabled=False).page
    page.goto(f"/lessons/{LESSON}")
    fieldset(page, 2).get_by_label("Adam", exact=True).check()
    fieldset(page, 4).get_by_label("Your answer").fill("half")
    fieldset(page, 5).get_by_label("Your answer").fill("80")
    selects = fieldset(page, 6)
    selects.get_by_label("Position of Forward pass").select_option("1")
    selects.get_by_label("Position of Backward pass").select_option("1")
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("status")).to_contain_text("0 of 7 correct")
    results = page.locator("ol.results > li")
    expect(results.nth(0).locator(".verdict")).to_have_text("Not answered")
    expect(results.nth(1).locator(".feedback")).to_have_text(
        "Adam is an optimiser, not an activation."
    )
    expect(results.nth(1).locator("li.is-wrong-choice")).to_contain_text("Adam")
    expect(results.nth(3).locator(".verdict")).to_have_text("Incorrect — not a number")
    expect(results.nth(4).locator(".verdict")).to_have_text("Incorrect")
    expect(results.nth(5).locator(".verdict")).to_have_text(
        "Incorrect — each position must be given to exactly one item"
    )


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement;
        const label = e.labels && e.labels[0] ? e.labels[0].textContent.trim() : null;
        return {tag: e.tagName, type: e.type || null, label: label}; }"""
    )


def tab_to(page: Page, wanted) -> dict:
    """Press Tab until `wanted(focused)` holds (bounded)."""
    for _ in range(120):
        page.keyboard.press("Tab")
        now = focused(page)
        if wanted(now):
            return now
    raise AssertionError("Tab never reached the control")


def test_every_type_is_answered_by_keyboard_alone(page: Page):
    page.goto(f"/lessons/{LESSON}")
    shown = page.eval_on_selector_all(
        "form.quiz fieldset:first-of-type label.option", "ls => ls.map(l => l.textContent.trim())"
    )
    tab_to(page, lambda f: f["type"] == "radio")
    for _ in range(shown.index("Sigmoid")):
        page.keyboard.press("ArrowDown")  # arrow keys move within the group and select
    if shown.index("Sigmoid") == 0:
        page.keyboard.press("Space")
    for name in ("ReLU", "tanh", "Cross-entropy"):
        tab_to(page, lambda f, name=name: f["type"] == "checkbox" and f["label"] == name)
        page.keyboard.press("Space")
    tab_to(page, lambda f: f["tag"] == "INPUT" and f["type"] == "text")
    page.keyboard.type("5e-1")
    page.keyboard.press("Tab")
    page.keyboard.type("100.48")
    for position, item in enumerate(ORDER, start=1):
        tab_to(page, lambda f, item=item: f["tag"] == "SELECT" and item in (f["label"] or ""))
        page.keyboard.type(str(position))  # a closed select picks the option typed
    now = tab_to(page, lambda f: f["type"] == "radio")
    assert now["label"] in ("Yes, above 90%", "No, 90% or below")
    if now["label"] != "Yes, above 90%":
        page.keyboard.press("ArrowDown")
    else:
        page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked") is True
    tab_to(page, lambda f: f["tag"] == "BUTTON")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("7 of 7 correct (100.0%)")


def test_the_form_and_review_of_every_type_have_no_serious_accessibility_violation(
    open_session,
):
    page = open_session(bypass_csp=True).page  # only so that axe can be injected
    page.goto(f"/lessons/{LESSON}")
    page.wait_for_load_state("load")
    assert axe_violations(page) == []
    unlabelled = page.eval_on_selector_all(
        "form.quiz input:not([type=hidden]), form.quiz select",
        "cs => cs.filter(c => !(c.labels && c.labels.length)).map(c => c.outerHTML)",
    )
    assert unlabelled == []
    answer_everything_right(page)
    page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("heading", name="Your results")).to_be_visible()
    assert axe_violations(page) == []
