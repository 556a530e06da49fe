"""Instructor statistics: attempts, pass rates and how each question's options were chosen."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..content import Lesson
from ..models import AttemptAnswer, QuizAttempt


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
