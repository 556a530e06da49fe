"""Spaced review in Chromium: a learner's missed quiz questions come due, are answered on /review
without JavaScript and with the keyboard, graded with the quiz's own review, and scheduled again."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from app.content import load_course

from ..live import LiveServer, server_env
from ..question_types_util import variant
from .conftest import PASSWORD, create_user
from .test_accessibility import axe_violations

pytestmark = pytest.mark.browser

LESSONS = ("first", "second")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    """A server of its own (overriding conftest's): two lessons of every type but the run."""
    tmp = tmp_path_factory.mktemp("review-site")
    content = tmp / "content"
    content.mkdir()
    for lesson_id in LESSONS:
        variant(content, lesson_id, keep_run=False)
    env = {**server_env(tmp / "data", content), "SECRET_KEY": "browser-review-secret-0123456789"}
    server = LiveServer(env, log_path=tmp / "server.log").start()
    server.content = content  # type: ignore[attr-defined]
    yield server
    server.stop()


def questions(site: LiveServer) -> dict:
    course = load_course(site.content)  # type: ignore[attr-defined]
    return {q.id: q for lesson in course.lessons for q in lesson.quiz.questions}


def bring_due(site: LiveServer, username: str) -> int:
    """Move the learner's cards to a time already past, as if ten minutes had gone by."""
    path = site.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        moved = conn.execute(
            "UPDATE review_cards SET due = '2000-01-01 00:00:00.000000' WHERE user_id = "
            "(SELECT id FROM users WHERE username = ?)",
            (username,),
        ).rowcount
    return moved


def log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def answer_right(page: Page, question) -> None:
    """Answer the question on the page right, finding each control by its label."""
    form = page.locator("form.quiz fieldset")
    if question.type == "single":
        form.get_by_label(question.correct_option.html, exact=True).check()
    elif question.type == "multiple":
        for option in question.correct_options:
            form.get_by_label(option.html, exact=True).check()
    elif question.type == "numeric":
        form.get_by_label("Your answer").fill(str(question.numeric[0].value))
    else:
        for position, item in enumerate(question.items, start=1):
            form.get_by_label(f"Position of {item.html}").select_option(str(position))


def shown_question(page: Page, known: dict):
    action = page.locator("form.quiz").get_attribute("action")
    return known[action.rsplit("/", 1)[1]]


def test_a_missed_quiz_comes_back_on_review_without_javascript_one_lesson_at_a_time(
    open_session, site
):
    create_user(site, "rina")
    page = open_session(java_script_enabled=False).page
    log_in(page, "rina")
    for lesson_id in LESSONS:  # answer nothing: every question is missed
        page.goto(f"/lessons/{lesson_id}")
        with page.expect_navigation():
            page.get_by_role("button", name="Check my answers").click()
        expect(page.get_by_role("status")).to_contain_text("0 of 6 correct")
    page.goto("/")
    expect(page.locator(".review-due")).to_contain_text("0 questions due")
    expect(page.locator(".review-due")).to_contain_text("in 10 minutes")
    assert bring_due(site, "rina") == 12
    page.goto("/")
    with page.expect_navigation():
        page.get_by_role("link", name="12 questions due for review").click()
    assert page.url.endswith("/review")
    known = questions(site)
    seen_lessons = []
    for turn in range(3):
        expect(page.locator("form.quiz fieldset")).to_have_count(1)
        question = shown_question(page, known)
        lesson = page.locator(".review-session .eyebrow a").get_attribute("href")
        seen_lessons.append(lesson.rsplit("/", 1)[1])
        answer_right(page, question)
        with page.expect_navigation():
            page.get_by_role("button", name="Check my answer").click()
        expect(page.get_by_role("status")).to_contain_text("Correct.")
        expect(page.get_by_role("status")).to_contain_text(
            re.compile(r"This question comes back in \d+ days?")
        )
        expect(page.locator("ol.results > li")).to_have_count(1)
        expect(page.locator("ol.results .verdict")).to_have_text("Correct")
        expect(page.locator(".review-due")).to_contain_text(f"{11 - turn} questions due")
        with page.expect_navigation():
            page.get_by_role("link", name="Next question").click()
    # the lessons take turns: the last quiz taken was the second, so the first starts
    assert seen_lessons == ["first", "second", "first"]
    assert page.locator("form.quiz").get_attribute("action") != ""
    # a miss: told so, with the right answer, and back in ten minutes
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answer").click()
    expect(page.get_by_role("status")).to_contain_text("Incorrect.")
    expect(page.get_by_role("status")).to_contain_text("comes back in 10 minutes")
    expect(page.locator("ol.results .verdict")).to_have_text("Not answered")
    page.goto("/me")
    expect(page.locator(".review-due")).to_contain_text("8 questions due")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_review_is_answered_by_keyboard_alone_and_has_no_serious_accessibility_violation(
    open_session, site, scheme
):
    name = create_user(site, f"kofi-{scheme}")
    # bypass_csp only so that axe can be injected
    page = open_session(bypass_csp=True, color_scheme=scheme).page
    log_in(page, name)
    page.goto("/lessons/first")
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    bring_due(site, name)
    page.goto("/review")
    page.wait_for_load_state("load")
    assert axe_violations(page) == []
    unlabelled = page.eval_on_selector_all(
        "form.quiz input:not([type=hidden]), form.quiz select",
        "cs => cs.filter(c => !(c.labels && c.labels.length)).map(c => c.outerHTML)",
    )
    assert unlabelled == []
    question = shown_question(page, questions(site))
    first_control = page.locator(
        "form.quiz fieldset input:not([type=hidden]), form.quiz fieldset select"
    ).first
    for _ in range(60):  # Tab from the top of the page to the question's first control
        page.keyboard.press("Tab")
        if first_control.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the review question")
    if question.type == "numeric":
        page.keyboard.type(str(question.numeric[0].value))
    elif question.type == "ordering":
        for position in range(1, len(question.items) + 1):
            label = first_control.evaluate("e => e.labels[0].textContent")
            item = next(i for i in question.items if i.html in label)
            page.keyboard.type(str(question.items.index(item) + 1))
            if position < len(question.items):
                page.keyboard.press("Tab")
                first_control = page.locator(":focus")
    else:
        page.keyboard.press("Space")  # pick (or tick) the first option, right or wrong
    button = page.get_by_role("button", name="Check my answer")
    for _ in range(20):
        if button.evaluate("e => e === document.activeElement"):
            break
        page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"(Correct|Incorrect)\."))
    expect(page.get_by_role("status")).to_contain_text("This question comes back")
    assert axe_violations(page) == []
