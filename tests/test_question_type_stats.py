"""Instructor statistics per question type, first attempts beside all (SQLite, and PostgreSQL
with TEST_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .accounts_util import PASSWORD, bearer, browser_login, token
from .question_types_util import post, right_answers, variant

LESSON = "no-run"


@pytest.fixture
def client(make_app, tmp_path: Path) -> Iterator[TestClient]:
    folder = tmp_path / "content"
    folder.mkdir()
    variant(folder, LESSON, keep_run=False)
    with TestClient(make_app(content_dir=folder)) as test_client:
        yield test_client


def instructor(client) -> dict[str, str]:
    from app.accounts import service

    with client.app.state.db.session() as session:
        service.create_user(session, username="prof", password=PASSWORD, role="instructor")
    return bearer(token(client, "prof"))


def student(client, name: str) -> dict[str, str]:
    client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    return bearer(token(client, name))


def answered(client, headers, **changes) -> dict:
    """Right answers with some replaced: question index → a value, or a function of the right
    one (in the learner's ids) and the learner's option ids by text."""
    answers = right_answers(client, LESSON, headers)
    quiz = client.app.state.course.get(LESSON).quiz
    shown = client.get(f"/api/lessons/{LESSON}/quiz", headers=headers).json()["questions"]
    for key, change in changes.items():
        question = quiz.questions[int(key[1:])]
        by_text = {o["text"]: o["id"] for o in shown[int(key[1:])]["options"]}
        answers[question.id] = change(answers[question.id], by_text) if callable(change) else change
    return answers


def test_stats_per_type_show_first_attempts_beside_all(client):
    ada, bob, cyd = student(client, "ada"), student(client, "bob"), student(client, "cyd")
    submissions = [
        (ada, answered(client, ada, q1=lambda _, t: [t["ReLU"], t["Adam"]], q3="0.6",
                       q4="lots", q5=lambda order, _: [order[1], order[0], *order[2:]])),
        (ada, answered(client, ada)),
        (bob, answered(client, bob)),
        (cyd, answered(client, cyd, q1=lambda _, t: [t["ReLU"]], q3=" 0.60", q4="90")),
    ]  # fmt: skip
    for headers, answers in submissions:
        assert post(client, answers, LESSON, headers).status_code == 200
    post(client, answered(client, {}, q3="7"), LESSON)  # a guest's: not counted
    body = client.get(f"/api/lessons/{LESSON}/stats", headers=instructor(client)).json()
    assert (body["attempts"], body["learners"], body["passed"], body["pass_rate"]) == (
        4, 3, 3, 0.75,
    )  # fmt: skip
    assert (body["first_attempts"], body["first_passed"], body["first_pass_rate"]) == (
        3, 2, 0.6667,
    )  # fmt: skip
    single, multiple, select_all, numeric, relative, ordering = body["questions"]
    assert [q["type"] for q in body["questions"]] == [
        "single", "multiple", "multiple", "numeric", "numeric", "ordering",
    ]  # fmt: skip
    assert (single["correct_share"], single["first_correct_share"]) == (1.0, 1.0)
    chosen = {o["html"]: o["chosen"] for o in multiple["options"]}
    assert chosen == {"ReLU": 4, "tanh": 2, "Adam": 1, "Dropout": 0}
    assert (multiple["correct"], multiple["correct_share"]) == (2, 0.5)
    assert (multiple["first_attempts"], multiple["first_correct"]) == (3, 1)
    assert multiple["first_correct_share"] == 0.3333
    assert select_all["correct_share"] == 1.0
    assert numeric["options"] == [] and numeric["items"] == []
    assert (numeric["correct_share"], numeric["first_correct_share"]) == (0.5, 0.3333)
    assert numeric["common_wrong"] == [{"answer": "0.6", "count": 2}]  # "0.6" and " 0.60"
    assert relative["common_wrong"] == [
        {"answer": "90", "count": 1}, {"answer": "lots", "count": 1},
    ]  # fmt: skip
    assert (ordering["correct_share"], ordering["first_correct_share"]) == (0.75, 0.6667)
    assert [(i["right_position"], i["placed_share"]) for i in ordering["items"]] == [
        (1, 0.75), (2, 0.75), (3, 1.0), (4, 1.0),
    ]  # fmt: skip
    assert ordering["common_wrong"] == [] and ordering["options"] == []


def test_a_numeric_question_lists_only_its_five_most_common_wrong_values(client):
    for n, value in enumerate(["1", "1", "1", "2", "2", "3", "4", "5", "6", "0.5"]):
        headers = student(client, f"learner{n}")
        post(client, answered(client, headers, q3=value), LESSON, headers)
    body = client.get(f"/api/lessons/{LESSON}/stats", headers=instructor(client)).json()
    assert body["questions"][3]["common_wrong"] == [
        {"answer": "1", "count": 3}, {"answer": "2", "count": 2}, {"answer": "3", "count": 1},
        {"answer": "4", "count": 1}, {"answer": "5", "count": 1},
    ]  # fmt: skip


def test_the_instructor_page_shows_first_tries_and_each_types_breakdown(client):
    ada = student(client, "ada")
    post(client, answered(client, ada, q3="0.75"), LESSON, ada)
    instructor(client)
    browser_login(client, "prof")
    page = client.get("/instructor").text
    assert "First-try pass rate" in page and "100% of 1" in page
    assert "% right on a first attempt" in page
    assert "<code>0.75</code>" in page and "Common wrong answer" in page
    assert "1. Forward pass" in page and "Placed correctly" in page
    assert "multiple select" in page and "style=" not in page
