"""Reading a quiz's option order off the lesson page, the quiz API and the review page."""

from __future__ import annotations

import re

SEED = "dl-intro-neural-networks"


def form_fields(page: str) -> tuple[str, dict[str, list[str]]]:
    """A page's CSRF token and each question's option ids."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    options: dict[str, list[str]] = {}
    for name, value in re.findall(r'type="radio" id="[^"]+" name="([^"]+)" value="([^"]+)"', page):
        options.setdefault(name, []).append(value)
    return token, options


def page_order(page: str) -> list[list[str]]:
    """Each question's option ids in the order the lesson page's form lists them."""
    form = page.split('class="quiz"', 1)[1]
    return [
        re.findall(r'type="radio" id="[^"]+" name="[^"]+" value="([^"]+)"', fieldset)
        for fieldset in re.findall(r"<fieldset[^>]*>(.*?)</fieldset>", form, re.DOTALL)
    ]


def api_order(client, lesson_id: str = SEED, headers: dict | None = None) -> list[list[str]]:
    """Each question's option ids in the order the quiz API lists them."""
    quiz = client.get(f"/api/lessons/{lesson_id}/quiz", headers=headers).json()
    return [[o["id"] for o in q["options"]] for q in quiz["questions"]]


def review_order(review: str, quiz) -> list[list[str]]:
    """Each question's option ids in the order the review page lists them (found by text)."""
    lists = re.findall(r'<ul aria-label="Options">(.*?)</ul>', review, re.DOTALL)
    assert len(lists) == len(quiz.questions)
    order = []
    for items, question in zip(lists, quiz.questions, strict=True):
        by_html = {option.html: option.id for option in question.options}
        texts = re.findall(r'<li class="[^"]*">\s*(.*?)\s*(?:<span class="tag">|</li>)', items)
        order.append([by_html[text] for text in texts])
    return order
