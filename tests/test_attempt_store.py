"""Storing quiz attempts (AttemptStore, AttemptWriter) on a real database file
(or PostgreSQL schema): the rows are what the ORM would store, ids are right, progress adds up,
and failures stay with the entry that caused them."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.accounts.progress import AttemptStore, NoSuchUser
from app.accounts.writer import RESTART_DELAY_S, AttemptWriter, WriterFailed
from app.db import Database, upgrade
from app.models import AttemptAnswer, LessonProgress, QuizAttempt, User, utcnow
from app.quizzes.grading import Grade, QuestionResult

LESSONS = ("lesson-a", "lesson-b")


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database.open(database_url)
    upgrade(database.engine)
    yield database
    database.close()


def add_users(db: Database, *names: str) -> list[int]:
    with db.session() as session:
        users = [User(username=n, username_key=n, password_hash="x") for n in names]
        session.add_all(users)
        session.commit()
        return [u.id for u in users]


def grade(lesson_id: str, score: int, *, seed: int = 0, total: int = 5) -> Grade:
    """A graded five-question attempt with `score` right; some questions left unanswered."""
    results = tuple(
        QuestionResult(
            question_id=f"{lesson_id}-q{k}",
            selected_option_id=(
                f"{lesson_id}-q{k}-o0" if k < score
                else None if (seed + k) % 3 == 0 else f"{lesson_id}-q{k}-o{1 + (seed + k) % 3}"
            ),
            correct_option_id=f"{lesson_id}-q{k}-o0",
            correct=k < score,
            explanation_html=None,
        )
        for k in range(total)
    )  # fmt: skip
    percent = round(100 * score / total, 1)
    return Grade(lesson_id, score, total, percent, score * 100 >= 80 * total, 80, results)


def schedule(users: list[int]) -> list[tuple[int, Grade]]:
    """30 entries mixing three learners and two lessons, with passes, fails and improvements."""
    scores = [
        1,
        4,
        2,
        5,
        3,
        0,
        4,
        2,
        5,
        1,
        3,
        3,
        0,
        5,
        2,
        4,
        1,
        2,
        3,
        5,
        0,
        1,
        4,
        4,
        2,
        3,
        5,
        0,
        1,
        2,
    ]
    return [
        (users[i % 3], grade(LESSONS[(i // 3) % 2], score, seed=i))
        for i, score in enumerate(scores)
    ]


def orm_record(db: Database, user_id: int, result: Grade) -> int:
    """The reference: the plain ORM way, one attempt per transaction."""
    with db.session() as session:
        now = utcnow()
        progress = session.get(LessonProgress, (user_id, result.lesson_id))
        if progress is None:
            progress = LessonProgress(
                user_id=user_id, lesson_id=result.lesson_id, status="in_progress", attempts=0,
                started_at=now, updated_at=now,
            )  # fmt: skip
            session.add(progress)
        attempt = QuizAttempt(
            user_id=user_id, lesson_id=result.lesson_id, round=progress.attempts,
            score=result.score, total=result.total, percent=float(result.percent),
            passed=bool(result.passed), created_at=now,
            answers=[
                AttemptAnswer(position=i, question_id=r.question_id,
                              selected_option_id=r.selected_option_id,
                              correct_option_id=r.correct_option_id, correct=bool(r.correct))
                for i, r in enumerate(result.results)
            ],
        )  # fmt: skip
        session.add(attempt)
        progress.attempts += 1
        progress.updated_at = now
        if progress.best_percent is None or result.percent > progress.best_percent:
            progress.best_percent = float(result.percent)
        if result.passed and progress.status != "completed":
            progress.status, progress.completed_at = "completed", now
        session.commit()
        return attempt.id


def store_in_batches(db: Database, entries, sizes) -> list[int | NoSuchUser]:
    out: list[int | NoSuchUser] = []
    start = 0
    store = AttemptStore(db)
    try:
        for size in sizes:
            out += store.record(entries[start : start + size])
            start += size
    finally:
        store.close()
    assert start == len(entries)
    return out


def raw(db: Database, sql: str, **params) -> list[tuple]:
    """Rows exactly as the driver returns them (no SQLAlchemy type processing)."""
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def typed(db: Database, columns: str) -> str:
    """`columns`, and on SQLite each column's storage class too (integer, real, text, null)."""
    if db.engine.dialect.name != "sqlite":
        return columns
    return columns + "".join(f", typeof({c.strip()})" for c in columns.split(","))


def attempts_of(db: Database, user_id: int) -> list[tuple]:
    cols = typed(db, "lesson_id, round, score, total, percent, passed, created_at")
    return raw(
        db, f"SELECT id, {cols} FROM quiz_attempts WHERE user_id = :u ORDER BY id", u=user_id
    )


def answers_of(db: Database, attempt_id: int) -> list[tuple]:
    cols = typed(db, "position, question_id, selected_option_id, correct_option_id, correct")
    return raw(
        db, f"SELECT {cols} FROM attempt_answers WHERE attempt_id = :a ORDER BY position",
        a=attempt_id,
    )  # fmt: skip


def progress_of(db: Database, user_id: int) -> dict[str, tuple]:
    cols = typed(db, "status, attempts, best_percent, started_at, updated_at, completed_at")
    return {
        row[0]: row[1:]
        for row in raw(
            db, f"SELECT lesson_id, {cols} FROM lesson_progress WHERE user_id = :u", u=user_id
        )
    }


def without_times(row: tuple, time_positions: tuple[int, ...]) -> tuple:
    return tuple(v for i, v in enumerate(row) if i not in time_positions)


def test_stored_rows_are_exactly_what_the_orm_stores_for_the_same_grades(db):
    mine = add_users(db, "m0", "m1", "m2")
    theirs = add_users(db, "r0", "r1", "r2")
    ids = store_in_batches(db, schedule(mine), [1, 4, 7, 2, 16])
    for user_id, result in schedule(theirs):
        orm_record(db, user_id, result)
    assert all(isinstance(i, int) for i in ids)
    for me, them in zip(mine, theirs, strict=True):
        my_attempts, their_attempts = attempts_of(db, me), attempts_of(db, them)
        assert len(my_attempts) == len(their_attempts) == 10
        # every value and (SQLite) storage class but the id and the time
        assert [without_times(a[1:], (6,)) for a in my_attempts] == [
            without_times(a[1:], (6,)) for a in their_attempts
        ]
        for mine_a, theirs_a in zip(my_attempts, their_attempts, strict=True):
            assert answers_of(db, mine_a[0]) == answers_of(db, theirs_a[0])
        my_progress, their_progress = progress_of(db, me), progress_of(db, them)
        assert set(my_progress) == set(their_progress)
        for lesson, row in my_progress.items():
            # status, attempts, best percent (and storage classes; completed_at's null-ness)
            keep = lambda r: (*r[:3], r[5] is None, *r[6:])  # noqa: E731
            assert keep(row) == keep(their_progress[lesson])
            # the times are those of the attempts that set them, on both sides
            for user_id, progress in ((me, row), (them, their_progress[lesson])):
                made = [a for a in attempts_of(db, user_id) if a[1] == lesson]
                assert progress[3] == made[0][7]  # started with the first attempt
                assert progress[4] == made[-1][7]  # updated by the last
                passed = [a for a in made if a[6]]
                assert progress[5] == (passed[0][7] if passed else None)  # completed: first pass


def test_stored_times_have_the_orm_s_exact_format(db):
    [me] = add_users(db, "m0")
    [attempt_id] = store_in_batches(db, [(me, grade("lesson-a", 5))], [1])
    [(stored,)] = raw(db, "SELECT created_at FROM quiz_attempts WHERE id = :a", a=attempt_id)
    with db.session() as session:
        when = session.get(QuizAttempt, attempt_id).created_at
        assert when.utcoffset() is not None  # read back as an aware UTC datetime
        session.add(
            QuizAttempt(user_id=me, lesson_id="x", round=0, score=0, total=1, percent=0.0,
                        passed=False, created_at=when)
        )  # fmt: skip
        session.commit()
    [(orm_stored,)] = raw(db, "SELECT created_at FROM quiz_attempts WHERE lesson_id = 'x'")
    assert stored == orm_stored and type(stored) is type(orm_stored)
    [(completed,)] = raw(db, "SELECT completed_at FROM lesson_progress WHERE user_id = :u", u=me)
    assert completed == stored


def test_ids_are_new_ascending_and_returned_in_the_order_of_the_entries(db):
    users = add_users(db, "a", "b", "c")
    orm_first = orm_record(db, users[0], grade("lesson-a", 1))
    entries = schedule(users) * 3
    ids = store_in_batches(db, entries, [1, 5, 32, 2, 50])
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > orm_first
    for attempt_id, (user_id, result) in zip(ids, entries, strict=True):
        [row] = raw(
            db, "SELECT user_id, lesson_id, score FROM quiz_attempts WHERE id = :a", a=attempt_id
        )
        assert row == (user_id, result.lesson_id, result.score)
        assert len(answers_of(db, attempt_id)) == 5


def test_progress_adds_up_across_batches_mixing_learners_and_lessons(db):
    users = add_users(db, "a", "b", "c")
    entries = schedule(users)
    store_in_batches(db, entries, [3, 1, 9, 17])
    for user_id in users:
        progress = progress_of(db, user_id)
        for lesson in LESSONS:
            made = [g for u, g in entries if u == user_id and g.lesson_id == lesson]
            status, attempts, best = progress[lesson][:3]
            assert attempts == len(made)
            assert best == max(g.percent for g in made)
            assert status == ("completed" if any(g.passed for g in made) else "in_progress")
            rounds = [
                r[0]
                for r in raw(
                    db,
                    "SELECT round FROM quiz_attempts WHERE user_id = :u AND lesson_id = :l "
                    "ORDER BY id",
                    u=user_id,
                    l=lesson,
                )  # fmt: skip
            ]
            assert rounds == list(range(len(made)))


def test_a_deleted_learner_s_entries_fail_alone_and_the_rest_are_stored(db):
    a, gone, b = add_users(db, "a", "gone", "b")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": gone})
    entries = [(a, grade("lesson-a", 5)), (gone, grade("lesson-a", 5)), (b, grade("lesson-b", 2)),
               (gone, grade("lesson-b", 1))]  # fmt: skip
    results = store_in_batches(db, entries, [4])
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], NoSuchUser) and isinstance(results[3], NoSuchUser)
    assert results[1].args == (gone,)
    assert raw(db, "SELECT count(*) FROM quiz_attempts WHERE user_id = :u", u=gone) == [(0,)]
    assert progress_of(db, gone) == {}
    assert [r[0] for r in attempts_of(db, a)] == [results[0]]
    assert progress_of(db, b)["lesson-b"][:2] == ("in_progress", 1)
    only_gone = store_in_batches(db, [(gone, grade("lesson-a", 3))], [1])
    assert isinstance(only_gone[0], NoSuchUser)


def test_a_store_whose_connection_died_reconnects_for_the_next_batch(db):
    [me] = add_users(db, "me")
    store = AttemptStore(db)
    try:
        first = store.record([(me, grade("lesson-a", 1))])
        store._connection.driver_connection.close()  # as a server restart would
        second = store.record([(me, grade("lesson-a", 5))])
    finally:
        store.close()
    assert first[0] < second[0]
    assert progress_of(db, me)["lesson-a"][:2] == ("completed", 2)


def test_two_instances_storing_at_once_share_no_id_and_lose_no_increment(db, database_url):
    users = add_users(db, "a", "b", "c", "d")
    per_thread, errors, ids = 40, [], []
    lock = threading.Lock()

    def work(k: int) -> None:
        own = Database.open(database_url)  # another process's database handle: no shared lock
        store = AttemptStore(own)
        try:
            for i in range(per_thread):
                batch = [(users[(k + i + j) % 4], grade(LESSONS[j % 2], (i + j) % 6)) for j in
                         range(1 + i % 5)]  # fmt: skip
                got = store.record(batch)
                with lock:
                    ids.extend(got)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()
            own.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == len(ids) == raw(db, "SELECT count(*) FROM quiz_attempts")[0][0]
    stored = raw(
        db, "SELECT user_id, lesson_id, count(*), max(round) FROM quiz_attempts "
        "GROUP BY user_id, lesson_id",
    )  # fmt: skip
    for user_id, lesson, count, top_round in stored:
        assert progress_of(db, user_id)[lesson][1] == count == top_round + 1


def with_writer(db: Database, scenario: Callable[[AttemptWriter], Awaitable[Any]]) -> Any:
    """`await scenario(writer)` with a new AttemptWriter, in an event loop of its own in a thread
    of its own (another test may have left a loop running in this one)."""
    outcome: list = []

    async def run() -> None:
        writer = AttemptWriter(db)
        try:
            outcome.append(await scenario(writer))
        finally:
            writer.close()

    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    thread.join(60)
    return outcome[0]


def test_the_writer_fails_only_the_bad_entry_and_answers_the_rest(db):
    a, b = add_users(db, "a", "b")
    good = grade("lesson-a", 4)
    twice = good.results[0]
    bad = Grade("lesson-a", 1, 2, 50.0, False, 80, (twice, twice))  # same question twice

    async def scenario(writer: AttemptWriter) -> list:
        return await asyncio.gather(
            writer.record(user_id=a, grade=good),
            writer.record(user_id=b, grade=bad),
            writer.record(user_id=b, grade=good),
            return_exceptions=True,
        )

    first, failed, third = with_writer(db, scenario)
    assert isinstance(first, int) and isinstance(third, int)
    assert isinstance(failed, WriterFailed) and "IntegrityError" in str(failed)
    assert raw(db, "SELECT count(*) FROM quiz_attempts") == [(2,)]
    assert progress_of(db, b)["lesson-a"][:2] == ("completed", 1)


def test_an_empty_batch_stores_nothing_and_fails_nothing(db):
    assert store_in_batches(db, [], [0]) == []
    assert raw(db, "SELECT count(*) FROM quiz_attempts") == [(0,)]


def test_a_writer_process_that_dies_fails_its_waiting_attempt_and_the_next_one_is_stored(db):
    (a,) = add_users(db, "a")

    async def scenario(writer: AttemptWriter) -> tuple:
        first = await writer.record(user_id=a, grade=grade("lesson-a", 4))
        process = writer._process
        os.kill(process.pid, signal.SIGSTOP)  # the next batch reaches a writer that is stuck
        waiting = asyncio.ensure_future(writer.record(user_id=a, grade=grade("lesson-a", 4)))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        os.kill(process.pid, signal.SIGKILL)
        lost = await asyncio.gather(waiting, return_exceptions=True)
        # no new writer at once (one that cannot start must not respawn per submission)...
        refused = await asyncio.gather(
            writer.record(user_id=a, grade=grade("lesson-a", 4)), return_exceptions=True
        )
        await asyncio.sleep(RESTART_DELAY_S)
        # ...but after the delay
        third = await writer.record(user_id=a, grade=grade("lesson-a", 4))
        return first, lost[0], refused[0], third, writer._process is not process

    first, lost, refused, third, replaced = with_writer(db, scenario)
    assert isinstance(lost, WriterFailed) and "may or may not be stored" in str(lost)
    assert isinstance(refused, WriterFailed) and "not stored" in str(refused)
    assert replaced and third > first
    assert raw(db, "SELECT count(*) FROM quiz_attempts") == [(2,)]


def _wait_until_it_ignores_sigterm(pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(
            next(line for line in status.splitlines() if line.startswith("SigIgn:"))[7:], 16
        )
        if ignored & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.02)
    raise AssertionError("the writer never set SIGTERM aside")


def test_the_attempt_writer_starts_with_the_server_and_stops_with_it(make_app):
    app = make_app(attempt_writer_at_startup=True)
    with TestClient(app):
        process = app.state.attempt_writer._process
        assert process is not None and process.is_alive()
        # a SIGTERM to the whole process group must not take it away from the requests the
        # server is still finishing: the server stops it when it closes
        _wait_until_it_ignores_sigterm(process.pid)  # it does so once its interpreter is up
        os.kill(process.pid, signal.SIGTERM)
        process.join(0.5)
        assert process.is_alive()
    assert not process.is_alive()
