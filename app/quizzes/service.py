"""Presenting a lesson's quiz to one learner and grading their submission."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..content import Lesson, Option, Question, Quiz
from .grading import Grade, grade, option_order


@dataclass(frozen=True, slots=True)
class Learner:
    """Who takes a quiz: `key` seeds the option order; `round` changes it between attempts."""

    key: str
    round: int = 0
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class PresentedQuestion:
    """A question with its options in the learner's order; carries no correctness."""

    id: str
    prompt_html: str
    options: tuple[tuple[str, str], ...]  # (option id, html)


def pass_percent_for(lesson: Lesson, default: int) -> int:
    return lesson.pass_percent if lesson.pass_percent is not None else default


def ordered(question: Question, learner: Learner, secret: str) -> list[Option]:
    """The question's options in the order this learner sees them in this round."""
    return option_order(question, secret=secret, learner_key=learner.key, round=learner.round)


def present(quiz: Quiz, *, learner: Learner, secret: str) -> list[PresentedQuestion]:
    """The quiz as this learner sees it: ids, prompts and options in their order, nothing else."""
    return [
        PresentedQuestion(
            id=question.id,
            prompt_html=question.prompt_html,
            options=tuple((o.id, o.html) for o in ordered(question, learner, secret)),
        )
        for question in quiz.questions
    ]


@dataclass(frozen=True, slots=True)
class ReviewedQuestion:
    """One question of a graded attempt, for the review page."""

    number: int
    question: Question
    options: list[Option]
    selected_option_id: str | None
    correct: bool


def review(
    lesson: Lesson, result: Grade, *, learner: Learner, secret: str
) -> list[ReviewedQuestion]:
    """Pair each result with its question, options in the order the learner saw them."""
    assert lesson.quiz is not None
    by_id = {r.question_id: r for r in result.results}
    reviewed = []
    for number, question in enumerate(lesson.quiz.questions, start=1):
        outcome = by_id[question.id]
        reviewed.append(
            ReviewedQuestion(
                number=number,
                question=question,
                options=ordered(question, learner, secret),
                selected_option_id=outcome.selected_option_id,
                correct=outcome.correct,
            )
        )
    return reviewed


def grade_lesson(lesson: Lesson, answers: Mapping[str, str | None], *, default_pass: int) -> Grade:
    """Grade answers to a lesson's quiz with the lesson's (or the site's) pass mark."""
    assert lesson.quiz is not None
    return grade(
        lesson.quiz,
        answers,
        lesson_id=lesson.id,
        pass_percent=pass_percent_for(lesson, default_pass),
    )
