"""Attempts store each answer as typed JSON: what is written, what /api/me and /me show, the
migration from single-choice rows (and back), and attempt limits under concurrency."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.accounts.progress import AttemptsUsed, record_attempt, record_guest_attempt
from app.content import load_course
from app.db import Database, downgrade, make_engine, upgrade
from app.quizzes.grading import grade

from .accounts_util import all_attempts, browser_login, learner, register
from .question_types_util import EVERY_TYPE, right_answers, variant

LESSON = "every-type"


@pytest.fixture
def client(make_app, tmp_path: Path) -> Iterator[TestClient]:
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(EVERY_TYPE, folder / EVERY_TYPE.name)
    variant(folder, "never", "reviewAnswers: never\n", keep_run=False)
    variant(folder, "after-pass", "reviewAnswers: after-pass\n", keep_run=False)
    with TestClient(make_app(content_dir=folder, train_workers=1)) as test_client:
        yield test_client


def mixed_answers(client, headers: dict) -> dict:
    """Right choices and order, one question unanswered, a wrong number and a non-number."""
    answers = right_answers(client, LESSON, headers)
    quiz = client.app.state.course.get(LESSON).quiz
    answers[quiz.questions[3].id] = " 0.6 "
    answers[quiz.questions[4].id] = "lots"
    del answers[quiz.questions[2].id]  # unanswered
    return answers


def rows(client, sql: str) -> list[tuple]:
    with client.app.state.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_every_type_of_answer_is_stored_as_typed_json_in_the_contents_ids(client):
    headers = learner(client, "ada")
    body = client.post(
        f"/api/lessons/{LESSON}/quiz/attempts",
        json={"answers": mixed_answers(client, headers)},
        headers=headers,
    ).json()
    quiz = client.app.state.course.get(LESSON).quiz
    single, multiple, select_all, numeric, relative, ordering, predict = quiz.questions
    with client.app.state.db.session() as session:
        from app.models import AttemptAnswer

        stored = session.scalars(
            sa.select(AttemptAnswer)
            .where(AttemptAnswer.attempt_id == body["attempt_id"])
            .order_by(AttemptAnswer.position)
        ).all()
        got = [
            (a.type, a.answer, a.correct_answer, a.selected_option_id, a.correct_option_id)
            for a in stored
        ]
    assert got == [
        ("single", single.options[1].id, single.options[1].id, single.options[1].id,
         single.options[1].id),
        ("multiple", [o.id for o in multiple.correct_options],
         [o.id for o in multiple.correct_options], None, None),
        ("multiple", None, [select_all.options[0].id], None, None),
        ("numeric", {"text": " 0.6 ", "value": 0.6}, {"value": 0.5, "tolerance": 0.01}, None,
         None),
        ("numeric", {"text": "lots", "value": None}, {"value": 100.0, "tolerance": 5.0}, None,
         None),
        ("ordering", [i.id for i in ordering.items], [i.id for i in ordering.items], None, None),
        ("single", predict.options[0].id, predict.options[0].id, predict.options[0].id,
         predict.options[0].id),
    ]  # fmt: skip
    assert [a.correct for a in stored] == [True, True, False, False, False, True, True]


def test_my_attempts_and_my_export_show_each_type_and_hide_what_the_lesson_does_not_show(client):
    headers = learner(client, "ada")
    for lesson_id in (LESSON, "never", "after-pass"):
        client.post(
            f"/api/lessons/{lesson_id}/quiz/attempts", json={"answers": {}}, headers=headers
        )
    listed = {a["lesson_id"]: a for a in all_attempts(client, headers)}
    export = {a["lesson_id"]: a for a in client.get("/api/me/export", headers=headers).json()[
        "attempts"
    ]}  # fmt: skip
    for attempts in (listed, export):
        shown = attempts[LESSON]["answers"]
        assert [a["type"] for a in shown] == [
            "single", "multiple", "multiple", "numeric", "numeric", "ordering", "single",
        ]  # fmt: skip
        assert shown[3]["correct_answer"] == {"value": 0.5, "tolerance": 0.01}
        assert shown[0]["correct_option_id"] == shown[0]["correct_answer"]
        for lesson_id in ("never", "after-pass"):  # not passed: after-pass hides them too
            hidden = attempts[lesson_id]["answers"]
            assert all(a["correct_answer"] is a["correct_option_id"] is None for a in hidden)
            assert all(a["answer"] is None for a in hidden)
    passed = right_answers(client, "after-pass", headers)
    client.post("/api/lessons/after-pass/quiz/attempts", json={"answers": passed}, headers=headers)
    export = client.get("/api/me/export", headers=headers).json()["attempts"]
    after_pass = [a for a in export if a["lesson_id"] == "after-pass"]
    assert len(after_pass) == 2 and all(a["answers"][0]["correct_answer"] for a in after_pass)
    never = next(a for a in export if a["lesson_id"] == "never")
    assert never["answers"][3]["correct_answer"] is None  # never shown, passed or not


def test_the_me_page_history_lists_each_answer_with_its_type(client):
    register(client, "ada")
    browser_login(client, "ada")
    answers = mixed_answers(client, {})
    client.post(
        f"/api/lessons/{LESSON}/quiz/attempts",
        json={"answers": answers},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    page = client.get("/me").text
    history = page.split('id="history-title"', 1)[1]
    assert "7 answers" in history
    assert "Single choice</span>: Sigmoid — right" in history
    assert "Multiple select</span>: ReLU, tanh — right" in history
    assert "Multiple select</span>: — — not answered" in history
    assert "Number</span>: <code> 0.6 </code> — wrong" in history
    assert "Number</span>: <code>lots</code> — wrong" in history
    assert (
        "Order</span>: Forward pass → Compute the loss → Backward pass → Update the weights — right"
        in history
    )


def csrf_of(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


# the migration ------------------------------------------------------------------------------


def test_attempts_stored_before_question_types_read_and_export_after_the_upgrade(
    make_app, database_url
):
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, username_key, password_hash, role, "
                    "created_at) VALUES (1, 'old', 'old', 'x', 'learner', '2026-01-01 00:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO quiz_attempts (id, user_id, lesson_id, round, score, total, "
                    "percent, passed, created_at) VALUES (1, 1, 'dl-intro-neural-networks', 0, "
                    "1, 2, 50.0, false, '2026-01-01 00:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO attempt_answers (attempt_id, position, question_id, "
                    "selected_option_id, correct_option_id, correct) VALUES "
                    "(1, 0, 'qa', 'oa1', 'oa1', true), (1, 1, 'qb', NULL, 'ob0', false)"
                )
            )
        upgrade(engine)
    finally:
        engine.dispose()
    app = make_app()
    with app.state.db.session() as session:
        from app.accounts import service

        exported = service.export_user(session, user_id=1)["attempts"][0]["answers"]
    assert exported == [
        {"question_id": "qa", "type": "single", "answer": "oa1", "correct_answer": "oa1",
         "selected_option_id": "oa1", "correct_option_id": "oa1", "correct": True},
        {"question_id": "qb", "type": "single", "answer": None, "correct_answer": "ob0",
         "selected_option_id": None, "correct_option_id": "ob0", "correct": False},
    ]  # fmt: skip


def test_downgrading_keeps_every_answer_row_and_upgrading_again_reads_them(database_url):
    quiz = load_course(EVERY_TYPE.parent).get(LESSON).quiz
    db = Database.open(database_url)
    try:
        upgrade(db.engine)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, username_key, password_hash, role, "
                    "created_at) VALUES (1, 'a', 'a', 'x', 'learner', '2026-01-01 00:00:00')"
                )
            )
        numeric = quiz.questions[3]
        result = grade(quiz, {numeric.id: "0.5"}, lesson_id=LESSON, pass_percent=50)
        with db.session() as session:
            record_attempt(session, user_id=1, grade=result)
        downgrade(db.engine, "0002")
        with db.engine.connect() as conn:
            old = conn.execute(
                sa.text("SELECT question_id, selected_option_id, correct_option_id, correct "
                        "FROM attempt_answers ORDER BY position")
            ).all()  # fmt: skip
        assert len(old) == 7
        assert tuple(old[3]) == (numeric.id, None, "", True)
        assert tuple(old[0])[2] == quiz.questions[0].options[1].id  # single choice kept whole
        upgrade(db.engine)
        with db.engine.connect() as conn:
            again = conn.execute(
                sa.text("SELECT type, correct FROM attempt_answers ORDER BY position")
            ).all()
        assert [tuple(r) for r in again][3] == ("single", True)  # typed data went with 0003
    finally:
        db.close()


# attempt limits under concurrency -----------------------------------------------------------


def test_concurrent_last_attempts_of_a_guest_or_a_learner_let_exactly_the_limit_in(database_url):
    quiz = load_course(EVERY_TYPE.parent).get(LESSON).quiz
    result = grade(quiz, {}, lesson_id=LESSON, pass_percent=50)
    db = Database.open(database_url)
    try:
        upgrade(db.engine)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, username_key, password_hash, role, "
                    "created_at) VALUES (1, 'a', 'a', 'x', 'learner', '2026-01-01 00:00:00')"
                )
            )
        for write in (
            lambda s: record_guest_attempt(
                s, visitor="v" * 32, lesson_id=LESSON, passed=False, max_attempts=3
            ),
            lambda s: record_attempt(s, user_id=1, grade=result, max_attempts=3),
        ):
            assert sorted(race(db, write, 8)) == ["refused"] * 5 + ["stored"] * 3
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT attempts FROM guest_attempts")).scalar() == 3
            assert conn.execute(sa.text("SELECT count(*) FROM quiz_attempts")).scalar() == 3
    finally:
        db.close()


def race(db: Database, write, count: int) -> list[str]:
    """Run `write(session)` in `count` threads at once: each one's "stored" or "refused"."""
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        with db.session() as session:
            try:
                write(session)
                outcome = "stored"
            except AttemptsUsed:
                outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes
