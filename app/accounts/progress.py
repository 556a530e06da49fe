"""Lesson progress and stored quiz attempts, written in one transaction (no web framework)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from ..content import Course, Lesson
from ..db import begin_write, commit
from ..models import AttemptAnswer, GuestAttempts, LessonProgress, QuizAttempt, User, utcnow
from ..quizzes.grading import Grade, stored_answer, stored_correct
from ..review.schedule import reviewable
from ..review.store import record_answers


class NoSuchUser(Exception):
    """The signed-in user was deleted while the request ran."""


class QuizLesson(Exception):
    """A lesson with a quiz is completed by passing the quiz, not by a button."""


def _lock_progress(
    session: Session, *, user_id: int, lesson_id: str, now: datetime
) -> LessonProgress:
    """The learner's progress row for a lesson, created if missing, locked for this transaction.

    INSERT ... ON CONFLICT DO NOTHING then SELECT ... FOR UPDATE: two concurrent first attempts
    on PostgreSQL neither fail on the primary key nor lose an increment (SQLite's IMMEDIATE
    transaction already serialises them).
    """
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
    """NoSuchUser unless the user exists (checked inside the caller's write transaction)."""
    # FOR KEY SHARE on PostgreSQL: deleting the account meanwhile waits for this transaction
    # instead of breaking its inserts; it does not serialise the learner's own writes
    query = select(User.id).where(User.id == user_id).with_for_update(read=True, key_share=True)
    if session.scalar(query) is None:
        raise NoSuchUser(user_id)


class AttemptsUsed(Exception):
    """The learner (or guest) has made every attempt the lesson allows (maxAttempts)."""

    def __init__(self, allowed: int) -> None:
        super().__init__(allowed)
        self.allowed = allowed


def record_attempt(
    session: Session,
    *,
    user_id: int,
    grade: Grade,
    max_attempts: int | None = None,
    now: datetime | None = None,
) -> int:
    """Store an attempt, its answers, the lesson's progress and the questions' review cards in
    one transaction; its id. `now` (default: the clock) is when it was made.

    AttemptsUsed (nothing stored) when `max_attempts` have already been made: counted under
    the progress row's lock, so two last attempts at once cannot both get in.
    """
    begin_write(session)
    try:
        _ensure_user(session, user_id=user_id)
        now = now or utcnow()
        progress = _lock_progress(session, user_id=user_id, lesson_id=grade.lesson_id, now=now)
        if max_attempts is not None and progress.attempts >= max_attempts:
            raise AttemptsUsed(max_attempts)
        attempt = QuizAttempt(
            user_id=user_id,
            lesson_id=grade.lesson_id,
            round=progress.attempts,  # attempts before this one: the option order it was shown
            score=grade.score,
            total=grade.total,
            percent=grade.percent,
            passed=grade.passed,
            created_at=now,
            answers=[
                AttemptAnswer(
                    position=position,
                    question_id=result.question_id,
                    type=result.type,
                    answer=stored_answer(result),
                    correct_answer=stored_correct(result),
                    selected_option_id=result.selected_option_id,
                    correct_option_id=result.correct_option_id,
                    correct=result.correct,
                )
                for position, result in enumerate(grade.results)
            ],
        )
        session.add(attempt)
        progress.attempts += 1
        progress.updated_at = now
        if progress.best_percent is None or grade.percent > progress.best_percent:
            progress.best_percent = grade.percent
        if grade.passed and progress.status != "completed":
            progress.status, progress.completed_at = "completed", now
        # every question answered becomes (or, again, is rated as) a review card, in this same
        # transaction: an attempt is never stored without its cards, nor cards without it
        record_answers(
            session,
            user_id=user_id,
            lesson_id=grade.lesson_id,
            answers=[(r.question_id, r.correct) for r in grade.results if reviewable(r.type)],
            now=now,
        )
        session.flush()  # INSERT ... RETURNING: the database chooses the id
        attempt_id = attempt.id
        commit(session)
    except BaseException:
        session.rollback()  # nothing half-written: the attempt is stored whole or not at all
        raise
    return attempt_id


def attempt_round(session: Session, *, user_id: int, lesson_id: str) -> int:
    """How many attempts the learner has made at the lesson: the shuffle round of the next."""
    return attempt_state(session, user_id=user_id, lesson_id=lesson_id)[0]


def attempt_state(session: Session, *, user_id: int, lesson_id: str) -> tuple[int, bool]:
    """(attempts made, passed) for a learner at a lesson."""
    row = session.execute(
        select(LessonProgress.attempts, LessonProgress.status).where(
            LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id
        )
    ).first()
    return (row[0], row[1] == "completed") if row else (0, False)


def guest_state(session: Session, *, visitor: str, lesson_id: str) -> tuple[int, bool]:
    """(attempts made, passed) for a guest (by hashed visitor id) at a lesson."""
    row = session.execute(
        select(GuestAttempts.attempts, GuestAttempts.passed).where(
            GuestAttempts.visitor == visitor, GuestAttempts.lesson_id == lesson_id
        )
    ).first()
    return (row[0], bool(row[1])) if row else (0, False)


def record_guest_attempt(
    session: Session, *, visitor: str, lesson_id: str, passed: bool, max_attempts: int | None
) -> tuple[int, bool]:
    """Count a guest's attempt (AttemptsUsed if none is left); their (attempts, passed) after."""
    begin_write(session)
    try:
        now = utcnow()
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(GuestAttempts)
            .values(visitor=visitor, lesson_id=lesson_id, attempts=0, passed=False, updated_at=now)
            .on_conflict_do_nothing(index_elements=["visitor", "lesson_id"])
        )
        row = session.scalars(
            select(GuestAttempts)
            .where(GuestAttempts.visitor == visitor, GuestAttempts.lesson_id == lesson_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if max_attempts is not None and row.attempts >= max_attempts:
            raise AttemptsUsed(max_attempts)
        row.attempts += 1
        row.passed = row.passed or passed
        row.updated_at = now
        state = (row.attempts, row.passed)
        commit(session)
    except BaseException:
        session.rollback()
        raise
    return state


def mark_opened(session: Session, *, user_id: int, lesson_id: str) -> LessonProgress | None:
    """Opening a lesson makes it in_progress (a write only the first time); its progress row."""
    row = session.get(LessonProgress, (user_id, lesson_id))
    if row is not None:
        return row
    begin_write(session)
    try:
        _ensure_user(session, user_id=user_id)
        row = _lock_progress(session, user_id=user_id, lesson_id=lesson_id, now=utcnow())
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
        row = _lock_progress(session, user_id=user_id, lesson_id=lesson.id, now=utcnow())
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


def hidden_answer_lessons(session: Session, *, user_id: int, course: Course) -> frozenset[str]:
    """The lessons whose right answers this learner is not shown (never, or after-pass unpassed)."""
    policy = {
        lesson.id: lesson.quiz.review_answers
        for lesson in course.lessons
        if lesson.quiz is not None and lesson.quiz.review_answers != "always"
    }
    if not policy:
        return frozenset()
    passed = set(
        session.scalars(
            select(LessonProgress.lesson_id).where(
                LessonProgress.user_id == user_id,
                LessonProgress.status == "completed",
                LessonProgress.lesson_id.in_(policy),
            )
        )
    )
    return frozenset(
        lesson_id
        for lesson_id, review in policy.items()
        if review == "never" or lesson_id not in passed
    )


def list_attempts(
    session: Session,
    *,
    user_id: int,
    lesson_id: str | None = None,
    limit: int = 500,
    before_id: int | None = None,
) -> Sequence[QuizAttempt]:
    """The learner's attempts, newest first, with their answers (only ids below `before_id`)."""
    query = select(QuizAttempt).where(QuizAttempt.user_id == user_id)
    if lesson_id is not None:
        query = query.where(QuizAttempt.lesson_id == lesson_id)
    if before_id is not None:
        query = query.where(QuizAttempt.id < before_id)
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
