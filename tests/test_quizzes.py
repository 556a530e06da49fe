"""Quizzes: grading, answers never leaking before submission, per-learner order, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.content import load_course
from app.quizzes.grading import AnswerError, grade, option_order

from .accounts_util import ids_of, tampered
from .quiz_pages import api_order, form_fields, page_order, review_order

ROOT = Path(__file__).resolve().parent.parent
SEED = "dl-intro-neural-networks"
FIXTURES = Path(__file__).parent / "fixtures" / "course"


@pytest.fixture(scope="module")
def seed_quiz():
    return load_course(ROOT / "content").get(SEED).quiz


@pytest.fixture(scope="module")
def marked_quiz():
    return load_course(FIXTURES).get("gradient-descent").quiz


def right_answers(quiz) -> dict[str, str]:
    return {q.id: q.correct_option.id for q in quiz.questions}


def wrong_answers(quiz) -> dict[str, str]:
    return {q.id: next(o.id for o in q.options if not o.correct) for q in quiz.questions}


# Grading (pure functions) ---------------------------------------------------------------


def test_all_right_scores_full_marks_and_passes(seed_quiz):
    result = grade(seed_quiz, right_answers(seed_quiz), lesson_id=SEED, pass_percent=80)
    assert (result.score, result.total, result.percent, result.passed) == (5, 5, 100.0, True)
    assert all(r.correct for r in result.results)


def test_all_wrong_scores_zero_and_fails(seed_quiz):
    result = grade(seed_quiz, wrong_answers(seed_quiz), lesson_id=SEED, pass_percent=80)
    assert (result.score, result.percent, result.passed) == (0, 0.0, False)
    assert all(r.selected_option_id != r.correct_option_id for r in result.results)


def test_partial_answers_score_exactly_and_pass_at_the_boundary(seed_quiz):
    answers = right_answers(seed_quiz)
    first = seed_quiz.questions[0]
    answers[first.id] = first.options[1].id
    result = grade(seed_quiz, answers, lesson_id=SEED, pass_percent=80)
    assert (result.score, result.percent, result.passed) == (4, 80.0, True)
    assert not grade(seed_quiz, answers, lesson_id=SEED, pass_percent=81).passed


def test_unanswered_questions_count_as_wrong_with_no_selection(seed_quiz):
    first, second = seed_quiz.questions[:2]
    result = grade(
        seed_quiz,
        {first.id: first.correct_option.id, second.id: None},
        lesson_id=SEED,
        pass_percent=80,
    )
    assert result.score == 1
    assert [r.selected_option_id for r in result.results][1:] == [None] * 4
    assert [r.correct for r in result.results] == [True, False, False, False, False]


def test_explicit_markers_grade_an_option_that_is_not_first(marked_quiz):
    first = marked_quiz.questions[0]
    authored_first = first.options[0].id
    marked = first.options[1].id
    assert grade(marked_quiz, {first.id: marked}, lesson_id="g", pass_percent=60).score == 1
    assert grade(marked_quiz, {first.id: authored_first}, lesson_id="g", pass_percent=60).score == 0


def test_an_option_from_another_question_is_refused_by_name(seed_quiz):
    first, second = seed_quiz.questions[:2]
    with pytest.raises(AnswerError, match=f"belongs to question '{second.id}'"):
        grade(seed_quiz, {first.id: second.options[0].id}, lesson_id=SEED, pass_percent=80)


def test_option_order_is_stable_per_learner_and_round_and_differs_between_them(seed_quiz):
    question = seed_quiz.questions[0]
    order = [o.id for o in option_order(question, secret="s", learner_key="alice")]
    assert order == [o.id for o in option_order(question, secret="s", learner_key="alice")]
    others = {
        tuple(o.id for o in option_order(question, secret="s", learner_key=f"learner-{n}"))
        for n in range(40)
    }
    assert len(others) > 10
    rounds = {
        tuple(o.id for o in option_order(question, secret="s", learner_key="alice", round=r))
        for r in range(20)
    }
    assert len(rounds) > 5


# The JSON API ------------------------------------------------------------------------------


def test_the_quiz_api_serves_ids_prompts_and_options_and_nothing_more(client):
    quiz = client.get(f"/api/lessons/{SEED}/quiz").json()
    assert quiz.keys() == {
        "lesson_id", "pass_percent", "review_answers", "max_attempts", "attempts_left", "questions"
    }  # fmt: skip
    assert (quiz["lesson_id"], quiz["pass_percent"]) == (SEED, 80)
    assert (quiz["review_answers"], quiz["max_attempts"], quiz["attempts_left"]) == (
        "always", None, None,
    )  # fmt: skip
    assert len(quiz["questions"]) == 5
    content = {o.id for q in client.app.state.course.get(SEED).quiz.questions for o in q.options}
    for question in quiz["questions"]:
        assert question.keys() == {"id", "type", "prompt", "options", "items", "run", "experiment"}
        assert (question["type"], question["items"], question["run"]) == ("single", [], None)
        assert question["experiment"] is None
        for option in question["options"]:
            assert option.keys() == {"id", "text"}
            assert re.fullmatch(r"o[0-9a-f]{16}", option["id"])
            assert option["id"] not in content  # this learner's id, not the content's


def test_no_field_or_position_correlates_with_correctness_across_many_learners(make_app):
    """Render the quiz for many guests: the right option lands in every position, and
    the authored-first (right) option is not always shown first."""
    app = make_app()
    truth = {q.id: q.correct_option.html for q in app.state.course.get(SEED).quiz.questions}
    positions: dict[str, set[int]] = {qid: set() for qid in truth}
    first_shown_right = 0
    learners = 40
    for _ in range(learners):
        with TestClient(app) as guest:  # a fresh cookie jar: a new guest
            quiz = guest.get(f"/api/lessons/{SEED}/quiz").json()
            page = guest.get(f"/lessons/{SEED}").text
        for question in quiz["questions"]:
            texts = [o["text"] for o in question["options"]]
            positions[question["id"]].add(texts.index(truth[question["id"]]))
            first_shown_right += texts[0] == truth[question["id"]]
        # In the page, every option's markup is identical apart from id/value/text.
        radios = re.findall(r"<input[^>]*type=\"radio\"[^>]*>", page)
        assert len(radios) == 20
        shapes = {re.sub(r'"[^"]*"', '""', radio) for radio in radios}
        assert len(shapes) == 1
        assert "correct" not in page.split('class="quiz"', 1)[1].lower()
    assert all(seen == {0, 1, 2, 3} for seen in positions.values())
    assert first_shown_right < learners * 5 * 0.5


def test_the_same_guest_sees_the_same_order_on_reload(client):
    first = client.get(f"/api/lessons/{SEED}/quiz").json()
    again = client.get(f"/api/lessons/{SEED}/quiz").json()
    assert first == again
    page_one = client.get(f"/lessons/{SEED}").text
    assert page_one == client.get(f"/lessons/{SEED}").text


def test_the_lesson_page_the_quiz_api_and_the_review_list_options_in_one_order(client):
    quiz = client.app.state.course.get(SEED).quiz
    page = client.get(f"/lessons/{SEED}").text
    shown = page_order(page)
    content = {mine: theirs for theirs, mine in ids_of(client, quiz).items()}
    assert [sorted(content[i] for i in ids) for ids in shown] == [
        sorted(o.id for o in q.options) for q in quiz.questions
    ]
    assert shown == api_order(client)
    token, _ = form_fields(page)
    review = client.post(f"/lessons/{SEED}/quiz", data={"csrf_token": token})
    assert review.status_code == 200
    assert review_order(review.text, quiz) == [[content[i] for i in ids] for ids in shown]


def test_each_guest_sees_a_lesson_page_order_of_their_own_on_every_reload(make_app):
    app = make_app()
    orders = set()
    for _ in range(12):
        with TestClient(app) as guest:  # a fresh cookie jar: a new guest
            first = page_order(guest.get(f"/lessons/{SEED}").text)
            assert page_order(guest.get(f"/lessons/{SEED}").text) == first
            orders.add(json.dumps(first))
    assert len(orders) >= 11  # 24**5 possible orders: two guests alike is a one-in-millions


def test_submitting_right_answers_through_the_api_passes(client):
    quiz = client.get(f"/api/lessons/{SEED}/quiz").json()
    content = client.app.state.course.get(SEED).quiz
    ids = ids_of(client, content)
    truth = {q.id: ids[q.correct_option.id] for q in content.questions}
    response = client.post(f"/api/lessons/{SEED}/quiz/attempts", json={"answers": truth})
    assert response.status_code == 200
    body = response.json()
    assert body.keys() == {
        "lesson_id", "score", "total", "percent", "passed", "attempt_id", "answers_shown",
        "attempts_left", "results",
    }  # fmt: skip
    assert (body["score"], body["total"], body["percent"], body["passed"]) == (5, 5, 100.0, True)
    assert body["attempt_id"] is None
    assert [r["question_id"] for r in body["results"]] == [q["id"] for q in quiz["questions"]]
    assert body["results"][0].keys() == {
        "question_id", "type", "correct", "selected", "correct_answer", "selected_option_id",
        "correct_option_id", "explanation", "feedback", "note", "run", "terms",
    }  # fmt: skip
    first = body["results"][0]
    assert first["selected_option_id"] == first["selected"] == truth[first["question_id"]]
    assert first["correct_option_id"] == first["correct_answer"] == first["selected"]


def test_explanations_come_back_with_the_results(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        body = client.post(
            "/api/lessons/gradient-descent/quiz/attempts", json={"answers": {}}
        ).json()
    assert body["results"][0]["explanation"] == "A larger η takes bigger steps along −∇L."
    assert body["results"][2]["explanation"] is None
    assert body["score"] == 0 and body["passed"] is False


def test_per_lesson_pass_percent_overrides_the_site_default(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course, pass_percent=90)) as client:
        assert client.get("/api/lessons/gradient-descent/quiz").json()["pass_percent"] == 60
        assert client.get(f"/api/lessons/{SEED}/quiz").json()["pass_percent"] == 90


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "answers: Field required"),
        ({"answers": ["a"]}, "answers: Input should be a valid dictionary"),
        ({"answers": "abc"}, "answers: Input should be a valid dictionary"),
        ({"answers": {"qc473fa9d3f": 3}}, "question 'qc473fa9d3f' (single choice) must be an"),
        ({"answers": {"qc473fa9d3f": ["o1"]}}, "(single choice) must be an option id"),
        ({"answers": {"nope": "o123"}}, "unknown question id 'nope'"),
        ("not json at all", "JSON decode error"),
    ],
)
def test_bad_submissions_get_422_saying_what_is_wrong(client, body, message):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    headers = {"content-type": "application/json"}
    response = client.post(f"/api/lessons/{SEED}/quiz/attempts", headers=headers, **kwargs)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_an_option_id_of_another_question_or_unknown_is_a_422(client):
    quiz = client.app.state.course.get(SEED).quiz
    first, second = quiz.questions[0], quiz.questions[1]
    ids = ids_of(client, quiz)
    url = f"/api/lessons/{SEED}/quiz/attempts"
    crossed = client.post(url, json={"answers": {first.id: ids[second.options[0].id]}})
    assert crossed.status_code == 422
    assert f"belongs to question '{second.id}'" in crossed.json()["detail"]
    unknown = client.post(url, json={"answers": {first.id: "o000000000000"}})
    assert unknown.status_code == 422
    assert "unknown option id 'o000000000000'" in unknown.json()["detail"]


def test_an_oversized_body_is_413_and_an_unknown_lesson_404(client):
    huge = {"answers": {f"q{i}": "o" * 40 for i in range(3000)}}
    assert client.post(f"/api/lessons/{SEED}/quiz/attempts", json=huge).status_code == 413
    assert client.post("/api/lessons/nope/quiz/attempts", json={"answers": {}}).status_code == 404
    assert client.get("/api/lessons/nope/quiz").status_code == 404


def test_a_lesson_without_a_knowledge_check_has_no_quiz(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        response = client.get("/api/lessons/learning-rates/quiz")
        assert response.status_code == 404
        assert response.json() == {"detail": "lesson 'learning-rates' has no knowledge check"}
        assert 'class="quiz"' not in client.get("/lessons/learning-rates").text


# The no-JavaScript form --------------------------------------------------------------------


def test_the_form_round_trip_grades_and_reviews_every_question(make_app, fixture_course):
    with TestClient(make_app(content_dir=fixture_course)) as client:
        page = client.get("/lessons/gradient-descent").text
        token, options = form_fields(page)
        quiz = client.app.state.course.get("gradient-descent").quiz
        first, second, third = quiz.questions
        ids = ids_of(client, quiz, "gradient-descent")
        wrong_second = ids[next(o.id for o in second.options if not o.correct)]
        form = {
            "csrf_token": token,
            first.id: ids[first.correct_option.id],
            second.id: wrong_second,
        }
        response = client.post("/lessons/gradient-descent/quiz", data=form)
    assert response.status_code == 200
    review = response.text
    assert "1 of 3 correct (33.3%)" in review and "not passed yet (pass mark 60%)" in review
    assert review.count("— your answer") == 2
    assert review.count("— right answer") == 3
    assert "Not answered" in review
    assert "A larger η takes bigger steps along −∇L." in review
    assert 'href="/lessons/gradient-descent#quiz">Try again' in review
    assert set(options) == {first.id, second.id, third.id}


def test_a_form_post_without_a_valid_csrf_token_is_refused(client):
    page = client.get(f"/lessons/{SEED}").text
    token, _ = form_fields(page)
    url = f"/lessons/{SEED}/quiz"
    assert client.post(url, data={}).status_code == 403
    for at in (0, len(token) // 2, -1):
        assert client.post(url, data={"csrf_token": tampered(token, at)}).status_code == 403
    with TestClient(client.app) as stranger:  # another visitor's cookie, this visitor's token
        assert stranger.post(url, data={"csrf_token": token}).status_code == 403
    assert client.post(url, data={"csrf_token": token}).status_code == 200


@pytest.mark.parametrize("last", "0123456789abcdef")
def test_a_tampered_token_differs_from_the_real_one_whatever_it_ends_with(last):
    token = "3f" * 15 + "a" + last
    assert tampered(token) != token and tampered(token)[:-1] == token[:-1]
    assert tampered(token, 0) != token and tampered(token, 0)[1:] == token[1:]


def test_a_form_with_an_unknown_question_is_a_422_page(client):
    token, _ = form_fields(client.get(f"/lessons/{SEED}").text)
    response = client.post(f"/lessons/{SEED}/quiz", data={"csrf_token": token, "zzz": "o1"})
    assert response.status_code == 422
    assert "unknown question id" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_the_answer_key_a_guest_is_shown_does_not_pass_a_learners_first_stored_attempt(make_app):
    app = make_app()
    url = f"/api/lessons/{SEED}/quiz/attempts"
    with TestClient(app) as guest:
        key = guest.post(url, json={"answers": {}}).json()["results"]
    copied = {r["question_id"]: r["correct_option_id"] for r in key}
    with TestClient(app) as account:
        username, password = "mallory", "correct horse battery"
        account.post("/api/auth/register", json={"username": username, "password": password})
        token = account.post(
            "/api/auth/token", data={"username": username, "password": password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        attempt = account.post(url, json={"answers": copied}, headers=headers)
        assert attempt.status_code == 422
        assert "unknown option id" in attempt.json()["detail"]
        progress = account.get("/api/me/progress", headers=headers).json()["lessons"]
        assert progress[0]["status"] == "not_started"
