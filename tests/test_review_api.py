"""Spaced review through the API and the no-JavaScript form: cards from stored attempts, FSRS
due times on a clock the test moves (the app's own `app.state.clock`), spreading, reviewAnswers,
404s and 422s that change nothing, export and account deletion."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from .accounts_util import PASSWORD, browser_login, learner, register
from .question_types_util import EVERY_TYPE, LESSON, post, right_answers, served, variant

EXPERIMENT = Path(__file__).parent / "fixtures" / "experiments" / "experiment.md"

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    """The app's "now", moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def to(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(make_app, tmp_path: Path, clock: Clock):
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(EVERY_TYPE, folder / EVERY_TYPE.name)
    variant(folder, "second", keep_run=False)
    variant(folder, "never", "reviewAnswers: never\n", keep_run=False)
    shutil.copy(EXPERIMENT, folder / EXPERIMENT.name)
    app = make_app(content_dir=folder, train_workers=1)
    app.state.clock = clock
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def wrong_answers(client, lesson_id: str, headers: dict) -> dict:
    """Every question answered, every one wrong, in this learner's ids."""
    quiz = client.app.state.course.get(lesson_id).quiz
    shown = {q["id"]: q for q in served(client, lesson_id, headers)["questions"]}
    answers = {}
    for question in quiz.questions:
        by_text = {o["text"]: o["id"] for o in shown[question.id]["options"]}
        if question.type == "single":
            answers[question.id] = next(by_text[o.html] for o in question.options if not o.correct)
        elif question.type == "multiple":
            answers[question.id] = [by_text[question.options[-1].html]]
        elif question.type == "numeric":
            answers[question.id] = "12345"
        else:
            items = {i["text"]: i["id"] for i in shown[question.id]["items"]}
            answers[question.id] = [items[i.html] for i in reversed(question.items)]
    return answers


def review_answer(client, question: dict, *, right: bool) -> object:
    """A right or wrong answer to a due question as GET /api/me/review shows it (its ids)."""
    lesson = client.app.state.course.get(question["lesson_id"])
    content = lesson.quiz.question(question["id"])
    by_text = {o["text"]: o["id"] for o in question["options"] + question["items"]}
    if content.type == "single":
        pick = (
            content.correct_option if right else next(o for o in content.options if not o.correct)
        )
        return by_text[pick.html]
    if content.type == "multiple":
        chosen = content.correct_options if right else content.options[-1:]
        return [by_text[o.html] for o in chosen]
    if content.type == "numeric":
        return str(content.numeric[0].value) if right else "12345"
    order = list(content.items) if right else list(reversed(content.items))
    return [by_text[i.html] for i in order]


def due_list(client, headers: dict, **params) -> dict:
    response = client.get("/api/me/review", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def answer(client, headers: dict, question: dict, *, right: bool):
    value = review_answer(client, question, right=right)
    return client.post(f"/api/me/review/{question['id']}", json={"answer": value}, headers=headers)


def card_rows(client) -> list[tuple]:
    with client.app.state.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, question_id, reviews, due FROM review_cards ORDER BY 1, 2")
        )
        return [tuple(row) for row in rows]


def test_every_question_of_a_stored_attempt_becomes_a_card_back_soon_if_wrong_later_if_right(
    client, clock
):
    ada = learner(client, "ada")
    answers = right_answers(client, "second", ada)
    quiz = client.app.state.course.get("second").quiz
    missed = quiz.questions[0].id
    answers[missed] = wrong_answers(client, "second", ada)[missed]
    assert post(client, answers, "second", ada).status_code == 200
    now = due_list(client, ada)
    assert now["cards"] == len(quiz.questions) == 6 and now["due"] == 0
    assert now["next_due"] == (START + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    clock.advance(minutes=10)
    soon = due_list(client, ada)
    assert [q["id"] for q in soon["questions"]] == [missed] and soon["due"] == 1
    assert soon["questions"][0]["lesson_id"] == "second"
    assert soon["questions"][0]["type"] == "single" and soon["questions"][0]["options"]
    assert datetime.fromisoformat(soon["next_due"]) >= START + timedelta(days=1)
    clock.to(datetime.fromisoformat(soon["next_due"]))
    assert due_list(client, ada)["due"] == 6  # the right ones, days later


def test_due_times_move_out_after_right_answers_and_come_back_after_wrong_ones(client, clock):
    ada = learner(client, "ada")
    assert post(client, right_answers(client, "second", ada), "second", ada).status_code == 200
    tracked = client.app.state.course.get("second").quiz.questions[0].id
    cards = client.get("/api/me/export", headers=ada).json()["review_cards"]
    due = datetime.fromisoformat(next(c["due"] for c in cards if c["question_id"] == tracked))
    intervals = [due - START]

    def review_all_due(*, right: bool) -> dict:
        """Answer everything due now; the tracked question's result."""
        seen = {}
        for question in due_list(client, ada, limit=100)["questions"]:
            response = answer(client, ada, question, right=right or question["id"] != tracked)
            assert response.status_code == 200, response.text
            seen[question["id"]] = response.json()
        return seen[tracked]

    for _ in range(4):  # each time it falls due, it is answered right
        clock.to(due)
        body = review_all_due(right=True)
        assert body["result"]["correct"] and body["state"] == "review"
        due = datetime.fromisoformat(body["due"])
        intervals.append(due - clock.now)
    assert all(later > earlier for earlier, later in zip(intervals, intervals[1:], strict=False)), (
        intervals
    )
    assert intervals[-1] > timedelta(days=30)

    clock.to(due)
    wrong = review_all_due(right=False)
    assert not wrong["result"]["correct"] and wrong["state"] == "relearning"
    assert datetime.fromisoformat(wrong["due"]) - clock.now == timedelta(minutes=10)
    clock.advance(minutes=9)
    assert tracked not in [q["id"] for q in due_list(client, ada, limit=100)["questions"]]
    clock.advance(minutes=1)
    relearned = review_all_due(right=True)
    assert relearned["state"] == "review"
    # FSRS remembers the lapse: the interval after it is far shorter than the one before it
    assert datetime.fromisoformat(relearned["due"]) - clock.now < intervals[-1] / 2


def test_questions_of_one_lesson_are_spread_apart_not_served_back_to_back(client, clock):
    ada = learner(client, "ada")
    for lesson_id in (LESSON, "second"):
        wrong = wrong_answers(client, lesson_id, ada)
        wrong.pop(next(iter(wrong)))  # unanswered counts as wrong too
        assert post(client, wrong, lesson_id, ada).status_code == 200
    clock.advance(minutes=10)
    listed = due_list(client, ada, limit=100)
    lessons = [q["lesson_id"] for q in listed["questions"]]
    assert listed["due"] == 7 + 6 and sorted(lessons) == sorted([LESSON] * 7 + ["second"] * 6)
    # the last quiz taken was "second": the review starts elsewhere, then alternates
    assert lessons == [LESSON, "second"] * 6 + [LESSON]
    served_in_turn = []
    while (listed := due_list(client, ada))["questions"]:
        question = listed["questions"][0]
        served_in_turn.append(question["lesson_id"])
        assert answer(client, ada, question, right=True).status_code == 200
        clock.advance(seconds=20)  # the time a learner takes to answer
    assert served_in_turn == lessons


def test_a_question_not_due_not_yours_or_unknown_is_404_and_changes_nothing(client, clock):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    assert post(client, wrong_answers(client, "second", ada), "second", ada).status_code == 200
    before = card_rows(client)
    question = client.app.state.course.get("second").quiz.questions[0]
    not_yet = client.post(f"/api/me/review/{question.id}", json={"answer": None}, headers=ada)
    assert not_yet.status_code == 404 and question.id in not_yet.json()["detail"]
    clock.advance(minutes=10)
    for headers, question_id in (
        (bob, question.id), (ada, "q0000000000"), (ada, "x" * 100), (ada, "q%00"), (ada, "Q%20"),
    ):  # fmt: skip
        response = client.post(
            f"/api/me/review/{question_id}", json={"answer": None}, headers=headers
        )
        assert response.status_code == 404, response.text
    too_long = client.post(f"/api/me/review/{'x' * 101}", json={"answer": None}, headers=ada)
    assert too_long.status_code == 422
    assert client.post(f"/api/me/review/{question.id}", json={"answer": None}).status_code == 401
    assert card_rows(client) == before and due_list(client, bob) == {
        "cards": 0, "due": 0, "next_due": None, "questions": [],
    }  # fmt: skip
    first = client.post(f"/api/me/review/{question.id}", json={"answer": None}, headers=ada)
    assert first.status_code == 200 and not first.json()["result"]["correct"]
    twice = client.post(f"/api/me/review/{question.id}", json={"answer": None}, headers=ada)
    assert twice.status_code == 404  # answered: due again in ten minutes, not now


@pytest.mark.parametrize(
    "body",
    [{"answer": 3}, {"answer": ["o1"]}, {"answer": "o0123456789abcdef"}, {"answer": {"a": 1}}, {}],
)
def test_an_answer_of_the_wrong_shape_or_an_unknown_id_is_422_and_the_card_is_unchanged(
    client, clock, body
):
    ada = learner(client, "ada")
    assert post(client, wrong_answers(client, "second", ada), "second", ada).status_code == 200
    clock.advance(minutes=10)
    question = next(q for q in due_list(client, ada)["questions"] if q["type"] == "single")
    before = card_rows(client)
    response = client.post(f"/api/me/review/{question['id']}", json=body, headers=ada)
    assert response.status_code == 422, response.text
    assert card_rows(client) == before


def test_another_learners_option_ids_are_refused_with_422(client, clock):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    for headers in (ada, bob):
        assert post(client, wrong_answers(client, "second", headers), "second", headers)
    clock.advance(minutes=10)
    bobs = next(q for q in due_list(client, bob)["questions"] if q["type"] == "single")
    stolen = review_answer(client, bobs, right=True)
    response = client.post(f"/api/me/review/{bobs['id']}", json={"answer": stolen}, headers=ada)
    assert response.status_code == 422 and "unknown option id" in response.json()["detail"]


def test_a_lesson_that_never_shows_answers_does_not_show_them_in_review_either(client, clock):
    ada = learner(client, "ada")
    assert post(client, wrong_answers(client, "never", ada), "never", ada).status_code == 200
    assert post(client, wrong_answers(client, "second", ada), "second", ada).status_code == 200
    clock.advance(minutes=10)
    results = {}
    for question in due_list(client, ada, limit=100)["questions"]:
        body = answer(client, ada, question, right=False).json()
        results.setdefault(body["lesson_id"], []).append(body)
    assert {b["answers_shown"] for b in results["never"]} == {False}
    assert all(b["result"]["correct_answer"] is None for b in results["never"])
    assert all(b["result"]["explanation"] is None for b in results["never"])
    assert {b["answers_shown"] for b in results["second"]} == {True}
    assert all(b["result"]["correct_answer"] is not None for b in results["second"])


def test_a_predict_then_run_question_is_reviewed_by_its_prediction_with_the_real_run(client, clock):
    ada = learner(client, "ada")
    assert post(client, wrong_answers(client, LESSON, ada), LESSON, ada).status_code == 200
    clock.advance(minutes=10)
    predict = next(q for q in due_list(client, ada)["questions"] if q["run"] is not None)
    assert predict["run"]["dataset"] == "xor" and len(predict["options"]) == 2
    body = answer(client, ada, predict, right=True).json()
    assert body["result"]["correct"] and body["result"]["run"]["status"] == "completed"
    assert body["result"]["run"]["test_accuracy"] > 0.9


def test_cards_are_part_of_the_export_and_are_deleted_with_the_account(client, clock):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    for headers in (ada, bob):
        assert post(client, wrong_answers(client, "second", headers), "second", headers)
    exported = client.get("/api/me/export", headers=ada).json()["review_cards"]
    quiz = client.app.state.course.get("second").quiz
    assert sorted(c["question_id"] for c in exported) == sorted(q.id for q in quiz.questions)
    card = exported[0]
    assert card["lesson_id"] == "second" and card["state"] == 1 and card["lapses"] == 1
    assert datetime.fromisoformat(card["due"]) == START + timedelta(minutes=10)
    assert card["reviews"] == 1 and card["stability"] > 0
    assert len(card_rows(client)) == 12
    deleted = client.request("DELETE", "/api/me", json={"password": PASSWORD}, headers=ada)
    assert deleted.status_code == 204
    assert len(card_rows(client)) == 6 and len(due_list(client, bob, limit=100)["questions"]) == 0
    assert {row[0] for row in card_rows(client)} == {2}


def test_guests_get_no_cards_and_the_review_needs_a_sign_in(client):
    assert post(client, right_answers(client, "second"), "second").status_code == 200
    assert card_rows(client) == []
    assert client.get("/api/me/review").status_code == 401
    page = client.get("/review", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/review"


def test_the_course_page_and_me_say_how_many_questions_are_due_and_when_the_next_is(client, clock):
    register(client, "ada")
    assert browser_login(client, "ada").status_code == 303
    assert "0 questions due" in client.get("/").text
    form = client.get("/lessons/second").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    assert client.post("/lessons/second/quiz", data={"csrf_token": token}).status_code == 200
    for path in ("/", "/me"):
        text = client.get(path).text
        assert "0 questions due" in text and "in 10 minutes" in text
        assert "2026-12-01 09:10 UTC" in text
    clock.advance(minutes=10)
    for path in ("/", "/me"):
        text = re.sub(r"\s+", " ", client.get(path).text)
        assert "6 questions due</strong> for review" in text, path
        assert 'href="/review"' in text


def test_the_no_javascript_form_is_graded_scheduled_and_answered_with_the_quizs_review(
    client, clock
):
    register(client, "ada")
    browser_login(client, "ada")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/lessons/second/quiz", data={"csrf_token": token}).status_code == 200
    clock.advance(minutes=10)
    page = client.get("/review")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    action = re.search(r'<form class="quiz" method="post" action="([^"]+)"', page.text).group(1)
    question_id = action.rsplit("/", 1)[1]
    assert page.text.count("<fieldset") == 1 and 'name="csrf_token"' in page.text
    forged = client.post(action, data={"csrf_token": "0" * 32})
    assert forged.status_code == 403
    content = next(
        q for lesson in client.app.state.course.lessons if lesson.quiz
        for q in lesson.quiz.questions if q.id == question_id
    )  # fmt: skip
    fields = {"csrf_token": token}
    if content.type == "single":
        shown = re.findall(rf'name="{question_id}" value="([^"]+)">\s*<span>([^<]*)', page.text)
        fields[question_id] = next(v for v, text in shown if text == content.correct_option.html)
    result = client.post(action, data=fields)
    assert result.status_code == 200
    text = re.sub(r"\s+", " ", result.text)
    if content.type == "single":
        assert "Correct." in text and "right answer" in text
    else:
        assert "Incorrect." in text  # left unanswered
    assert "This question comes back" in text and "Next question" in text
    assert "5 questions due" in text
    again = client.post(action, data=fields)
    assert again.status_code == 404


def test_an_experiment_graded_by_a_run_of_its_own_makes_no_card_but_its_lessons_other_questions_do(
    client, clock
):
    ada = learner(client, "ada")
    quiz = client.app.state.course.get("experiment").quiz
    kinds = {q.id: q.type for q in quiz.questions}
    assert "experiment" in kinds.values() and len(kinds) > 1
    assert post(client, {}, "experiment", ada).status_code == 200  # nothing answered: no run
    cards = client.get("/api/me/export", headers=ada).json()["review_cards"]
    assert sorted(c["question_id"] for c in cards) == sorted(
        qid for qid, kind in kinds.items() if kind != "experiment"
    )
    clock.advance(minutes=10)
    assert {q["type"] for q in due_list(client, ada)["questions"]} == (
        set(kinds.values()) - {"experiment"}
    )


def test_a_quiz_that_limits_attempts_and_hides_answers_is_not_reviewed_while_attempts_are_left(
    make_app, tmp_path, clock
):
    """Right or wrong, one question at a time every ten minutes, would otherwise find the
    answers such a quiz never shows before the learner's last attempt at it."""
    folder = tmp_path / "limited-course"
    folder.mkdir()
    variant(folder, "limited", "reviewAnswers: never\nmaxAttempts: 2\n", keep_run=False)
    variant(folder, "later", "reviewAnswers: after-pass\nmaxAttempts: 3\n", keep_run=False)
    app = make_app(content_dir=folder)
    app.state.clock = clock
    with TestClient(app) as client:
        ada = learner(client, "ada")
        for lesson_id in ("limited", "later"):
            wrong = wrong_answers(client, lesson_id, ada)
            assert post(client, wrong, lesson_id, ada).status_code == 200
        clock.advance(minutes=10)
        held = due_list(client, ada, limit=100)
        assert held["due"] == 0 and held["questions"] == []
        question = client.app.state.course.get("limited").quiz.questions[0]
        refused = client.post(f"/api/me/review/{question.id}", json={"answer": None}, headers=ada)
        assert refused.status_code == 404
        browser_login(client, "ada")
        assert "Nothing to review right now" in client.get("/review").text
        # the last attempt made: the lesson's questions are reviewed (still without answers)
        wrong = wrong_answers(client, "limited", ada)
        assert post(client, wrong, "limited", ada).status_code == 200
        clock.advance(minutes=10)
        listed = due_list(client, ada, limit=100)
        assert {q["lesson_id"] for q in listed["questions"]} == {"limited"} and listed["due"] == 6
        body = answer(client, ada, listed["questions"][0], right=True).json()
        assert body["result"]["correct"] and body["answers_shown"] is False
        # passed: nothing is hidden any more, so nothing is held back
        assert post(client, right_answers(client, "later", ada), "later", ada).status_code == 200
        clock.advance(days=400)
        assert {q["lesson_id"] for q in due_list(client, ada, limit=100)["questions"]} == {
            "limited", "later",
        }  # fmt: skip
