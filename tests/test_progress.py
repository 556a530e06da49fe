"""Progress: stored attempts, statuses, isolation between learners, instructor statistics, pages."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.accounts import service
from app.accounts import stats as service_stats
from app.db import Database
from app.quizzes.grading import AnswerIds, option_order

from .accounts_util import (
    PASSWORD,
    SEED,
    all_attempts,
    answers,
    bearer,
    browser_login,
    csrf,
    ids_of,
    learner,
    register,
    token,
)
from .quiz_pages import api_order, form_fields, page_order, review_order


@pytest.fixture
def course_client(make_app, fixture_course):
    """The fixture course: gradient-descent (3 questions, pass 60%), learning-rates (no quiz)."""
    with TestClient(make_app(content_dir=fixture_course)) as client:
        yield client


def submit(client, headers, lesson_id: str, chosen: dict) -> dict:
    """Submit answers given in the content's ids, as this learner's own ids."""
    ids = ids_of(client, quiz_of(client, lesson_id), lesson_id, headers)
    mine = {qid: ids[oid] for qid, oid in chosen.items()}
    response = client.post(
        f"/api/lessons/{lesson_id}/quiz/attempts", json={"answers": mine}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def quiz_of(client, lesson_id: str = SEED):
    return client.app.state.course.get(lesson_id).quiz


def test_a_signed_in_attempt_is_stored_with_every_chosen_option(client):
    headers = learner(client, "ada")
    quiz = quiz_of(client)
    chosen = answers(quiz, right=3)
    del chosen[quiz.questions[4].id]  # one left unanswered
    body = submit(client, headers, SEED, chosen)
    assert isinstance(body["attempt_id"], int) and body["score"] == 3 and not body["passed"]
    stored = client.get(f"/api/me/attempts/{body['attempt_id']}", headers=headers).json()
    assert stored["id"] == body["attempt_id"] and stored["score"] == 3 and stored["total"] == 5
    assert [a["question_id"] for a in stored["answers"]] == [q.id for q in quiz.questions]
    assert [a["selected_option_id"] for a in stored["answers"]] == [
        chosen.get(q.id) for q in quiz.questions
    ]
    assert [a["correct"] for a in stored["answers"]] == [True, True, True, False, False]


def test_guests_are_graded_but_nothing_is_stored(client):
    body = submit(client, {}, SEED, answers(quiz_of(client), right=5))
    assert body["attempt_id"] is None and body["passed"]
    with client.app.state.db.session() as session:
        assert service.export_user(session, user_id=1) == {}
    from sqlalchemy import text

    with client.app.state.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM quiz_attempts")).scalar() == 0


def test_guest_result_page_invites_to_sign_in_and_a_learner_s_says_saved(client):
    page = client.get(f"/lessons/{SEED}").text
    token_value = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    quiz = quiz_of(client)
    form = {"csrf_token": token_value, **answers(quiz, right=5, ids=ids_of(client, quiz))}
    guest = client.post(f"/lessons/{SEED}/quiz", data=form).text
    assert "This result was not saved" in guest and f"/login?next=/lessons/{SEED}" in guest.replace(
        "%2F", "/"
    )
    register(client, "ada")
    browser_login(client, "ada")
    # signed in, forms carry a token bound to the session: the guest's page is stale
    assert client.post(f"/lessons/{SEED}/quiz", data=form).status_code == 403
    page = client.get(f"/lessons/{SEED}").text
    token_value = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token_value, **answers(quiz, right=5, ids=ids_of(client, quiz))}
    saved = client.post(f"/lessons/{SEED}/quiz", data=form).text
    assert "Saved to" in saved and "not saved" not in saved
    attempts = all_attempts(client)  # the session cookie authenticates the API
    assert len(attempts) == 1 and attempts[0]["passed"]


def test_statuses_go_not_started_in_progress_completed(course_client):
    client = course_client
    headers = learner(client, "ada")
    progress = client.get("/api/me/progress", headers=headers).json()
    assert progress["total"] == len(client.app.state.course.lessons)
    assert progress["completed"] == 0 and progress["percent"] == 0
    assert {e["status"] for e in progress["lessons"]} == {"not_started"}
    assert set(progress["lessons"][0]) == {
        "lesson_id", "status", "best_percent", "attempts", "completed_at"
    }  # fmt: skip

    quiz = quiz_of(client, "gradient-descent")
    submit(client, headers, "gradient-descent", answers(quiz, right=1))
    entry = lesson_entry(client, headers, "gradient-descent")
    assert entry["status"] == "in_progress" and entry["attempts"] == 1
    assert entry["best_percent"] == pytest.approx(33.3, abs=0.05) and entry["completed_at"] is None

    submit(client, headers, "gradient-descent", answers(quiz, right=3))
    submit(client, headers, "gradient-descent", answers(quiz, right=0))
    entry = lesson_entry(client, headers, "gradient-descent")
    assert entry["status"] == "completed" and entry["attempts"] == 3
    assert entry["best_percent"] == 100 and entry["completed_at"]

    progress = client.get("/api/me/progress", headers=headers).json()
    assert progress["completed"] == 1
    assert progress["percent"] == pytest.approx(100 / progress["total"], abs=0.1)


def lesson_entry(client, headers, lesson_id):
    lessons = client.get("/api/me/progress", headers=headers).json()["lessons"]
    return next(e for e in lessons if e["lesson_id"] == lesson_id)


def test_opening_a_lesson_page_signed_in_marks_it_in_progress(course_client):
    client = course_client
    register(client, "ada")
    browser_login(client, "ada")
    assert lesson_entry(client, {}, "learning-rates")["status"] == "not_started"
    client.get("/lessons/learning-rates")
    assert lesson_entry(client, {}, "learning-rates")["status"] == "in_progress"
    assert "status-in_progress" in client.get("/lessons/learning-rates").text


def test_complete_a_lesson_without_a_quiz_by_api_and_by_button(course_client):
    client = course_client
    headers = learner(client, "ada")
    response = client.post("/api/lessons/learning-rates/complete", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "completed" and response.json()["completed_at"]
    again = client.post("/api/lessons/learning-rates/complete", headers=headers).json()
    assert again["completed_at"] == response.json()["completed_at"]  # idempotent
    quiz_lesson = client.post("/api/lessons/gradient-descent/complete", headers=headers)
    assert quiz_lesson.status_code == 409
    assert client.post("/api/lessons/nope/complete", headers=headers).status_code == 404
    assert client.post("/api/lessons/learning-rates/complete").status_code == 401

    register(client, "bob")
    browser_login(client, "bob")
    page = client.get("/lessons/learning-rates").text
    assert "Mark as complete" in page
    assert "Mark as complete" not in client.get("/lessons/gradient-descent").text
    form = {"csrf_token": csrf(client, "/lessons/learning-rates")}
    assert client.post("/lessons/learning-rates/complete", data={}).status_code == 403
    done = client.post("/lessons/learning-rates/complete", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/lessons/learning-rates"
    assert "You completed this lesson." in client.get("/lessons/learning-rates").text
    assert lesson_entry(client, {}, "learning-rates")["status"] == "completed"


def test_one_learner_never_sees_or_changes_another_s_data(client):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    quiz = quiz_of(client)
    ada_attempt = submit(client, ada, SEED, answers(quiz, right=5))["attempt_id"]
    bob_attempt = submit(client, bob, SEED, answers(quiz, right=1))["attempt_id"]
    # by id: someone else's attempt is a 404 exactly like a missing one
    theirs = client.get(f"/api/me/attempts/{bob_attempt}", headers=ada)
    missing = client.get("/api/me/attempts/999999", headers=ada)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == f"no attempt with id {bob_attempt}"
    assert client.get(f"/api/me/attempts/{ada_attempt}", headers=ada).status_code == 200
    # by listing
    listed = all_attempts(client, ada)
    assert [a["id"] for a in listed] == [ada_attempt]
    assert all_attempts(client, bob, lesson_id=SEED)[0]["id"] == bob_attempt
    assert all_attempts(client, bob, lesson_id="other") == []
    # progress and export
    assert lesson_entry(client, ada, SEED)["status"] == "completed"
    assert lesson_entry(client, bob, SEED)["status"] == "in_progress"
    export = client.get("/api/me/export", headers=bob).json()
    assert [a["id"] for a in export["attempts"]] == [bob_attempt]
    # deleting is only ever of oneself
    client.request("DELETE", "/api/me", json={"password": PASSWORD}, headers=bob)
    assert client.get(f"/api/me/attempts/{ada_attempt}", headers=ada).status_code == 200


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "2147483648", "99999999999999999999999"])
def test_bad_attempt_ids_are_422_not_500(client, bad):
    headers = learner(client, "ada")
    assert client.get(f"/api/me/attempts/{bad}", headers=headers).status_code == 422


def test_signed_in_learners_get_a_new_option_order_on_each_attempt(client):
    headers = learner(client, "ada")
    user_id = client.get("/api/me", headers=headers).json()["id"]
    quiz = quiz_of(client)
    secret = client.app.state.secret

    def served_order():
        questions = client.get(f"/api/lessons/{SEED}/quiz", headers=headers).json()["questions"]
        return [[o["id"] for o in q["options"]] for q in questions]

    ids = AnswerIds(quiz, secret=secret, learner_key=f"user:{user_id}")

    def expected(round_: int):
        return [
            [ids.to_public(o.id) for o in option_order(q, secret=secret,
                                                       learner_key=f"user:{user_id}", round=round_)]
            for q in quiz.questions
        ]  # fmt: skip

    assert served_order() == expected(0)
    submit(client, headers, SEED, answers(quiz, right=1))
    assert served_order() == expected(1)
    assert expected(0) != expected(1)


def test_a_signed_in_learners_page_api_and_review_share_the_order_of_each_round(client):
    user_id = register(client, "ada")["id"]
    assert browser_login(client, "ada").status_code == 303
    quiz = quiz_of(client)
    secret = client.app.state.secret

    ids = AnswerIds(quiz, secret=secret, learner_key=f"user:{user_id}")

    def expected(round_: int, mine: bool = True):
        return [
            [ids.to_public(o.id) if mine else o.id
             for o in option_order(q, secret=secret, learner_key=f"user:{user_id}", round=round_)]
            for q in quiz.questions
        ]  # fmt: skip

    page = client.get(f"/lessons/{SEED}").text
    assert page_order(page) == api_order(client) == expected(0)
    token, _ = form_fields(page)
    review = client.post(
        f"/lessons/{SEED}/quiz",
        data={"csrf_token": token, **answers(quiz, right=2, ids=ids_of(client, quiz))},
    )
    assert review.status_code == 200
    # the order the answers were given in
    assert review_order(review.text, quiz) == expected(0, mine=False)
    page = client.get(f"/lessons/{SEED}").text
    assert page_order(page) == api_order(client) == expected(1) != expected(0)


# --- instructors ------------------------------------------------------------------------------


def make_instructor(client, name: str = "prof") -> dict[str, str]:
    db: Database = client.app.state.db
    with db.session() as session:
        service.create_user(session, username=name, password=PASSWORD, role="instructor")
    return bearer(token(client, name))


def test_stats_are_for_instructors_only(client):
    assert client.get(f"/api/lessons/{SEED}/stats").status_code == 401
    headers = learner(client, "ada")
    response = client.get(f"/api/lessons/{SEED}/stats", headers=headers)
    assert response.status_code == 403 and response.json() == {"detail": "instructors only"}
    prof = make_instructor(client)
    assert client.get(f"/api/lessons/{SEED}/stats", headers=prof).status_code == 200
    assert client.get("/api/lessons/nope/stats", headers=prof).status_code == 404


def test_stats_count_attempts_pass_rate_and_every_option_choice(course_client):
    client = course_client
    quiz = quiz_of(client, "gradient-descent")
    q1, q2, q3 = quiz.questions
    wrong = {q.id: [o for o in q.options if not o.correct] for q in quiz.questions}
    submissions = [
        {q1.id: q1.correct_option.id, q2.id: q2.correct_option.id, q3.id: q3.correct_option.id},
        {q1.id: wrong[q1.id][0].id, q2.id: q2.correct_option.id, q3.id: q3.correct_option.id},
        {q1.id: wrong[q1.id][0].id, q2.id: wrong[q2.id][0].id},
        {q1.id: wrong[q1.id][-1].id},
    ]
    learners = [learner(client, name) for name in ("ada", "bob", "cyd")]
    for i, chosen in enumerate(submissions):
        submit(client, learners[min(i, 2)], "gradient-descent", chosen)
    submit(client, {}, "gradient-descent", submissions[0])  # a guest's: not counted
    stats = client.get("/api/lessons/gradient-descent/stats", headers=make_instructor(client))
    body = stats.json()
    assert body["attempts"] == 4 and body["learners"] == 3
    assert body["passed"] == 2 and body["pass_rate"] == 0.5  # pass mark 60%: 3/3 and 2/3
    first = body["questions"][0]
    assert first["question_id"] == q1.id and first["answered"] == 4 and first["unanswered"] == 0
    assert first["correct"] == 1 and first["correct_share"] == 0.25
    chosen = {o["option_id"]: o["chosen"] for o in first["options"]}
    expected = {o.id: 0 for o in q1.options}
    expected[q1.correct_option.id] = 1
    expected[wrong[q1.id][0].id] += 2
    expected[wrong[q1.id][-1].id] += 1
    assert chosen == expected
    third = body["questions"][2]
    assert third["answered"] == 2 and third["unanswered"] == 2 and third["correct_share"] == 0.5


def test_course_stats_keep_each_lessons_attempts_apart_and_match_lesson_stats(course_client):
    client = course_client
    ada, bob = learner(client, "ada"), learner(client, "bob")
    gd, seed = quiz_of(client, "gradient-descent"), quiz_of(client, SEED)
    submit(client, ada, "gradient-descent", {q.id: q.correct_option.id for q in gd.questions})
    submit(client, bob, SEED, answers(seed, right=2))
    submit(client, bob, SEED, answers(seed, right=5))
    course = client.app.state.course
    lessons = [course.get("gradient-descent"), course.get(SEED), course.get("regularisation")]
    with client.app.state.db.session() as session:
        together = service_stats.course_stats(session, lessons=lessons)
        one_by_one = [service_stats.lesson_stats(session, lesson=lesson) for lesson in lessons]
    assert together == one_by_one
    assert [s["attempts"] for s in together[:2]] == [1, 2]
    assert together[0]["learners"] == 1 and together[1]["passed"] == 1
    # per option too: each lesson's choices counted under that lesson only
    assert all(q["answered"] == q["correct"] == 1 for q in together[0]["questions"])
    right = [o["chosen"] for q in together[1]["questions"] for o in q["options"] if o["correct"]]
    assert sum(right) == 2 + 5
    assert together[2]["attempts"] == 0 and together[2]["pass_rate"] is None


# --- pages ------------------------------------------------------------------------------------


def test_course_index_shows_statuses_progress_and_where_to_continue(course_client):
    client = course_client
    anonymous = client.get("/").text
    assert "status-" not in anonymous and "Log in" in anonymous
    register(client, "ada")
    browser_login(client, "ada")
    client.get("/lessons/gradient-descent")
    client.post("/api/lessons/learning-rates/complete", headers={"X-CSRF-Token": csrf(client)})
    page = client.get("/").text
    total = len(client.app.state.course.lessons)
    assert f"1 of {total} lessons completed" in page
    assert f'<progress id="course-progress" max="{total}" value="1">' in page
    assert "Continue where you left off" in page and 'href="/lessons/gradient-descent"' in page
    assert "status-completed" in page and "status-in_progress" in page
    assert "status-not_started" in page


def test_me_page_lists_attempts_with_a_score_chart(client):
    assert client.get("/me", follow_redirects=False).headers["location"] == "/login?next=/me"
    headers = learner(client, "ada")
    quiz = quiz_of(client)
    for right in (1, 3, 5):
        submit(client, headers, SEED, answers(quiz, right=right))
    browser_login(client, "ada")
    page = client.get("/me")
    assert page.status_code == 200
    assert page.text.count("<circle") == 3 and "<polyline" in page.text
    assert "5/5 (100%)" in page.text and "1/5 (20%)" in page.text
    assert "style=" not in page.text and "<script" not in page.text  # CSP-clean


def test_instructor_page_needs_an_instructor(client):
    assert client.get("/instructor", follow_redirects=False).status_code == 303
    register(client, "ada")
    browser_login(client, "ada")
    assert client.get("/instructor").status_code == 403
    make_instructor(client)
    browser_login(client, "prof")
    page = client.get("/instructor")
    assert page.status_code == 200 and "Pass rate by lesson" in page.text
    assert 'class="bar"' in page.text and "style=" not in page.text
    assert 'href="/instructor"' in page.text  # the nav link instructors get


def test_a_cookie_signed_in_api_write_needs_the_csrf_header_but_a_bearer_token_does_not(
    course_client,
):
    client = course_client
    register(client, "ada")
    browser_login(client, "ada")
    url = "/api/lessons/learning-rates/complete"
    refused = client.post(url)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert client.post(url, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get("/api/me/progress").status_code == 200  # reads need no token
    progress = client.get("/api/me/progress").json()
    assert progress["completed"] == 0  # the refused writes changed nothing
    assert client.post(url, headers={"X-CSRF-Token": csrf(client)}).status_code == 200
    with TestClient(client.app) as api_client:  # no cookies, a bearer token
        assert api_client.post(url, headers=bearer(token(api_client, "ada"))).status_code == 200
