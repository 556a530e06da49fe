"""Storing quiz attempts (record_attempt) on a real database file or PostgreSQL schema: rows and
progress add up, concurrent writers lose no increment, a kill -9 loses no acknowledged attempt,
and a database failure is a 503 that stored nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.accounts.progress import NoSuchUser, record_attempt
from app.content import Option, Question
from app.db import Database, upgrade
from app.quizzes.grading import Grade, QuestionResult
from app.quizzes.routes import NOT_STORED

from .accounts_util import SEED, answers, browser_login, csrf, ids_of, learner, register
from .live import ROOT

LESSONS = ("lesson-a", "lesson-b")


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database.open(database_url)
    upgrade(database.engine)
    yield database
    database.close()


def add_users(db: Database, *names: str) -> list[int]:
    with db.engine.begin() as conn:
        return [
            conn.execute(
                sa.text(
                    "INSERT INTO users (username, username_key, password_hash, role, created_at) "
                    "VALUES (:n, :n, 'x', 'learner', '2026-01-01 00:00:00') RETURNING id"
                ),
                {"n": name},
            ).scalar_one()
            for name in names
        ]


def grade(lesson_id: str, score: int, *, seed: int = 0, total: int = 5) -> Grade:
    """A graded five-question attempt with `score` right; some questions left unanswered."""
    results = []
    for k in range(total):
        options = tuple(Option(f"{lesson_id}-q{k}-o{n}", f"option {n}", n == 0) for n in range(4))
        question = Question(f"{lesson_id}-q{k}", f"question {k}", options, None, line=k + 1)
        chosen = (
            options[0].id if k < score
            else None if (seed + k) % 3 == 0 else options[1 + (seed + k) % 3].id
        )  # fmt: skip
        results.append(QuestionResult(question, chosen, k < score))
    percent = round(100 * score / total, 1)
    return Grade(lesson_id, score, total, percent, score * 100 >= 80 * total, 80, tuple(results))


def store(db: Database, user_id: int, result: Grade) -> int:
    with db.session() as session:
        return record_attempt(session, user_id=user_id, grade=result)


def rows(db: Database, sql: str, **params) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def progress_of(db: Database, user_id: int, lesson_id: str) -> tuple | None:
    """(status, attempts, best_percent, started_at, updated_at, completed_at), or None."""
    found = rows(
        db,
        "SELECT status, attempts, best_percent, started_at, updated_at, completed_at "
        "FROM lesson_progress WHERE user_id = :u AND lesson_id = :l",
        u=user_id,
        l=lesson_id,
    )
    return found[0] if found else None


def test_an_attempt_is_stored_with_every_answer_in_order_under_the_id_returned(db):
    [me] = add_users(db, "me")
    result = grade("lesson-a", 2, seed=1)
    attempt_id = store(db, me, result)
    assert rows(
        db,
        "SELECT user_id, lesson_id, round, score, total, percent, passed FROM quiz_attempts "
        "WHERE id = :a",
        a=attempt_id,
    ) == [(me, "lesson-a", 0, 2, 5, 40.0, False)]
    stored = rows(
        db,
        "SELECT position, question_id, selected_option_id, correct_option_id, correct "
        "FROM attempt_answers WHERE attempt_id = :a ORDER BY position",
        a=attempt_id,
    )
    assert stored == [
        (i, r.question_id, r.selected_option_id, r.correct_option_id, r.correct)
        for i, r in enumerate(result.results)
    ]
    assert None in [r[2] for r in stored]  # an unanswered question is kept as such


def test_progress_counts_attempts_keeps_the_best_score_and_completes_on_the_first_pass(db):
    a, b = add_users(db, "a", "b")
    scores = {(a, "lesson-a"): [1, 4, 2, 5, 3], (a, "lesson-b"): [0, 2], (b, "lesson-a"): [5, 0]}
    made: dict[tuple[int, str], list[int]] = {key: [] for key in scores}
    for step in range(5):  # interleaved: learners and lessons do not share a row
        for (user_id, lesson), marks in scores.items():
            if step < len(marks):
                made[(user_id, lesson)].append(store(db, user_id, grade(lesson, marks[step])))
    for (user_id, lesson), marks in scores.items():
        status, attempts, best, started, updated, completed = progress_of(db, user_id, lesson)
        times = rows(
            db,
            "SELECT id, round, created_at, passed FROM quiz_attempts "
            "WHERE user_id = :u AND lesson_id = :l ORDER BY id",
            u=user_id,
            l=lesson,
        )
        assert [t[0] for t in times] == made[(user_id, lesson)] == sorted(made[(user_id, lesson)])
        assert [t[1] for t in times] == list(range(len(marks)))  # round: attempts before it
        assert attempts == len(marks)
        assert best == max(grade(lesson, m).percent for m in marks)
        passes = [t[2] for t in times if t[3]]
        assert status == ("completed" if passes else "in_progress")
        assert completed == (passes[0] if passes else None)  # completed by the first pass
        assert started == times[0][2] and updated == times[-1][2]


def test_a_deleted_learner_s_attempt_is_refused_and_stores_nothing(db):
    [gone] = add_users(db, "gone")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": gone})
    with pytest.raises(NoSuchUser):
        store(db, gone, grade("lesson-a", 5))
    assert rows(db, "SELECT count(*) FROM quiz_attempts") == [(0,)]
    assert progress_of(db, gone, "lesson-a") is None


def test_a_failed_attempt_rolls_back_everything_and_the_next_one_is_stored(db):
    [me] = add_users(db, "me")
    first = store(db, me, grade("lesson-a", 1))
    before = progress_of(db, me, "lesson-a")
    twice = grade("lesson-a", 5).results[0]
    broken = Grade("lesson-a", 2, 2, 100.0, True, 80, (twice, twice))  # one question twice
    with db.session() as session, pytest.raises(sa.exc.IntegrityError):
        record_attempt(session, user_id=me, grade=broken)
    # neither the attempt row (inserted before its answers) nor the progress update remain
    assert rows(db, "SELECT id FROM quiz_attempts") == [(first,)]
    assert progress_of(db, me, "lesson-a") == before
    assert store(db, me, grade("lesson-a", 5)) > first
    assert progress_of(db, me, "lesson-a")[:2] == ("completed", 2)


@pytest.mark.parametrize("handles", ["one database", "a database per thread"])
def test_concurrent_writers_share_no_id_and_lose_no_increment(db, database_url, handles):
    """Threads sharing the app's Database meet at its write lock; threads with a Database each
    (as separate worker processes would) meet at SQLite's lock or PostgreSQL's row locks. Each
    read of a progress row is followed by a pause, as on a slow server: any writer that could
    read the row another is about to update would then lose that increment."""
    users = add_users(db, "a", "b", "c")
    per_thread, threads_count = 30, 4
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def slow_progress_reads(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM lesson_progress" in statement:
            time.sleep(0.002)

    def work(k: int) -> None:
        own = db if handles == "one database" else Database.open(database_url)
        if own is not db or k == 0:
            sa.event.listen(own.engine, "after_cursor_execute", slow_progress_reads)
        try:
            for i in range(per_thread):
                # the threads go through the same rows in the same order: one row at once
                lesson = LESSONS[(i // 3) % 2]
                attempt_id = store(own, users[i % 3], grade(lesson, (k + i) % 6))
                with lock:
                    ids.append(attempt_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            if own is not db:
                own.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if sa.event.contains(db.engine, "after_cursor_execute", slow_progress_reads):
        sa.event.remove(db.engine, "after_cursor_execute", slow_progress_reads)
    assert errors == []
    assert len(ids) == len(set(ids)) == per_thread * threads_count
    assert sorted(ids) == [r[0] for r in rows(db, "SELECT id FROM quiz_attempts ORDER BY id")]
    stored = rows(
        db,
        "SELECT user_id, lesson_id, count(*), min(round), max(round), count(DISTINCT round) "
        "FROM quiz_attempts GROUP BY user_id, lesson_id",
    )
    assert sum(r[2] for r in stored) == len(ids)
    for user_id, lesson, count, low, high, distinct in stored:
        assert progress_of(db, user_id, lesson)[1] == count  # no increment lost
        assert (low, high, distinct) == (0, count - 1, count)  # each round handed out once
    assert rows(db, "SELECT count(*) FROM attempt_answers") == [(5 * len(ids),)]


WRITER = """
import sys
from app.accounts.progress import record_attempt
from app.db import Database
from app.content import Option, Question
from app.quizzes.grading import Grade, QuestionResult

url, user_id, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
options = lambda k: (Option(f"q{k}-o0", "a", True), Option(f"q{k}-o1", "b", False))
questions = [Question(f"q{k}", "?", options(k), None, line=k) for k in range(5)]
results = tuple(QuestionResult(q, q.options[0].id, True) for q in questions)
db = Database.open(url)
for _ in range(count):
    with db.session() as session:
        attempt_id = record_attempt(session, user_id=user_id, grade=Grade(
            "lesson-a", 5, 5, 100.0, True, 80, results))
    print(attempt_id, flush=True)  # acknowledged only once committed
db.close()
"""


def writer(database_url: str, user_id: int, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, database_url, str(user_id), str(count)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_writer_killed_mid_burst_loses_no_acknowledged_attempt_and_blocks_no_one(
    db, database_url
):
    [me] = add_users(db, "me")
    acknowledged: list[int] = []
    deadline = time.monotonic() + 60
    # the survivor writes to the same progress row all the while
    with writer(database_url, me, 100_000) as victim, writer(database_url, me, 150) as survivor:
        try:
            while len(acknowledged) < 40 and time.monotonic() < deadline:
                line = victim.stdout.readline()
                if not line:
                    break
                acknowledged.append(int(line))
        finally:
            os.kill(victim.pid, signal.SIGKILL)  # mid-burst: likely inside a transaction
            victim.wait(30)
        acknowledged += [int(line) for line in victim.stdout.read().split()]
        victim_err = victim.stderr.read()
        out, err = survivor.communicate(timeout=120)
    assert len(acknowledged) >= 40, victim_err
    assert survivor.returncode == 0, err
    survived = [int(line) for line in out.split()]
    assert len(survived) == 150

    if database_url.startswith("sqlite"):
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    stored = rows(db, "SELECT id, round FROM quiz_attempts ORDER BY id")
    assert set(acknowledged) | set(survived) <= {r[0] for r in stored}
    answered = rows(db, "SELECT attempt_id, count(*) FROM attempt_answers GROUP BY attempt_id")
    assert all(count == 5 for _, count in answered) and len(answered) == len(stored)
    assert progress_of(db, me, "lesson-a")[1] == len(stored)  # the killed transaction: all or none
    assert sorted(r[1] for r in stored) == list(range(len(stored)))
    # no lock or lock-out left behind: the next attempt is stored at once
    started = time.monotonic()
    assert store(db, me, grade("lesson-a", 1)) > max(r[0] for r in stored)
    assert time.monotonic() - started < 5


def test_a_database_failure_is_a_503_that_says_the_attempt_was_not_stored(make_app):
    with TestClient(make_app()) as client:
        headers = learner(client, "ada")
        quiz = client.app.state.course.get(SEED).quiz
        url = f"/api/lessons/{SEED}/quiz/attempts"
        ids = ids_of(client, quiz, headers=headers)
        first = client.post(url, json={"answers": answers(quiz, right=5, ids=ids)}, headers=headers)
        assert first.status_code == 200
        db: Database = client.app.state.db
        with db.engine.begin() as conn:  # the attempt row can be written, its answers cannot
            conn.execute(sa.text("DROP TABLE attempt_answers"))

        failed = client.post(
            url, json={"answers": answers(quiz, right=1, ids=ids)}, headers=headers
        )
        assert (failed.status_code, failed.json()) == (503, {"detail": NOT_STORED})
        register(client, "bob")
        browser_login(client, "bob")
        bobs = ids_of(client, quiz)  # signed in by the session cookie
        form = {"csrf_token": csrf(client, f"/lessons/{SEED}"), **answers(quiz, right=1, ids=bobs)}
        page = client.post(f"/lessons/{SEED}/quiz", data=form)
        assert page.status_code == 503 and NOT_STORED in page.text
        assert page.headers["content-type"].startswith("text/html")
        # nothing half-written: only the first attempt, and progress counts only it
        assert rows(db, "SELECT count(*) FROM quiz_attempts") == [(1,)]
        assert sorted(rows(db, "SELECT attempts FROM lesson_progress")) == [(0,), (1,)]
        client.cookies.clear()  # a guest: graded, nothing to store, so no failure either
        guest_ids = ids_of(client, quiz)
        guest = client.post(url, json={"answers": answers(quiz, right=5, ids=guest_ids)})
        assert guest.status_code == 200 and guest.json()["attempt_id"] is None
