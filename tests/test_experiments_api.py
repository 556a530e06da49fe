"""Experiment questions through the quiz API and the no-JavaScript form, graded by real runs in
the app's training processes: the goal reached and missed, a 422 per bad field, 429 with
nothing stored when the pool is full, the form keeping answers, and the solution never sent."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.training.figures import FIGURES, measure

from .accounts_util import PASSWORD, bearer, browser_login, csrf, learner, token

FIXTURE = Path(__file__).parent / "fixtures" / "experiments" / "experiment.md"
LESSON = "experiment"
#: Reaches the goal (test accuracy 0.97 with 42 parameters); differs from the solution.
GOOD = {"hidden_layers": [8], "activation": "tanh", "learning_rate": 0.5}
#: Misses it: two ReLU units and a tiny step learn nothing of XOR in 30 epochs.
BAD = {"hidden_layers": [2], "activation": "relu", "learning_rate": 0.01}
#: Long enough to hold the only training process while a submission is turned away.
LONG = {"dataset": "digits", "hidden_layers": [64], "epochs": 1000}


@pytest.fixture
def app(make_app, tmp_path: Path):
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    return make_app(content_dir=folder, train_workers=1, train_queue=0)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def question_ids(client) -> tuple[str, str]:
    experiment, single = client.app.state.course.get(LESSON).quiz.questions
    return experiment.id, single.id


def submit(client, answers: dict, headers: dict | None = None):
    return client.post(
        f"/api/lessons/{LESSON}/quiz/attempts", json={"answers": answers}, headers=headers
    )


def test_the_quiz_json_describes_the_experiment_with_trains_bounds(client):
    qid, _ = question_ids(client)
    body = client.get(f"/api/lessons/{LESSON}/quiz").json()
    question = body["questions"][0]
    assert (question["id"], question["type"], question["options"]) == (qid, "experiment", [])
    experiment = question["experiment"]
    assert experiment["dataset"] == "xor"
    assert experiment["fixed"] == {"epochs": 30, "batch_size": 32, "seed": 3}
    layers, activation, rate = experiment["free"]
    assert layers["name"] == "hidden_layers" and layers["kind"] == "layers"
    assert (layers["min"], layers["max"], layers["max_length"]) == (1, 1024, 8)
    assert activation["kind"] == "choice"
    assert activation["choices"] == ["relu", "sigmoid", "tanh"]
    assert (rate["kind"], rate["min"], rate["min_exclusive"], rate["max"]) == (
        "number", 0, True, 100,
    )  # fmt: skip
    goal = experiment["goal"]
    assert goal["text"] == "test_accuracy >= 0.9 and parameters <= 50"
    assert [t["text"] for t in goal["terms"]] == ["test_accuracy >= 0.9", "parameters <= 50"]
    assert goal["terms"][0] == {
        "metric": "test_accuracy", "op": ">=", "value": 0.9, "accuracy": None,
        "text": "test_accuracy >= 0.9",
    }  # fmt: skip


def test_a_configuration_that_reaches_the_goal_is_right_with_its_run_and_terms(client):
    qid, _ = question_ids(client)
    response = submit(client, {qid: GOOD})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["type"] == "experiment" and result["correct"] is True
    assert result["selected"] == GOOD and result["correct_answer"] is None
    run = result["run"]
    assert run.keys() == {
        "status", "history", "test_accuracy", "train_accuracy", "final_loss", "parameters",
    }  # fmt: skip
    assert (run["status"], run["test_accuracy"], run["parameters"]) == ("completed", 0.97, 42)
    assert len(run["history"]) == 30 and run["final_loss"] == run["history"][-1]["loss"]
    assert result["terms"] == [
        {"term": "test_accuracy >= 0.9", "measured": 0.97, "held": True},
        {"term": "parameters <= 50", "measured": 42, "held": True},
    ]


def test_a_configuration_that_misses_the_goal_is_wrong_and_says_which_term_failed(client):
    qid, _ = question_ids(client)
    result = submit(client, {qid: BAD}).json()["results"][0]
    assert result["correct"] is False
    accuracy, parameters = result["terms"]
    assert accuracy["held"] is False and accuracy["measured"] < 0.9
    assert parameters == {"term": "parameters <= 50", "measured": 12, "held": True}
    assert result["run"]["test_accuracy"] == accuracy["measured"]


def test_figures_are_the_same_on_every_submission_and_as_training_here_measures_them(client):
    qid, _ = question_ids(client)
    first = submit(client, {qid: BAD}).json()["results"][0]["run"]
    again = submit(client, {qid: BAD}).json()["results"][0]["run"]
    assert first == again
    experiment = client.app.state.course.get(LESSON).quiz.questions[0].experiment
    here = measure(experiment.merged(BAD))
    assert {k: here[k] for k in FIGURES} == first


@pytest.mark.parametrize(
    ("answer", "field", "message"),
    [
        ({**GOOD, "seed": 4}, "seed", "is not one the learner chooses"),
        ({**GOOD, "epochs": 5}, "epochs", "is not one the learner chooses"),
        ({"hidden_layers": [8], "activation": "tanh"}, "learning_rate", "has no value"),
        ({**GOOD, "learning_rate": 0}, "learning_rate", "greater than 0"),
        ({**GOOD, "learning_rate": 101}, "learning_rate", "less than or equal to 100"),
        ({**GOOD, "learning_rate": "fast"}, "learning_rate", "valid number"),
        ({**GOOD, "activation": "gelu"}, "activation", "'relu', 'sigmoid' or 'tanh'"),
        ({**GOOD, "hidden_layers": [0]}, "hidden_layers", "greater than or equal to 1"),
        ({**GOOD, "hidden_layers": [2000]}, "hidden_layers", "less than or equal to 1024"),
        ({**GOOD, "hidden_layers": [4] * 9}, "hidden_layers", "at most 8 items"),
        ({**GOOD, "hidden_layers": []}, "hidden_layers", "at least 1 item"),
        ({**GOOD, "hidden_layers": [1024] * 8}, "question", "too much work"),
    ],
)
def test_a_bad_field_is_a_422_naming_the_question_and_the_field(client, answer, field, message):
    qid, _ = question_ids(client)
    response = submit(client, {qid: answer})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"question {qid!r}" in detail and message in detail
    if field != "question":
        assert f"field {field!r}" in detail


def test_an_answer_that_is_not_an_object_is_a_422(client):
    qid, _ = question_ids(client)
    for answer in ([8], "relu", 3):
        detail = submit(client, {qid: answer}).json()["detail"]
        assert f"question {qid!r} (experiment) must be an object" in detail


def occupy(client) -> object:
    """Start a long run on the app's only training process; returns its future (cancel it)."""
    backend = client.app.state.training

    async def hold():
        await backend.run(LONG)

    future = client.portal.start_task_soon(hold)
    deadline = time.monotonic() + 60
    while client.portal.call(backend.has_room):
        assert time.monotonic() < deadline, "the long run never started"
        time.sleep(0.05)
    return future


def release(client, future) -> None:
    future.cancel()
    deadline = time.monotonic() + 60
    while not client.portal.call(client.app.state.training.has_room):
        assert time.monotonic() < deadline
        client.portal.call(asyncio.sleep, 0.05)


def attempts_of(client, headers) -> list:
    return client.get("/api/me/attempts", headers=headers).json()["attempts"]


def test_a_full_pool_turns_the_whole_submission_away_with_429_and_stores_nothing(client):
    qid, single = question_ids(client)
    ada = learner(client, "ada")
    future = occupy(client)
    try:
        refused = submit(client, {qid: GOOD, single: None}, headers=ada)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert "busy" in refused.json()["detail"]
    finally:
        release(client, future)
    assert attempts_of(client, ada) == []
    assert submit(client, {qid: GOOD}, headers=ada).status_code == 200
    assert len(attempts_of(client, ada)) == 1


def form_fields(client, path: str = f"/lessons/{LESSON}") -> dict:
    return {"csrf_token": csrf(client, path)}


def option_id(client, page: str, text: str) -> str:
    return re.search(rf'value="(o[0-9a-f]+x*)">\s*<span>{text}</span>', page).group(1)


def test_the_form_has_a_labelled_input_per_free_field_within_trains_bounds(client):
    qid, _ = question_ids(client)
    page = client.get(f"/lessons/{LESSON}").text
    for name in ("hidden_layers", "activation", "learning_rate"):
        assert f'<label for="{qid}-{name}">' in page
        assert f'id="{qid}-{name}" name="{qid}.{name}"' in page
    assert re.search(rf'<select id="{qid}-activation"[^>]*>\s*<option value="">Choose…', page)
    assert '<option value="tanh">tanh</option>' in page
    rate = re.search(rf'<input type="number" id="{qid}-learning_rate"[^>]*>', page).group(0)
    assert 'max="100"' in rate and "min=" not in rate  # the bound 0 itself is not allowed
    assert "Units per hidden layer, separated by commas" in page
    assert "test_accuracy &gt;= 0.9 and parameters &lt;= 50" in page


def test_the_form_grades_by_a_real_run_and_the_review_shows_curves_terms_and_playground(client):
    qid, single = question_ids(client)
    fields = {
        **form_fields(client),
        f"{qid}.hidden_layers": " 8 ",
        f"{qid}.activation": "tanh",
        f"{qid}.learning_rate": "0.5",
    }
    page = client.post(f"/lessons/{LESSON}/quiz", data=fields)
    assert page.status_code == 200, page.text
    html = page.text
    assert "Your experiment" in html and "Correct" in html
    assert "<code>test_accuracy 0.97 &gt;= 0.9</code> — holds" in html
    assert "<code>parameters 42 &lt;= 50</code> — holds" in html
    assert html.count("<svg") >= 2 and 'id="loss-' + qid in html
    link = re.search(r'href="(/playground\?[^"]+)">Try it in the playground', html).group(1)
    assert "dataset=xor" in link and "hidden_layers=8" in link and "activation=tanh" in link
    assert "learning_rate=0.5" in link and "epochs=30" in link and "seed=3" in link
    assert client.get(link.replace("&amp;", "&")).status_code == 200


@pytest.mark.parametrize(
    ("layers", "status", "message"),
    [("8,,8", 422, "whole numbers separated by commas"), ("2000", 422, "less than or equal")],
)
def test_a_bad_field_in_the_form_comes_back_with_every_answer_filled_in(
    client, layers, status, message
):
    qid, single = question_ids(client)
    page = client.get(f"/lessons/{LESSON}").text
    sigmoid = option_id(client, page, "Sigmoid")
    fields = {
        **form_fields(client),
        f"{qid}.hidden_layers": layers,
        f"{qid}.activation": "sigmoid",
        f"{qid}.learning_rate": "0.25",
        single: sigmoid,
    }
    response = client.post(f"/lessons/{LESSON}/quiz", data=fields)
    assert response.status_code == status
    html = response.text
    assert message in html and "Nothing was stored" in html
    assert f'name="{qid}.hidden_layers" value="{layers}"' in html
    assert '<option value="sigmoid" selected>sigmoid</option>' in html
    assert f'name="{qid}.learning_rate" value="0.25"' in html
    assert f'value="{sigmoid}" checked>' in html


def test_a_full_pool_brings_the_form_back_with_429_and_every_answer_filled_in(client):
    qid, single = question_ids(client)
    page = client.get(f"/lessons/{LESSON}").text
    sigmoid = option_id(client, page, "Sigmoid")
    fields = {
        **form_fields(client),
        f"{qid}.hidden_layers": "8, 8",
        f"{qid}.activation": "relu",
        f"{qid}.learning_rate": "0.3",
        single: sigmoid,
    }
    future = occupy(client)
    try:
        response = client.post(f"/lessons/{LESSON}/quiz", data=fields)
    finally:
        release(client, future)
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    html = response.text
    assert "every training process is busy" in html and "Nothing was stored" in html
    assert f'name="{qid}.hidden_layers" value="8, 8"' in html
    assert '<option value="relu" selected>relu</option>' in html
    assert f'name="{qid}.learning_rate" value="0.3"' in html
    assert f'value="{sigmoid}" checked>' in html
    # the form as it came back submits as it is
    again = dict(fields, csrf_token=re.search(r'name="csrf_token" value="([^"]+)"', html)[1])
    assert client.post(f"/lessons/{LESSON}/quiz", data=again).status_code == 200


def test_the_attempt_stores_configuration_and_figures_and_me_shows_them(client):
    qid, _ = question_ids(client)
    register = {"username": "ada", "password": PASSWORD}
    client.post("/api/auth/register", json=register)
    ada = bearer(token(client, "ada"))
    assert submit(client, {qid: GOOD}, headers=ada).status_code == 200
    (attempt,) = attempts_of(client, ada)
    stored = next(a for a in attempt["answers"] if a["question_id"] == qid)
    assert stored["type"] == "experiment" and stored["correct"] is True
    assert stored["answer"]["config"] == GOOD
    assert stored["answer"]["run"]["test_accuracy"] == 0.97
    assert len(stored["answer"]["run"]["history"]) == 30
    assert [t["held"] for t in stored["answer"]["terms"]] == [True, True]
    assert stored["correct_answer"] == {"goal": "test_accuracy >= 0.9 and parameters <= 50"}
    browser_login(client, "ada")
    me = client.get("/me").text
    assert "Experiment" in me and "<code>hidden_layers: 8</code>" in me
    assert "test accuracy 97.0%, 42 parameters" in me and "held" in me


def test_the_solution_never_leaves_the_server(client):
    """Every page and JSON body a learner or instructor can get is searched for its values."""
    qid, single = question_ids(client)
    ada = learner(client, "ada")
    from app.accounts import service

    with client.app.state.db.session() as session:
        service.create_user(session, username="prof", password=PASSWORD, role="instructor")
    prof = bearer(token(client, "prof"))
    bodies = [
        client.get(f"/api/lessons/{LESSON}/quiz").text,
        client.get(f"/api/lessons/{LESSON}").text,
        client.get(f"/lessons/{LESSON}").text,
        submit(client, {qid: GOOD}, headers=ada).text,
        submit(client, {qid: BAD}).text,
        submit(client, {qid: {**GOOD, "seed": 1}}).text,
        client.get("/api/me/attempts", headers=ada).text,
        client.get(f"/api/lessons/{LESSON}/stats", headers=prof).text,
        client.get("/openapi.json").text,
    ]
    fields = {**form_fields(client), f"{qid}.hidden_layers": "8", f"{qid}.activation": "tanh"}
    bodies.append(client.post(f"/lessons/{LESSON}/quiz", data=fields).text)  # 422: rate missing
    fields[f"{qid}.learning_rate"] = "0.5"
    bodies.append(client.post(f"/lessons/{LESSON}/quiz", data=fields).text)
    browser_login(client, "ada")
    bodies.append(client.get("/me").text)
    browser_login(client, "prof")
    bodies.append(client.get("/instructor").text)
    assert len(bodies) == 13 and all(bodies)
    for body in bodies:
        assert not re.search(r"learning_rate\W+0\.4321", body) and "0.4321" not in body
        assert '"solution"' not in body and "solution:" not in body  # no key of that name
        assert not re.search(r"hidden_layers\W+9\b", body)


def test_instructor_statistics_show_who_reached_the_goal_medians_and_common_configurations(
    client,
):
    from app.accounts import service

    qid, _ = question_ids(client)
    ada, bob, cy = (learner(client, name) for name in ("ada", "bob", "cyd"))
    for headers, answer in ((ada, BAD), (ada, GOOD), (bob, BAD), (cy, GOOD), (cy, GOOD)):
        assert submit(client, {qid: answer}, headers=headers).status_code == 200
    with client.app.state.db.session() as session:
        service.create_user(session, username="prof", password=PASSWORD, role="instructor")
    prof = bearer(token(client, "prof"))
    stats = client.get(f"/api/lessons/{LESSON}/stats", headers=prof).json()
    experiment = stats["questions"][0]["experiment"]
    assert stats["questions"][1]["experiment"] is None
    assert experiment["goal"] == "test_accuracy >= 0.9 and parameters <= 50"
    # ada reached it on her second attempt, cy on both, bob never
    assert (experiment["learners"], experiment["learners_reached"]) == (3, 2)
    assert experiment["reached_share"] == round(2 / 3, 4)
    bad = submit(client, {qid: BAD}).json()["results"][0]["run"]["test_accuracy"]
    accuracy, parameters = experiment["terms"]
    # five runs: 0.97 three times, `bad` twice; the median is the middle one
    assert accuracy == {"term": "test_accuracy >= 0.9", "median": 0.97, "runs": 5}
    assert parameters == {"term": "parameters <= 50", "median": 42, "runs": 5}
    assert experiment["common_configs"] == [
        {"config": GOOD, "count": 3, "reached": 3},
        {"config": BAD, "count": 2, "reached": 0},
    ]
    assert bad < 0.9
    browser_login(client, "prof")
    page = client.get("/instructor").text
    assert "67%</strong> of 3 learners reached it" in page
    assert "<code>test_accuracy &gt;= 0.9</code></td><td>0.97</td><td>5</td>" in page
    assert "<code>hidden_layers: 8</code>" in page and "3 of 3" in page and "0 of 2" in page


NULLABLE = """---
id: batches
title: Batches
section: testing
duration: 5 mins
order: 2
---

## Knowledge Check

1. Choose the batch size.
   ```experiment
   dataset: xor
   fixed: {hidden_layers: [8], epochs: 10, seed: 3, activation: tanh}
   free: [batch_size, learning_rate]
   goal: parameters <= 50
   solution: {batch_size: 32, learning_rate: 0.5}
   ```
"""


def test_full_batch_is_a_choice_the_form_writes_as_full_and_the_api_as_null(make_app, tmp_path):
    folder = tmp_path / "nullable"
    folder.mkdir()
    (folder / "batches.md").write_text(NULLABLE, encoding="utf-8")
    with TestClient(make_app(content_dir=folder, train_workers=1)) as client:
        (question,) = client.app.state.course.get("batches").quiz.questions
        qid = question.id
        free = client.get("/api/lessons/batches/quiz").json()["questions"][0]["experiment"]["free"]
        assert free[0]["name"] == "batch_size" and free[0]["nullable"] is True
        page = client.get("/lessons/batches").text
        assert "or <code>full</code> (the whole training set at once)" in page
        fields = {
            "csrf_token": csrf(client, "/lessons/batches"),
            f"{qid}.batch_size": "Full",
            f"{qid}.learning_rate": "0.5",
        }
        review = client.post("/lessons/batches/quiz", data=fields)
        assert review.status_code == 200 and "Correct" in review.text
        assert "batch_size=full" in review.text
        body = client.post(
            "/api/lessons/batches/quiz/attempts",
            json={"answers": {qid: {"batch_size": None, "learning_rate": 0.5}}},
        ).json()
        assert body["results"][0]["selected"] == {"batch_size": None, "learning_rate": 0.5}
        assert body["results"][0]["correct"] is True


def test_statistics_read_experiments_configurations_not_their_stored_runs(client):
    """A stored experiment answer carries its run's whole history (about 90 KB at 1,000
    epochs); an instructor's page over many attempts must not load every one of them."""
    import copy
    import tracemalloc

    from app.accounts.stats import lesson_stats
    from app.models import AttemptAnswer, QuizAttempt

    qid, _ = question_ids(client)
    headers = learner(client, "ada")
    assert submit(client, {qid: GOOD}, headers=headers).status_code == 200
    db = client.app.state.db
    with db.session() as session:
        stored = session.query(AttemptAnswer).filter_by(question_id=qid).one()
        attempt = stored.attempt
        row = stored.answer["run"]["history"][-1]
        for n in range(60):  # sixty attempts of 1,000-epoch runs, each its own configuration
            answer = copy.deepcopy(stored.answer)
            answer["config"]["learning_rate"] = 0.5 + n / 1000
            answer["run"]["history"] = [{**row, "epoch": e + 1} for e in range(1000)]
            copy_of = QuizAttempt(
                user_id=attempt.user_id, lesson_id=LESSON, round=1, score=1, total=2,
                percent=50.0, passed=False,
            )  # fmt: skip
            copy_of.answers.append(
                AttemptAnswer(
                    position=0,
                    question_id=qid,
                    type="experiment",
                    answer=answer,
                    correct_answer=stored.correct_answer,
                    correct=True,
                )  # fmt: skip
            )
            session.add(copy_of)
        session.commit()
    lesson = client.app.state.course.get(LESSON)
    with db.session() as session:
        tracemalloc.start()
        try:
            stats = lesson_stats(session, lesson=lesson)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    experiment = stats["questions"][0]["experiment"]
    assert experiment["terms"][0]["runs"] == 61 and len(experiment["common_configs"]) == 5
    assert peak < 1_500_000, f"{peak:,} bytes at the peak (the runs hold about 5 MB)"
