"""A guest and a learner go through the course in Chromium, by keyboard and without JavaScript."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.content import load_course

from ..conftest import FIXTURE_COURSE, SEED
from .conftest import PASSWORD

pytestmark = pytest.mark.browser

SEED_ID = "dl-intro-neural-networks"
SEED_QUIZ = load_course(SEED).get(SEED_ID).quiz
GD_QUIZ = load_course(FIXTURE_COURSE).get("gradient-descent").quiz
SEED_SOURCE = (SEED / f"{SEED_ID}.md").read_text(encoding="utf-8")


def plain_fences(source: str) -> list[str]:
    """The contents of fences without a language (the seed's diagrams), exactly as written."""
    found, current, language = [], None, None
    for line in source.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                if not language:
                    found.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return found


DIAGRAMS = plain_fences(SEED_SOURCE)


def radios(page: Page) -> list[list[tuple[str, str]]]:
    """Each question's options, (this learner's id, text), in the order this page shows them."""
    return page.eval_on_selector_all(
        "form.quiz fieldset",
        "sets => sets.map(s => [...s.querySelectorAll('label.option')].map("
        "l => [l.querySelector('input[type=radio]').value, l.textContent.trim()]))",
    )


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement;
        return {tag: e.tagName, type: e.type || null, name: e.name || null, value: e.value || null,
                text: (e.textContent || '').trim(), checked: e.checked === true}; }"""
    )


def tab_into_quiz(page: Page) -> None:
    """Press Tab from the top of the page until the first option of the quiz has focus."""
    for _ in range(150):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["type"] == "radio":
            return
    raise AssertionError("Tab never reached the quiz")


def answer_by_keyboard(page: Page, quiz, choose) -> dict[str, str]:
    """Answer every question with Tab, arrow keys and Space, then submit with Enter.

    `choose(question) -> option id` (the content's) picks the answer; returns what was chosen.
    """
    order = radios(page)
    chosen = {}
    tab_into_quiz(page)
    for question, options in zip(quiz.questions, order, strict=True):
        now = focused(page)
        assert (now["type"], now["name"]) == ("radio", question.id), now
        pick = choose(question)
        shown = [value for value, _ in options]
        target = dict((text, value) for value, text in options)[_text(question.option(pick).html)]
        steps = shown.index(target) - shown.index(now["value"])
        if steps == 0:
            page.keyboard.press("Space")
        for _ in range(abs(steps)):  # arrow keys move within the group and select
            page.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
        now = focused(page)
        assert now["value"] == target and now["checked"], now
        chosen[question.id] = pick
        page.keyboard.press("Tab")
    now = focused(page)
    assert now["tag"] == "BUTTON" and now["text"] == "Check my answers", now
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return chosen


def wrong(question) -> str:
    return next(o.id for o in question.options if not o.correct)


def check_review(page: Page, quiz, chosen: dict[str, str]) -> None:
    """The review lists every question with the learner's choice, the right answer and why."""
    results = page.locator("ol.results > li")
    expect(results).to_have_count(len(quiz.questions))
    for item, question in zip(results.all(), quiz.questions, strict=True):
        right = question.correct_option
        picked = question.option(chosen[question.id])
        verdict = "Correct" if picked.correct else "Incorrect"
        expect(item.locator(".verdict")).to_have_text(verdict)
        correct_li = item.locator("li.is-correct")
        expect(correct_li).to_have_count(1)
        expect(correct_li).to_contain_text(_text(right.html))
        expect(correct_li).to_contain_text("right answer")
        mine = item.locator("li", has_text="your answer")
        expect(mine).to_contain_text(_text(picked.html))
        if question.explanation_html:
            expect(item.locator(".explanation")).to_contain_text(_text(question.explanation_html))
        else:
            expect(item.locator(".explanation")).to_have_count(0)


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'").replace("&amp;", "&").strip()


def test_a_guest_reads_the_seed_lesson_and_takes_its_quiz_by_keyboard(page: Page):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Learn neural networks by building one"
    )
    page.get_by_role("link", name="Introduction to Neural Networks").click()
    expect(page).to_have_url(re.compile(f"/lessons/{SEED_ID}$"))
    expect(page.locator("h1")).to_have_text("Introduction to Neural Networks")

    # the diagrams byte for byte, the code highlighted by the served stylesheet
    shown = page.eval_on_selector_all("pre", "ps => ps.map(p => p.textContent)")
    assert len(DIAGRAMS) >= 2
    for diagram in DIAGRAMS:
        assert diagram in shown, diagram
    keyword = page.locator(".highlight .k").first
    expect(keyword).to_be_visible()
    colour = keyword.evaluate("e => getComputedStyle(e).color")
    plain = page.locator(".lesson-body p").first.evaluate("e => getComputedStyle(e).color")
    assert colour != plain

    # 4 of 5 right: the last one deliberately wrong
    last = SEED_QUIZ.questions[-1].id
    chosen = answer_by_keyboard(
        page, SEED_QUIZ, lambda q: wrong(q) if q.id == last else q.correct_option.id
    )
    expect(page).to_have_url(re.compile(f"/lessons/{SEED_ID}/quiz$"))
    expect(page.get_by_role("status")).to_contain_text("4 of 5 correct (80.0%)")
    expect(page.get_by_role("status")).to_contain_text("passed")
    check_review(page, SEED_QUIZ, chosen)


def test_a_guest_sees_the_explanations_after_a_keyboard_only_quiz(page: Page):
    page.goto("/lessons/gradient-descent")
    chosen = answer_by_keyboard(page, GD_QUIZ, wrong)
    expect(page.get_by_role("status")).to_contain_text("0 of 3 correct")
    expect(page.get_by_role("status")).to_contain_text("not passed yet (pass mark 60%)")
    check_review(page, GD_QUIZ, chosen)
    expect(page.locator(".explanation")).to_have_count(2)
    page.get_by_role("link", name="Try again").click()
    expect(page).to_have_url(re.compile("/lessons/gradient-descent#quiz$"))


def test_without_javascript_the_quiz_submits_and_shows_its_review(open_session):
    page = open_session(java_script_enabled=False).page
    page.goto(f"/lessons/{SEED_ID}")
    chosen = {}
    for question, fieldset in zip(SEED_QUIZ.questions, page.locator("form.quiz fieldset").all(),
                                  strict=True):  # fmt: skip
        fieldset.get_by_label(_text(question.correct_option.html), exact=True).check()
        chosen[question.id] = question.correct_option.id
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("status")).to_contain_text("5 of 5 correct (100.0%)")
    check_review(page, SEED_QUIZ, chosen)
    expect(page.locator(".account-invite, .attempt-note")).not_to_have_count(0)


def progress_of(page: Page) -> tuple[int, int]:
    bar = page.locator("progress#course-progress")
    return int(bar.get_attribute("value")), int(bar.get_attribute("max"))


def session_cookie(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies() if c["name"] == "bp_session"}


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in").first).to_be_visible()
    assert session_cookie(page) == {}


def test_a_learner_registers_logs_in_passes_the_quiz_and_logs_out_for_good(site, page: Page):
    page.goto("/")
    page.get_by_role("link", name="Register").first.click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("link", name="ada")).to_be_visible()  # registering signs you in
    first = session_cookie(page)
    log_out(page)

    page.get_by_role("link", name="Log in").first.click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile("/$"))
    expect(page.get_by_role("link", name="ada")).to_be_visible()
    cookies = session_cookie(page)
    assert cookies and cookies != first  # a new session id
    assert progress_of(page) == (0, 4)
    expect(page.locator("label[for=course-progress]")).to_have_text("0 of 4 lessons completed")

    page.get_by_role("link", name="Introduction to Neural Networks").click()
    expect(page.locator(".lesson-header .status")).to_have_text("in progress")
    for question, fieldset in zip(SEED_QUIZ.questions, page.locator("form.quiz fieldset").all(),
                                  strict=True):  # fmt: skip
        fieldset.get_by_label(_text(question.correct_option.html), exact=True).check()
    page.get_by_role("button", name="Check my answers").click()
    expect(page.get_by_role("status")).to_contain_text("5 of 5 correct")
    expect(page.locator(".form-ok")).to_contain_text("Saved to your attempt history")

    page.get_by_role("link", name="Back to the lesson").click()
    expect(page.locator(".lesson-header .status")).to_have_text("completed")
    expect(page.locator(".lesson-header")).to_contain_text("best score 100%")
    page.get_by_role("link", name="Course").click()
    assert progress_of(page) == (1, 4)
    expect(page.locator("label[for=course-progress]")).to_have_text("1 of 4 lessons completed")
    card = page.locator("li.lesson-card", has_text="Introduction to Neural Networks")
    expect(card.locator(".status")).to_have_text("completed")
    assert httpx.get(site.url + "/api/me", cookies=cookies).json()["username"] == "ada"

    log_out(page)
    expect(page.locator("progress#course-progress")).to_have_count(0)
    # both session cookies, replayed, are dead on the server
    for old in (first, cookies):
        assert httpx.get(site.url + "/api/me", cookies=old).status_code == 401
        replay = httpx.get(site.url + "/me", cookies=old, follow_redirects=False)
        assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
