"""Grading and per-learner option order; pure functions, no web framework."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..content import Option, Question, Quiz
from ..hashing import keyed_hasher


class AnswerError(ValueError):
    """A submission that cannot be graded as sent (the route answers 422 with this message)."""


class QuestionResult(NamedTuple):
    """One question's outcome."""

    question_id: str
    selected_option_id: str | None
    correct_option_id: str
    correct: bool
    explanation_html: str | None


@dataclass(frozen=True, slots=True)
class Grade:
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    pass_percent: int
    results: tuple[QuestionResult, ...]


def option_order(
    question: Question, *, secret: str, learner_key: str, round: int = 0
) -> list[Option]:
    """The options in this learner's order for this round: lesson page, quiz API and review."""
    # Sorted by a keyed BLAKE2b of (learner, round, question, option): the same on every reload,
    # different between learners and rounds, unpredictable without the secret, and blind to
    # which option is right.
    keyed = keyed_hasher("option-order", secret, 16)
    prefix = f"{learner_key}|{round}|{question.id}|"

    def rank(option: Option) -> bytes:
        hasher = keyed.copy()
        hasher.update((prefix + option.id).encode())
        return hasher.digest()

    return sorted(question.options, key=rank)


def check_answers(quiz: Quiz, answers: Mapping[str, str | None]) -> dict[str, str]:
    """The submitted answers with unanswered ones dropped; AnswerError names what is wrong."""
    owner = quiz.owners
    checked: dict[str, str] = {}
    for question_id, option_id in answers.items():
        question = quiz.question(question_id)
        if question is None:
            raise AnswerError(f"unknown question id {question_id[:80]!r}")
        if option_id is None:
            continue
        if question.option(option_id) is None:
            if option_id in owner:
                raise AnswerError(
                    f"option {option_id!r} belongs to question {owner[option_id]!r}, "
                    f"not {question_id!r}"
                )
            raise AnswerError(f"unknown option id {option_id[:80]!r} for question {question_id!r}")
        checked[question_id] = option_id
    return checked


def grade(
    quiz: Quiz, answers: Mapping[str, str | None], *, lesson_id: str, pass_percent: int
) -> Grade:
    """Score a submission; unanswered questions count as wrong."""
    checked = check_answers(quiz, answers)
    results = []
    for question in quiz.questions:
        selected = checked.get(question.id)
        right = question.correct_option.id
        results.append(
            QuestionResult(
                question_id=question.id,
                selected_option_id=selected,
                correct_option_id=right,
                correct=selected == right,
                explanation_html=question.explanation_html,
            )
        )
    score = sum(r.correct for r in results)
    total = len(results)
    percent = round(100 * score / total, 1) if total else 0.0
    return Grade(
        lesson_id=lesson_id,
        score=score,
        total=total,
        percent=percent,
        passed=score * 100 >= pass_percent * total,
        pass_percent=pass_percent,
        results=tuple(results),
    )
