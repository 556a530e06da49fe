"""Lesson progress, stored quiz attempts and instructor statistics (no web framework here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from ..content import Course, Lesson
from ..db import begin_write, commit
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


def record_attempts(
    session: Session, *, entries: Sequence[tuple[int, GradeLike]]
) -> list[int | NoSuchUser]:
    """Store graded attempts (user id, grade) with every answer and update progress, all in one
    transaction; per entry its new attempt id, or NoSuchUser if that user has been deleted.

    The group-commit writer hands several requests' attempts over at once: one BEGIN IMMEDIATE
    and one COMMIT for all of them, a handful of statements whatever the batch size.
    """
    begin_write(session)
    try:
        conn = session.connection()  # Core statements straight on the connection: no ORM cost
        users = {user_id for user_id, _ in entries}
        existing = set(
            conn.scalars(select(User.__table__.c.id).where(User.__table__.c.id.in_(users)))
        )
        kept = [(i, user_id, grade) for i, (user_id, grade) in enumerate(entries)
                if user_id in existing]  # fmt: skip
        results: list[int | NoSuchUser] = [NoSuchUser(user_id) for user_id, _ in entries]
        if not kept:
            commit(session)
            return results
        now = utcnow()
        pairs = sorted({(user_id, grade.lesson_id) for _, user_id, grade in kept})
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(
            insert(LessonProgress.__table__)
            .values([
                {"user_id": u, "lesson_id": lesson, "status": "in_progress", "attempts": 0,
                 "started_at": now, "updated_at": now}
                for u, lesson in pairs
            ])
            .on_conflict_do_nothing(index_elements=["user_id", "lesson_id"])
        )  # fmt: skip
        table = LessonProgress.__table__
        locked = conn.execute(
            select(table)
            .where(
                table.c.user_id.in_({u for u, _ in pairs}),
                table.c.lesson_id.in_({lesson for _, lesson in pairs}),
            )
            .with_for_update()
        ).mappings()
        state = {(r["user_id"], r["lesson_id"]): dict(r) for r in locked}
        attempt_rows = []
        for _, user_id, grade in kept:
            row = state[(user_id, grade.lesson_id)]
            percent = float(grade.percent)
            attempt_rows.append({
                "user_id": user_id, "lesson_id": grade.lesson_id, "round": row["attempts"],
                "score": grade.score, "total": grade.total, "percent": percent,
                "passed": bool(grade.passed), "created_at": now,
            })  # fmt: skip
            row["attempts"] += 1
            row["updated_at"] = now
            if row["best_percent"] is None or percent > row["best_percent"]:
                row["best_percent"] = percent
            if grade.passed and row["status"] != "completed":
                row["status"], row["completed_at"] = "completed", now
        # table-level (Core) inserts: the ORM's bulk machinery costs more than the statements
        attempts_table = QuizAttempt.__table__
        ids = conn.scalars(
            attempts_table.insert().returning(attempts_table.c.id, sort_by_parameter_order=True),
            attempt_rows,
        ).all()
        conn.execute(
            AttemptAnswer.__table__.insert(),
            [
                {"attempt_id": attempt_id, "position": position, "question_id": r.question_id,
                 "selected_option_id": r.selected_option_id,
                 "correct_option_id": r.correct_option_id, "correct": bool(r.correct)}
                for attempt_id, (_, _, grade) in zip(ids, kept, strict=True)
                for position, r in enumerate(grade.results)
            ],
        )  # fmt: skip
        conn.execute(
            update(table)
            .where(table.c.user_id == bindparam("k_user"))
            .where(table.c.lesson_id == bindparam("k_lesson"))
            .values(
                attempts=bindparam("attempts"), best_percent=bindparam("best_percent"),
                status=bindparam("status"), completed_at=bindparam("completed_at"),
                updated_at=bindparam("updated_at"),
            ),
            [{"k_user": u, "k_lesson": lesson, **{k: state[(u, lesson)][k] for k in
              ("attempts", "best_percent", "status", "completed_at", "updated_at")}}
             for u, lesson in pairs if (u, lesson) in state],
        )  # fmt: skip
        commit(session)
    except BaseException:
        session.rollback()
        raise
    for (i, _, _), attempt_id in zip(kept, ids, strict=True):
        results[i] = attempt_id
    return results


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
    rows = progress_rows(session, user_id=user_id)
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
    attempts, learners, passed, average = session.execute(
        select(
            func.count(QuizAttempt.id),
            func.count(func.distinct(QuizAttempt.user_id)),
            func.coalesce(func.sum(case((QuizAttempt.passed, 1), else_=0)), 0),
            func.avg(QuizAttempt.percent),
        ).where(QuizAttempt.lesson_id == lesson.id)
    ).one()
    chosen: Counter[tuple[str, str | None]] = Counter()
    for question_id, option_id, count in session.execute(
        select(AttemptAnswer.question_id, AttemptAnswer.selected_option_id, func.count())
        .join(QuizAttempt, QuizAttempt.id == AttemptAnswer.attempt_id)
        .where(QuizAttempt.lesson_id == lesson.id)
        .group_by(AttemptAnswer.question_id, AttemptAnswer.selected_option_id)
    ):
        chosen[(question_id, option_id)] += count
    questions = []
    for question in lesson.quiz.questions if lesson.quiz else ():
        options = [
            {
                "option_id": option.id,
                "html": option.html,
                "correct": option.correct,
                "chosen": chosen[(question.id, option.id)],
            }
            for option in question.options
        ]
        unanswered = chosen[(question.id, None)]
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
