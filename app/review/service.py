"""What a learner reviews: their due questions in a spread order, each presented and graded
exactly as its lesson's quiz does (the quiz's own functions, on a quiz of that one question)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ..accounts.progress import attempt_state
from ..content import Course, Lesson, Question, Quiz
from ..quizzes.grading import AnswerError, AnswerIds, Grade
from ..quizzes.service import (
    Learner,
    PresentedQuestion,
    ReviewedQuestion,
    answer_ids,
    form_answers,
    grade_lesson,
    present,
    reveals,
    review,
)
from . import store
from .schedule import due_phrase, reviewable, spread

#: At most this many due questions are listed at once (the API's `limit` is at most this).
MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class Due:
    """A card whose question the course still serves, with its lesson and question."""

    card: store.Scheduled
    lesson: Lesson
    question: Question
    #: the card's review count when it was read (the ORM row changes once it is answered)
    reviews: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The learner's cards: how many, how many due now, the due ones in serving order, and
    when the next one after those falls due."""

    cards: int
    due: list[Due]
    next_due: datetime | None

    @property
    def due_count(self) -> int:
        return len(self.due)


def served(course: Course, card: store.Scheduled) -> Due | None:
    """The card with its lesson and question, or None when the course no longer has it."""
    lesson = course.get(card.lesson_id)
    question = lesson.quiz.question(card.question_id) if lesson and lesson.quiz else None
    if lesson is None or question is None or not reviewable(question.type):
        return None
    return Due(card, lesson, question, card.reviews)


def held_back(session: Session, *, user_id: int, lesson: Lesson) -> bool:
    """Whether the lesson's cards wait: its quiz limits attempts and hides right answers, and the
    learner, not passed yet, has attempts left. A review says right or wrong as often as the card
    falls due, which for such a quiz would be trial and error past the attempts it counts."""
    quiz = lesson.quiz
    if quiz is None or quiz.max_attempts is None or quiz.review_answers == "always":
        return False
    attempts, passed = attempt_state(session, user_id=user_id, lesson_id=lesson.id)
    return not passed and attempts < quiz.max_attempts


def summary(session: Session, *, user_id: int, course: Course, now: datetime) -> Summary:
    """Every card of the learner on a served question; the due ones spread apart by lesson."""
    rows = store.cards(session, user_id=user_id)
    live = [due for due in (served(course, row) for row in rows) if due is not None]
    lessons = {d.lesson.id: d.lesson for d in live}.values()
    waiting = {x.id for x in lessons if held_back(session, user_id=user_id, lesson=x)}
    asked = [d for d in live if d.lesson.id not in waiting]
    due = [d for d in asked if d.card.due <= now]
    later = [d.card.due for d in asked if d.card.due > now]
    # the lesson answered last (a review or a quiz) is not the one to start with
    latest = max(
        (d for d in live if d.card.last_review is not None),
        key=lambda d: (d.card.last_review, d.card.question_id),
        default=None,
    )
    order = spread(due, lesson=lambda d: d.lesson.id, after=latest.lesson.id if latest else None)
    return Summary(cards=len(live), due=order, next_due=min(later) if later else None)


def find_due(
    session: Session, *, user_id: int, course: Course, question_id: str, now: datetime
) -> Due | None:
    """The learner's due card for `question_id` on a served question, else None."""
    card = store.get_card(session, user_id=user_id, question_id=question_id)
    if card is None or card.due > now:
        return None
    due = served(course, card)
    if due is None or held_back(session, user_id=user_id, lesson=due.lesson):
        return None
    return due


def learner_for(due: Due, user_id: int) -> Learner:
    """The learner as this review shows the question: their ids, an order of its own."""
    # Quiz rounds count up from 0; a negative round per review count is an order no quiz
    # attempt used and the next review will not repeat.
    return Learner(key=f"user:{user_id}", round=-(due.reviews + 1), user_id=user_id)


def one_question(lesson: Lesson, question: Question) -> Lesson:
    """The lesson with a quiz of this one question (its reviewAnswers and pass mark kept)."""
    assert lesson.quiz is not None
    quiz = Quiz(
        questions=(question,),
        pass_percent=lesson.quiz.pass_percent,
        review_answers=lesson.quiz.review_answers,
    )
    return dataclasses.replace(lesson, quiz=quiz)


def presented(due: Due, *, user_id: int, secret: str) -> PresentedQuestion:
    """The question as the quiz would show it to this learner, options in a fresh order."""
    quiz = one_question(due.lesson, due.question).quiz
    assert quiz is not None
    return present(quiz, learner=learner_for(due, user_id), secret=secret)[0]


def ids_for(due: Due, *, user_id: int, secret: str) -> AnswerIds:
    quiz = one_question(due.lesson, due.question).quiz
    assert quiz is not None
    return answer_ids(quiz, learner_for(due, user_id), secret)


def grade_answer(due: Due, answer: Any, *, ids: AnswerIds, default_pass: int) -> Grade:
    """Grade one answer (AnswerError for a wrong shape or someone else's ids)."""
    return grade_lesson(
        one_question(due.lesson, due.question),
        {due.question.id: answer},
        default_pass=default_pass,
        ids=ids,
    )


def form_answer(due: Due, fields: Sequence[tuple[str, str]]) -> Any:
    """The no-JavaScript form's fields as the one answer the API takes (None: unanswered)."""
    quiz = one_question(due.lesson, due.question).quiz
    assert quiz is not None
    answers: Mapping[str, Any] = form_answers(quiz, list(fields))
    unknown = [key for key in answers if key != due.question.id]
    if unknown:
        raise AnswerError(f"unknown question id {unknown[0][:80]!r}")
    return answers.get(due.question.id)


def shows_answers(session: Session, *, user_id: int, due: Due) -> bool:
    """Whether the review shows the right answer: the lesson's reviewAnswers, as in its quiz."""
    assert due.lesson.quiz is not None
    _, passed = attempt_state(session, user_id=user_id, lesson_id=due.lesson.id)
    return reveals(due.lesson.quiz, passed=passed)


def reviewed(
    due: Due, result: Grade, *, user_id: int, secret: str, reveal: bool
) -> list[ReviewedQuestion]:
    """The review of the answer, as the quiz's result page shows it."""
    return review(
        one_question(due.lesson, due.question),
        result,
        learner=learner_for(due, user_id),
        secret=secret,
        reveal=reveal,
    )


def when(due: datetime, now: datetime) -> dict[str, str]:
    """A due time for a page: ISO for `<time>`, the UTC clock time, and "in 3 days"."""
    due = due.astimezone(UTC)
    return {"iso": due.isoformat(), "utc": due.strftime("%Y-%m-%d %H:%M UTC"),
            "phrase": due_phrase(due, now)}  # fmt: skip


def due_context(found: Summary, now: datetime) -> dict[str, Any]:
    """What the course page, /me and /review say about the learner's review."""
    return {
        "cards": found.cards,
        "due_count": found.due_count,
        "next_due": when(found.next_due, now) if found.next_due else None,
    }
