"""Lesson progress, stored quiz attempts and instructor statistics (no web framework here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn, Protocol

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import PoolProxiedConnection

from ..content import Course, Lesson
from ..db import Database, begin_write, commit
from ..models import AttemptAnswer, LessonProgress, QuizAttempt, User, utcnow


class NoSuchUser(Exception):
    """The signed-in user was deleted while the request ran."""


class QuizLesson(Exception):
    """A lesson with a quiz is completed by passing the quiz, not by a button."""


class QuestionResultLike(Protocol):
    question_id: str
    selected_option_id: str | None
    correct_option_id: str
    correct: bool


class GradeLike(Protocol):
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    results: Sequence[QuestionResultLike]


def _lock_progress(session: Session, *, user_id: int, lesson_id: str) -> LessonProgress:
    """The learner's progress row for a lesson, created if missing, locked for this transaction.

    INSERT ... ON CONFLICT DO NOTHING then SELECT ... FOR UPDATE: two concurrent first attempts
    on PostgreSQL neither fail on the primary key nor lose an increment (SQLite's IMMEDIATE
    transaction already serialises them).
    """
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(LessonProgress)
        .values(
            user_id=user_id,
            lesson_id=lesson_id,
            status="in_progress",
            attempts=0,
            started_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "lesson_id"])
    )
    return session.scalars(
        select(LessonProgress)
        .where(LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _ensure_user(session: Session, *, user_id: int) -> None:
    if session.scalar(select(User.id).where(User.id == user_id)) is None:
        raise NoSuchUser(user_id)


#: Rows per multi-row INSERT (largest first; fewer rows than the smallest go one by one):
#: one sqlite3_step for many rows costs about 40% less CPU than executemany's step per row.
_CHUNKS = (64, 16, 4)

_ATTEMPT_COLUMNS = "id, user_id, lesson_id, round, score, total, percent, passed, created_at"
_ANSWER_COLUMNS = (
    "attempt_id, position, question_id, selected_option_id, correct_option_id, correct"
)
_PROGRESS_COLUMNS = "user_id, lesson_id, attempts, best_percent, status, completed_at"


class _Dialect:
    """What differs between SQLite and PostgreSQL on the attempt-storing hot path, in one place."""

    def __init__(self, dialect: Dialect) -> None:
        self.sqlite = dialect.name == "sqlite"
        mark = "?" if self.sqlite else "%s"
        self.mark = mark
        # AttemptStore emits BEGIN itself on both (pysqlite already runs in autocommit mode, see
        # app/db.py), so that a dead connection shows at BEGIN, before anything was written;
        # IMMEDIATE takes SQLite's write lock up front.
        self.begin = "BEGIN IMMEDIATE" if self.sqlite else "BEGIN"
        # the same lock order in every transaction: concurrent batches cannot deadlock
        self.for_update = "" if self.sqlite else " ORDER BY user_id, lesson_id FOR UPDATE"
        self.pair = f"(user_id = {mark} AND lesson_id = {mark})"
        #: PostgreSQL: create every missing progress row (ON CONFLICT DO NOTHING) before locking
        #: any, the order that cannot deadlock against another instance's batch. SQLite's
        #: IMMEDIATE transaction is alone, so it only inserts the rows it did not find.
        self.insert_first = not self.sqlite
        #: UTCDateTime's own bind processor: the stored text (SQLite) or value (PostgreSQL) is
        #: exactly what the ORM and Core store for the same datetime.
        self.stamp = QuizAttempt.__table__.c.created_at.type.dialect_impl(dialect).bind_processor(
            dialect
        )
        #: Boolean columns: SQLAlchemy stores 0/1 on SQLite; an int also binds without the
        #: sqlite3 adapter lookup a bool costs. PostgreSQL has a real boolean.
        self.flag: tuple[Any, Any] = (0, 1) if self.sqlite else (False, True)
        self.insert_progress = (
            "INSERT INTO lesson_progress (user_id, lesson_id, status, attempts, started_at, "
            f"updated_at) VALUES ({mark}, {mark}, 'in_progress', 0, {mark}, {mark}) "
            "ON CONFLICT (user_id, lesson_id) DO NOTHING"
        )
        self.update_progress = (
            f"UPDATE lesson_progress SET attempts = {mark}, best_percent = {mark}, "
            f"status = {mark}, completed_at = {mark}, updated_at = {mark} "
            f"WHERE user_id = {mark} AND lesson_id = {mark}"
        )
        self.insert_attempts = self._multi_row("quiz_attempts", _ATTEMPT_COLUMNS)
        self.insert_answers = self._multi_row("attempt_answers", _ANSWER_COLUMNS)

    def _multi_row(self, table: str, columns: str) -> dict[int, str]:
        """INSERT statements for 1 and for each chunk size of rows."""
        row = f"({', '.join([self.mark] * (columns.count(',') + 1))})"
        return {
            n: f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * n)}"
            for n in (1, *_CHUNKS)
        }

    def own(self, dbapi: Any) -> None:
        """Prepare a pooled connection for AttemptStore's own BEGIN ... COMMIT."""
        if not self.sqlite:
            dbapi.rollback()  # psycopg: leave any implicit transaction, then no implicit BEGIN
            dbapi.autocommit = True

    def disown(self, dbapi: Any) -> None:
        """Undo own() before the connection goes back to the pool."""
        if not self.sqlite:
            dbapi.rollback()
            dbapi.autocommit = False

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def attempt_ids(self, cursor: Any, n: int) -> list[int]:
        """n new attempt ids, ascending, allocated inside the write transaction."""
        if self.sqlite:
            # BEGIN IMMEDIATE holds SQLite's only write lock, and quiz_attempts.id is a plain
            # INTEGER PRIMARY KEY (no AUTOINCREMENT), for which SQLite itself hands out max + 1:
            # the same ids it would have chosen.
            top = cursor.execute("SELECT max(id) FROM quiz_attempts").fetchone()[0] or 0
            return list(range(top + 1, top + 1 + n))
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('quiz_attempts', 'id')) "
            "FROM generate_series(1, %s)",
            (n,),
        )
        return sorted(row[0] for row in cursor.fetchall())

    def insert(self, cursor: Any, statements: dict[int, str], rows: list[tuple]) -> None:
        """Insert rows in chunks of multi-row INSERTs (same statements every time: prepared
        once and cached by the driver), the last few rows with executemany."""
        done = 0
        for size in _CHUNKS:
            while len(rows) - done >= size:
                chunk = rows[done : done + size]
                cursor.execute(statements[size], [v for row in chunk for v in row])
                done += size
        if done < len(rows):
            cursor.executemany(statements[1], rows[done:])

    def lock_progress(self, cursor: Any, pairs: list[tuple[int, str]]) -> dict:
        """Each (user, lesson) pair's progress as [attempts, best_percent, status, completed_at],
        the rows locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
        transaction already serialises writers)."""
        # OR of primary-key equalities: an index search per pair on both databases (SQLite
        # scans the whole table for a row-value IN (VALUES ...))
        cursor.execute(
            f"SELECT {_PROGRESS_COLUMNS} FROM lesson_progress "
            f"WHERE {' OR '.join([self.pair] * len(pairs))}{self.for_update}",
            [v for pair in pairs for v in pair],
        )
        return {(r[0], r[1]): list(r[2:]) for r in cursor.fetchall()}


_DIALECTS: dict[tuple[str, str], _Dialect] = {}


def _dialect(dialect: Dialect) -> _Dialect:
    key = (dialect.name, dialect.driver)
    found = _DIALECTS.get(key)
    if found is None:
        found = _DIALECTS[key] = _Dialect(dialect)
    return found


def _store(
    cursor: Any, d: _Dialect, entries: Sequence[tuple[int, GradeLike]]
) -> list[int | NoSuchUser]:
    """The statements of one batch on a DB-API cursor inside an open write transaction.

    Plain SQL strings and multi-row inserts: SQLAlchemy's per-statement compile-cache lookups
    and per-row parameter processing cost far more CPU (under the GIL) than SQLite's own work.
    """
    if not entries:
        return []
    users = list({user_id for user_id, _ in entries})
    cursor.execute(f"SELECT id FROM users WHERE id IN ({d.marks(len(users))})", users)
    existing = {row[0] for row in cursor.fetchall()}
    kept, positions = entries, None
    if len(existing) < len(users):  # a learner deleted meanwhile: their entries fail alone
        positions = [i for i, (user_id, _) in enumerate(entries) if user_id in existing]
        kept = [entries[i] for i in positions]
        if not kept:
            return [NoSuchUser(user_id) for user_id, _ in entries]
    now = d.stamp(utcnow())  # one conversion per batch: every row of it carries the same time
    pairs = sorted({(user_id, grade.lesson_id) for user_id, grade in kept})
    # ON CONFLICT DO NOTHING, then lock: two PostgreSQL instances creating the same row at once
    # neither fail on the primary key nor lose an increment.
    if d.insert_first:
        cursor.executemany(d.insert_progress, [(u, lesson, now, now) for u, lesson in pairs])
    state = d.lock_progress(cursor, pairs)
    missing = [pair for pair in pairs if pair not in state]
    if missing:
        cursor.executemany(d.insert_progress, [(u, lesson, now, now) for u, lesson in missing])
        state.update(d.lock_progress(cursor, missing))
    ids = d.attempt_ids(cursor, len(kept))
    flag = d.flag
    attempt_rows = []
    answer_rows = []
    for attempt_id, (user_id, grade) in zip(ids, kept, strict=True):
        row = state[(user_id, grade.lesson_id)]  # [attempts, best_percent, status, completed_at]
        percent = float(grade.percent)
        passed = bool(grade.passed)
        attempt_rows.append((attempt_id, user_id, grade.lesson_id, row[0], grade.score,
                             grade.total, percent, flag[passed], now))  # fmt: skip
        answer_rows += [
            (attempt_id, position, r.question_id, r.selected_option_id, r.correct_option_id,
             flag[bool(r.correct)])
            for position, r in enumerate(grade.results)
        ]  # fmt: skip
        row[0] += 1
        if row[1] is None or percent > row[1]:
            row[1] = percent
        if passed and row[2] != "completed":
            row[2], row[3] = "completed", now
    d.insert(cursor, d.insert_attempts, attempt_rows)
    d.insert(cursor, d.insert_answers, answer_rows)
    cursor.executemany(d.update_progress, [(*state[pair], now, *pair) for pair in pairs])
    if positions is None:
        return list(ids)
    results: list[int | NoSuchUser] = [NoSuchUser(user_id) for user_id, _ in entries]
    for i, attempt_id in zip(positions, ids, strict=True):
        results[i] = attempt_id
    return results


def _raise_as_sqlalchemy(exc: BaseException, dialect: Dialect) -> NoReturn:
    """Raise a DB-API error as SQLAlchemy would have (IntegrityError, OperationalError, ...),
    so callers see the same exceptions as from Core; anything else unchanged."""
    base = dialect.loaded_dbapi.Error
    if isinstance(exc, base):
        raise DBAPIError.instance(None, None, exc, base, dialect=dialect) from exc
    raise exc


class AttemptStore:
    """Stores graded attempts for the writer process, on a DB-API connection it keeps: no
    Session, pool checkout or SQLAlchemy BEGIN/COMMIT events per batch (about 0.1 ms of CPU a
    batch). The writer is the only thread of its process, so there is no in-process lock to
    take: other processes meet it at SQLite's write lock (BEGIN IMMEDIATE, busy timeout)."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine
        self._dialect = _dialect(db.engine.dialect)
        self._connection: PoolProxiedConnection | None = None
        self._cursor: Any = None

    def record(self, entries: Sequence[tuple[int, GradeLike]]) -> list[int | NoSuchUser]:
        """Store graded attempts (user id, grade) with every answer and update progress, all in
        one transaction committed before this returns; per entry its new attempt id, or
        NoSuchUser if that user has been deleted. A handful of statements whatever the batch."""
        cursor = self._begin()
        try:
            results = _store(cursor, self._dialect, entries)
            # COMMIT as a statement, like BEGIN: a driver's commit() may do nothing on a
            # connection in autocommit mode (psycopg2 does, for one)
            cursor.execute("COMMIT")
        except BaseException as exc:
            self._abandon(exc)
            _raise_as_sqlalchemy(exc, self._engine.dialect)
        return results

    def _begin(self) -> Any:
        """BEGIN on the kept connection; one the server has dropped meanwhile (a restart, an
        idle timeout) is replaced once, as the pool's pre-ping would have done."""
        d = self._dialect
        while True:
            fresh = self._connection is None
            if fresh:
                connection = self._engine.raw_connection()
                try:
                    d.own(connection.driver_connection)
                except BaseException:
                    connection.invalidate()  # not given back to the pool half-prepared
                    raise
                self._connection, self._cursor = connection, connection.driver_connection.cursor()
            try:
                self._cursor.execute(d.begin)
                return self._cursor
            except Exception as exc:
                if fresh or not self._engine.dialect.is_disconnect(
                    exc,
                    self._connection.driver_connection,
                    self._cursor,  # type: ignore[union-attr]
                ):
                    self._abandon(exc)
                    raise
                self._discard()

    def _abandon(self, exc: BaseException) -> None:
        """Roll back; a connection that is gone (or cannot roll back) is replaced next time."""
        if self._connection is None:
            return
        dbapi = self._connection.driver_connection
        if not self._engine.dialect.is_disconnect(exc, dbapi, self._cursor):
            try:
                dbapi.rollback()
                return
            except Exception:  # noqa: BLE001 - the connection is unusable: replace it
                pass
        self._discard()

    def _discard(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            connection.invalidate()

    def close(self) -> None:
        """Give the connection back to the pool as the pool lent it."""
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            try:
                self._dialect.disown(connection.driver_connection)
            finally:
                connection.close()


def attempt_round(session: Session, *, user_id: int, lesson_id: str) -> int:
    """How many attempts the learner has made at the lesson: the shuffle round of the next."""
    return (
        session.scalar(
            select(LessonProgress.attempts).where(
                LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id
            )
        )
        or 0
    )


def mark_opened(session: Session, *, user_id: int, lesson_id: str) -> LessonProgress | None:
    """Opening a lesson makes it in_progress (a write only the first time); its progress row."""
    row = session.get(LessonProgress, (user_id, lesson_id))
    if row is not None:
        return row
    begin_write(session)
    try:
        _ensure_user(session, user_id=user_id)
        row = _lock_progress(session, user_id=user_id, lesson_id=lesson_id)
        commit(session)
    except NoSuchUser:
        session.rollback()
        return None
    return row


def mark_completed(session: Session, *, user_id: int, lesson: Lesson) -> LessonProgress:
    """Complete a lesson that has no quiz (QuizLesson otherwise); idempotent."""
    if lesson.quiz is not None and lesson.quiz.questions:
        raise QuizLesson(lesson.id)
    begin_write(session)
    try:
        _ensure_user(session, user_id=user_id)
        row = _lock_progress(session, user_id=user_id, lesson_id=lesson.id)
        if row.status != "completed":
            row.status = "completed"
            row.completed_at = row.updated_at = utcnow()
        commit(session)
    except BaseException:
        session.rollback()
        raise
    return row


def progress_rows(session: Session, *, user_id: int) -> dict[str, LessonProgress]:
    rows = session.scalars(select(LessonProgress).where(LessonProgress.user_id == user_id))
    return {row.lesson_id: row for row in rows}


def lesson_entry(lesson_id: str, row: LessonProgress | None) -> dict[str, Any]:
    return {
        "lesson_id": lesson_id,
        "status": row.status if row else "not_started",
        "best_percent": row.best_percent if row else None,
        "attempts": row.attempts if row else 0,
        "completed_at": row.completed_at if row else None,
    }


def progress_summary(session: Session, *, user_id: int, course: Course) -> dict[str, Any]:
    """Every served lesson's status for one learner, and the share completed."""
    return summarize(course, progress_rows(session, user_id=user_id))


def summarize(course: Course, rows: dict[str, LessonProgress]) -> dict[str, Any]:
    """`progress_summary` of progress rows already read."""
    lessons = [lesson_entry(lesson.id, rows.get(lesson.id)) for lesson in course.lessons]
    completed = sum(1 for entry in lessons if entry["status"] == "completed")
    total = len(lessons)
    return {
        "lessons": lessons,
        "completed": completed,
        "total": total,
        "percent": round(100.0 * completed / total, 1) if total else 0.0,
    }


def continue_lesson(course: Course, rows: dict[str, LessonProgress]) -> Lesson | None:
    """Where to pick up: the unfinished lesson last worked on, else the first not started."""
    if not rows:
        return None
    unfinished = [
        row
        for row in rows.values()
        if row.status != "completed" and course.get(row.lesson_id) is not None
    ]
    if unfinished:
        return course.get(max(unfinished, key=lambda r: r.updated_at).lesson_id)
    return next((lesson for lesson in course.lessons if lesson.id not in rows), None)


def list_attempts(
    session: Session, *, user_id: int, lesson_id: str | None = None, limit: int = 500
) -> Sequence[QuizAttempt]:
    """The learner's attempts, newest first, with their answers."""
    query = select(QuizAttempt).where(QuizAttempt.user_id == user_id)
    if lesson_id is not None:
        query = query.where(QuizAttempt.lesson_id == lesson_id)
    query = query.options(selectinload(QuizAttempt.answers))
    return session.scalars(query.order_by(QuizAttempt.id.desc()).limit(limit)).all()


def get_attempt(session: Session, *, user_id: int, attempt_id: int) -> QuizAttempt | None:
    """One of the learner's attempts; someone else's is None, exactly like a missing one."""
    return session.scalar(
        select(QuizAttempt)
        .where(QuizAttempt.id == attempt_id, QuizAttempt.user_id == user_id)
        .options(selectinload(QuizAttempt.answers))
    )


def score_history(attempts: Iterable[QuizAttempt]) -> list[tuple[datetime, float, str]]:
    """(when, percent, lesson) for a chart, oldest first."""
    return sorted(((a.created_at, a.percent, a.lesson_id) for a in attempts), key=lambda t: t[0])


def lesson_stats(session: Session, *, lesson: Lesson) -> dict[str, Any]:
    """Attempts, pass rate, and per question the share right and each option's choice count."""
    return course_stats(session, lessons=[lesson])[0]


def course_stats(session: Session, *, lessons: Sequence[Lesson]) -> list[dict[str, Any]]:
    """`lesson_stats` of several lessons, in two queries whatever their number."""
    ids = [lesson.id for lesson in lessons]
    totals = {
        lesson_id: row
        for lesson_id, *row in session.execute(
            select(
                QuizAttempt.lesson_id,
                func.count(QuizAttempt.id),
                func.count(func.distinct(QuizAttempt.user_id)),
                func.coalesce(func.sum(case((QuizAttempt.passed, 1), else_=0)), 0),
                func.avg(QuizAttempt.percent),
            )
            .where(QuizAttempt.lesson_id.in_(ids))
            .group_by(QuizAttempt.lesson_id)
        )
    }
    chosen: Counter[tuple[str, str, str | None]] = Counter()
    for lesson_id, question_id, option_id, count in session.execute(
        select(
            QuizAttempt.lesson_id,
            AttemptAnswer.question_id,
            AttemptAnswer.selected_option_id,
            func.count(),
        )
        .join(QuizAttempt, QuizAttempt.id == AttemptAnswer.attempt_id)
        .where(QuizAttempt.lesson_id.in_(ids))
        .group_by(
            QuizAttempt.lesson_id, AttemptAnswer.question_id, AttemptAnswer.selected_option_id
        )
    ):
        chosen[(lesson_id, question_id, option_id)] += count
    return [
        _lesson_stats(lesson, totals.get(lesson.id, (0, 0, 0, None)), chosen) for lesson in lessons
    ]


def _lesson_stats(
    lesson: Lesson, totals: Sequence[Any], chosen: Counter[tuple[str, str, str | None]]
) -> dict[str, Any]:
    attempts, learners, passed, average = totals
    questions = []
    for question in lesson.quiz.questions if lesson.quiz else ():
        options = [
            {
                "option_id": option.id,
                "html": option.html,
                "correct": option.correct,
                "chosen": chosen[(lesson.id, question.id, option.id)],
            }
            for option in question.options
        ]
        unanswered = chosen[(lesson.id, question.id, None)]
        answered = sum(o["chosen"] for o in options)
        right = sum(o["chosen"] for o in options if o["correct"])
        seen = answered + unanswered
        questions.append(
            {
                "question_id": question.id,
                "prompt_html": question.prompt_html,
                "answered": answered,
                "unanswered": unanswered,
                "correct": right,
                "correct_share": round(right / seen, 4) if seen else None,
                "options": options,
            }
        )
    return {
        "lesson_id": lesson.id,
        "title": lesson.title,
        "attempts": attempts,
        "learners": learners,
        "passed": int(passed),
        "pass_rate": round(passed / attempts, 4) if attempts else None,
        "average_percent": round(float(average), 2) if average is not None else None,
        "questions": questions,
    }
