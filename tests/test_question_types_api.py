"""The quiz API and form for every question type: what the quiz shows (nothing that tells what is
right), typed results, keyed ids across learners, reviewAnswers, maxAttempts, and real runs."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.training.runner import train

from .accounts_util import csrf, learner
from .question_types_util import EVERY_TYPE, LESSON, post, right_answers, served, variant


@pytest.fixture
def app(make_app, tmp_path: Path):
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(EVERY_TYPE, folder / EVERY_TYPE.name)
    variant(folder, "after-pass", "reviewAnswers: after-pass\n", keep_run=False)
    variant(folder, "never", "reviewAnswers: never\n")
    variant(folder, "limited", "maxAttempts: 2\n", keep_run=False)
    return make_app(content_dir=folder, train_workers=1)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_the_quiz_shows_each_type_its_items_and_run_and_nothing_that_tells_what_is_right(client):
    quiz = client.app.state.course.get(LESSON).quiz
    body = served(client)
    questions = body["questions"]
    assert [q["type"] for q in questions] == [q.type for q in quiz.questions]
    numeric, ordering, predict = questions[3], questions[5], questions[6]
    assert numeric["options"] == [] and numeric["items"] == []
    assert ordering["options"] == []
    assert sorted(i["text"] for i in ordering["items"]) == sorted(
        i.html for i in quiz.questions[5].items
    )
    assert [i["text"] for i in ordering["items"]] != [i.html for i in quiz.questions[5].items]
    assert predict["run"] == quiz.questions[6].run and predict["run"]["dataset"] == "xor"
    assert all(q["run"] is None for q in questions[:6])
    text = json.dumps(body)
    secrets_of_the_key = [
        "correct", "feedback", "explanation", "0.01", "100.48", "Adam is an optimiser",
        "logistic function", "Gradients need the loss",
    ]  # fmt: skip
    assert not [word for word in secrets_of_the_key if word in text]
    content_ids = {c.id for q in quiz.questions for c in (*q.options, *q.items)}
    assert not [cid for cid in content_ids if cid in text]


def test_across_many_guests_no_position_or_markup_tells_which_option_or_item_is_right(app):
    quiz = app.state.course.get(LESSON).quiz
    multiple, ordering = quiz.questions[1], quiz.questions[5]
    right_positions: set[tuple[int, ...]] = set()
    first_items: set[str] = set()
    for _ in range(30):
        with TestClient(app) as guest:  # a fresh cookie jar: a new guest
            questions = served(guest)["questions"]
            page = guest.get(f"/lessons/{LESSON}").text
        texts = [o["text"] for o in questions[1]["options"]]
        right_positions.add(tuple(texts.index(o.html) for o in multiple.correct_options))
        items = [i["text"] for i in questions[5]["items"]]
        assert items != [i.html for i in ordering.items]
        first_items.add(items[0])
        form = page.split('class="quiz"', 1)[1]
        for kind in ("checkbox", "radio"):
            inputs = re.findall(rf'<input[^>]*type="{kind}"[^>]*>', form)
            assert len({re.sub(r'"[^"]*"', '""', tag) for tag in inputs}) == 1
        selects = re.findall(r"<select[^>]*>.*?</select>", form, re.DOTALL)
        assert len(selects) == 4
        assert len({re.sub(r'"q[0-9a-f]+[.-]i[0-9a-f]+"', '""', s) for s in selects}) == 1
        assert "correct" not in form.lower() and "0.01" not in form
    assert len(right_positions) > 4  # the right pair of four options lands all over
    assert first_items == {i.html for i in ordering.items}


def test_right_answers_of_every_type_come_back_typed_and_in_the_learners_ids(client):
    answers = right_answers(client)
    response = post(client, answers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["score"], body["total"], body["passed"], body["answers_shown"]) == (
        7, 7, True, True,
    )  # fmt: skip
    results = {r["question_id"]: r for r in body["results"]}
    quiz = client.app.state.course.get(LESSON).quiz
    single, multiple, _, numeric, relative, ordering, predict = quiz.questions
    first = results[single.id]
    assert first["selected"] == first["selected_option_id"] == answers[single.id]
    assert first["correct_answer"] == first["correct_option_id"] == answers[single.id]
    assert first["feedback"] == {answers[single.id]: "Right: 1 / (1 + e^-x) never leaves (0, 1)."}
    chosen = results[multiple.id]
    assert (
        sorted(chosen["selected"])
        == sorted(chosen["correct_answer"])
        == sorted(answers[multiple.id])
    )
    assert chosen["selected_option_id"] is chosen["correct_option_id"] is None
    assert results[numeric.id]["selected"] == 0.5
    assert results[numeric.id]["correct_answer"] == {"value": 0.5, "tolerance": 0.01}
    assert results[relative.id]["correct_answer"] == {"value": 100.0, "tolerance": 5.0}
    assert results[ordering.id]["selected"] == results[ordering.id]["correct_answer"]
    assert results[ordering.id]["correct_answer"] == answers[ordering.id]
    assert all(r["run"] is None for qid, r in results.items() if qid != predict.id)
    assert results[predict.id]["run"]["status"] == "completed"


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, ["x"], "(single choice) must be an option id"),
        (1, "o1", "(multiple select) must be a list of option ids"),
        (3, [0.5], "(numeric) must be a number or a numeric string"),
        (3, True, "(numeric) must be a number or a numeric string"),
        (5, "i1", "(ordering) must be the list of every item id"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_422_naming_its_question(client, index, value, message):
    question = client.app.state.course.get(LESSON).quiz.questions[index]
    response = post(client, {question.id: value})
    assert response.status_code == 422
    assert f"question '{question.id}' {message}" in response.json()["detail"]


def test_a_numeric_answer_that_is_not_a_number_is_wrong_and_says_so(client):
    question = client.app.state.course.get(LESSON).quiz.questions[3]
    result = post(client, {question.id: "half"}).json()["results"][3]
    assert (result["correct"], result["selected"], result["note"]) == (
        False,
        "half",
        "not a number",
    )


def test_the_answer_key_a_guest_gets_is_meaningless_to_anyone_else(app):
    with TestClient(app) as snoop:
        key = post(snoop, {}).json()["results"]
        leaked = {r["question_id"]: r["correct_answer"] for r in key}
        assert (
            post(snoop, {k: v for k, v in leaked.items() if not isinstance(v, dict)}).json()[
                "score"
            ]
            == 5
        )  # the key is right for the guest it was shown to (numeric ones left out)
    for question_id, right in leaked.items():
        if isinstance(right, dict):
            continue  # a number is the same for everyone: it is only shown after a submission
        with TestClient(app) as other:
            refused = post(other, {question_id: right})
            assert refused.status_code == 422, question_id
            assert f"for question '{question_id}'" in refused.json()["detail"]
        with TestClient(app) as account:
            headers = learner(account, f"l{question_id[:8]}")
            refused = post(account, {question_id: right}, headers=headers)
            assert refused.status_code == 422
            assert account.get("/api/me/attempts", headers=headers).json()["attempts"] == []


def test_after_pass_hides_answers_until_the_learner_passes_then_keeps_showing_them(client):
    for headers in ({}, learner(client, "ada")):  # a guest (by cookie), then a learner
        failed = post(client, {}, "after-pass", headers).json()
        assert failed["answers_shown"] is False and failed["passed"] is False
        for result in failed["results"]:
            assert result["correct_answer"] is result["correct_option_id"] is None
            assert result["explanation"] is result["feedback"] is None
        assert served(client, "after-pass", headers)["review_answers"] == "after-pass"
        passed = post(client, right_answers(client, "after-pass", headers), "after-pass", headers)
        assert passed.json()["answers_shown"] is True
        assert passed.json()["results"][0]["explanation"] == "The sigmoid is the logistic function."
        again = post(client, {}, "after-pass", headers).json()
        assert again["answers_shown"] is True and not again["passed"]
        assert again["results"][3]["correct_answer"] == {"value": 0.5, "tolerance": 0.01}


def test_after_pass_for_a_guest_is_kept_by_visitor_cookie_not_shared_with_other_guests(app):
    with TestClient(app) as ada:
        post(ada, right_answers(ada, "after-pass"), "after-pass")
        assert post(ada, {}, "after-pass").json()["answers_shown"] is True
    with TestClient(app) as bob:
        assert post(bob, {}, "after-pass").json()["answers_shown"] is False


def test_never_shows_score_and_right_or_wrong_only_even_after_a_pass(client):
    body = post(client, right_answers(client, "never"), "never").json()
    assert body["passed"] and body["answers_shown"] is False
    assert [r["correct"] for r in body["results"]] == [True] * 7
    for result in body["results"]:
        assert result["correct_answer"] is None and result["explanation"] is None
        assert result["feedback"] is None and result["run"] is None
    page = client.get("/lessons/never").text
    assert "not the right answers" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    review = client.post("/lessons/never/quiz", data={"csrf_token": token}).text
    assert "— right answer" not in review and "Why:" not in review and "real run" not in review
    assert "0 of 7 correct" in review and "not the right answers" in review


def test_max_attempts_for_a_guest_counts_down_then_refuses_with_409(app):
    with TestClient(app) as guest:
        page = guest.get("/lessons/limited").text
        assert "2 of 2 attempts left" in page
        assert served(guest, "limited")["attempts_left"] == 2
        assert post(guest, {}, "limited").json()["attempts_left"] == 1
        assert "1 of 2 attempts left" in guest.get("/lessons/limited").text
        last = post(guest, right_answers(guest, "limited"), "limited").json()
        assert last["attempts_left"] == 0 and last["passed"]
        refused = post(guest, {}, "limited")
        assert refused.status_code == 409
        assert refused.json() == {
            "detail": "this quiz allows 2 attempts and you have made them all"
        }
        page = guest.get("/lessons/limited").text
        assert "You have made all 2 attempts this quiz allows." in page
        assert "Check my answers" not in page
        form = guest.post("/lessons/limited/quiz", data={"csrf_token": csrf(guest)})
        assert form.status_code == 409 and "you have made them all" in form.text
    with TestClient(app) as other:  # another visitor cookie: another guest
        assert post(other, {}, "limited").status_code == 200


def test_max_attempts_for_a_learner_are_their_own_stored_attempts(client):
    ada, bob = learner(client, "ada"), learner(client, "bob")
    for _ in range(2):
        assert post(client, {}, "limited", ada).status_code == 200
    assert post(client, {}, "limited", ada).status_code == 409
    assert served(client, "limited", ada)["attempts_left"] == 0
    assert served(client, "limited", bob)["attempts_left"] == 2
    assert post(client, {}, "limited", bob).status_code == 200
    stored = client.get("/api/me/attempts?lesson_id=limited", headers=ada).json()["attempts"]
    assert len(stored) == 2  # the refused one stored nothing


def test_a_predict_then_run_review_shows_the_real_run_trained_once_and_kept(client, app):
    question = app.state.course.get(LESSON).quiz.questions[6]
    first = post(client, {}).json()["results"][6]["run"]
    expected = train(question.run)
    assert first["status"] == expected["status"] == "completed"
    assert first["test_accuracy"] == expected["test_accuracy"]
    assert first["train_accuracy"] == expected["train_accuracy"]
    assert [(row["epoch"], row["loss"], row["test_accuracy"]) for row in first["history"]] == [
        (row["epoch"], row["loss"], row["test_accuracy"]) for row in expected["history"]
    ]
    kept = list((app.state.settings.data_dir / "cache" / "runs").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["history"] == first["history"]
    stored = json.loads(kept[0].read_text())
    assert stored["parameters"] == expected["parameters"] and stored["verified_at"]
    kept[0].write_text(json.dumps({**stored, "test_accuracy": 0.125}))  # read back, not rerun
    assert post(client, {}).json()["results"][6]["run"]["test_accuracy"] == 0.125
    page = client.get(f"/lessons/{LESSON}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    review = client.post(f"/lessons/{LESSON}/quiz", data={"csrf_token": token}).text
    assert "final test accuracy <strong>12.5%</strong>" in review
    assert review.count('<svg class="chart run-chart"') == 2 and "<script" not in review
    assert "Status: <strong>completed</strong> after 40 epochs" in review
