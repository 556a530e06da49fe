"""Instructor statistics: attempts and pass rates (first attempts beside all), and per question
how it was answered: each option's choices, a number's common wrong values, an order's items,
an experiment's share of learners reaching the goal, median figures per term and most common
configurations.

Two queries whatever the number of lessons: the totals, and the answers grouped by their typed
JSON (as text, so the same on SQLite and PostgreSQL), which are then read here; a third, for
who reached an experiment's goal, only when a lesson has an experiment.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

from ..content import Lesson, Question
from ..models import AttemptAnswer, QuizAttempt

#: How many of a numeric question's wrong answers are listed.
COMMON_WRONG = 5
#: How many of an experiment's configurations are listed.
COMMON_CONFIGS = 5


def lesson_stats(session: Session, *, lesson: Lesson) -> dict[str, Any]:
    """Attempts, pass rates, and per question the share right and how it was answered."""
    return course_stats(session, lessons=[lesson])[0]


@dataclass(slots=True)
class _Tally:
    """How one question was answered, over all attempts or first attempts only."""

    seen: int = 0
    unanswered: int = 0
    correct: int = 0
    chosen: Counter[str] = field(default_factory=Counter)  # option id → times chosen
    wrong_values: Counter[str] = field(default_factory=Counter)  # numeric, as shown
    placed: Counter[str] = field(default_factory=Counter)  # item id → times in its place
    #: experiment: goal term → Counter of the figures measured for it (None: nothing to measure)
    measured: dict[str, Counter[float | None]] = field(default_factory=dict)
    configs: Counter[str] = field(default_factory=Counter)  # configuration (JSON) → times
    configs_reached: Counter[str] = field(default_factory=Counter)  # ... that reached the goal

    def share(self, count: int) -> float | None:
        return round(count / self.seen, 4) if self.seen else None


def course_stats(session: Session, *, lessons: Sequence[Lesson]) -> list[dict[str, Any]]:
    """`lesson_stats` of several lessons, in two queries whatever their number."""
    ids = [lesson.id for lesson in lessons]
    # a literal, not a bound parameter: PostgreSQL then sees the GROUP BY and SELECT
    # expressions as one (each bound parameter is a new one)
    first = QuizAttempt.round == literal_column("0")
    totals = {
        lesson_id: row
        for lesson_id, *row in session.execute(
            select(
                QuizAttempt.lesson_id,
                func.count(QuizAttempt.id),
                func.count(func.distinct(QuizAttempt.user_id)),
                func.coalesce(func.sum(case((QuizAttempt.passed, 1), else_=0)), 0),
                func.avg(QuizAttempt.percent),
                func.coalesce(func.sum(case((first, 1), else_=0)), 0),
                func.coalesce(func.sum(case((first & QuizAttempt.passed, 1), else_=0)), 0),
            )
            .where(QuizAttempt.lesson_id.in_(ids))
            .group_by(QuizAttempt.lesson_id)
        )
    }
    questions = {
        (lesson.id, q.id): q for lesson in lessons if lesson.quiz for q in lesson.quiz.questions
    }
    tallies: dict[tuple[str, str, bool], _Tally] = defaultdict(_Tally)
    # An experiment's stored answer holds its run's whole history (kilobytes an epoch row):
    # only its configuration and goal terms are read, so that history never leaves the database.
    experiment = AttemptAnswer.type == "experiment"
    answer_text = case((experiment, None), else_=cast(AttemptAnswer.answer, Text))
    config_text = case((experiment, cast(AttemptAnswer.answer["config"], Text)))
    terms_text = case((experiment, cast(AttemptAnswer.answer["terms"], Text)))
    grouped = (answer_text, config_text, terms_text)
    for lesson_id, question_id, text, config, terms, correct, is_first, count in session.execute(
        select(
            QuizAttempt.lesson_id,
            AttemptAnswer.question_id,
            *grouped,
            AttemptAnswer.correct,
            first,
            func.count(),
        )
        .join(QuizAttempt, QuizAttempt.id == AttemptAnswer.attempt_id)
        .where(QuizAttempt.lesson_id.in_(ids))
        .group_by(
            QuizAttempt.lesson_id,
            AttemptAnswer.question_id,
            *grouped,
            AttemptAnswer.correct,
            first,
        )  # fmt: skip
    ):
        question = questions.get((lesson_id, question_id))
        if question is None:
            continue  # a question no longer in the lesson
        if config is not None:
            answer = {"config": json.loads(config), "terms": json.loads(terms or "null")}
        else:
            answer = json.loads(text) if text is not None else None
        for tally in (tallies[(lesson_id, question_id, False)],) + (
            (tallies[(lesson_id, question_id, True)],) if is_first else ()
        ):
            _count(tally, question, answer, bool(correct), count)
    reached = _reached(session, lessons)
    return [
        _lesson_stats(lesson, totals.get(lesson.id, (0, 0, 0, None, 0, 0)), tallies, reached)
        for lesson in lessons
    ]


def _count(tally: _Tally, question: Question, answer: Any, correct: bool, count: int) -> None:
    """Add `count` answers `answer` (typed JSON) to a question's tally."""
    tally.seen += count
    tally.correct += count if correct else 0
    if answer is None:
        tally.unanswered += count
        return
    kind = question.type
    if kind in ("single", "multiple"):
        chosen = [answer] if isinstance(answer, str) else answer if isinstance(answer, list) else []
        for option_id in chosen:
            if isinstance(option_id, str) and question.option(option_id) is not None:
                tally.chosen[option_id] += count
    elif kind == "numeric" and isinstance(answer, dict) and not correct:
        value = answer.get("value")
        shown = format(value, ".15g") if isinstance(value, int | float) else str(answer.get("text"))
        tally.wrong_values[shown.strip() or "(blank)"] += count
    elif kind == "ordering" and isinstance(answer, list):
        for position, item in enumerate(question.items):
            if position < len(answer) and answer[position] == item.id:
                tally.placed[item.id] += count
    elif kind == "experiment" and isinstance(answer, dict):
        config = json.dumps(answer.get("config"), sort_keys=True)
        tally.configs[config] += count
        tally.configs_reached[config] += count if correct else 0
        for term in answer.get("terms") or []:
            if isinstance(term, dict) and isinstance(term.get("term"), str):
                measured = term.get("measured")
                value = measured if isinstance(measured, int | float) else None
                tally.measured.setdefault(term["term"], Counter())[value] += count


def _median(values: Counter[float | None]) -> float | None:
    """The median of the figures measured, each counted as often as it was (None left out)."""
    ordered = sorted((v, n) for v, n in values.items() if v is not None)
    total = sum(n for _, n in ordered)
    if not total:
        return None

    def nth(k: int) -> float:  # the k-th smallest figure, from 0
        seen = 0
        for value, n in ordered:
            seen += n
            if k < seen:
                return value
        raise AssertionError(k)

    return (nth((total - 1) // 2) + nth(total // 2)) / 2


def _experiment_stats(
    question: Question, tally: _Tally, learners: tuple[int, int]
) -> dict[str, Any]:
    """Who reached the goal, the median figure per term, and the most common configurations."""
    assert question.experiment is not None
    answered, reached = learners
    common = sorted(tally.configs.items(), key=lambda kv: (-kv[1], kv[0]))[:COMMON_CONFIGS]
    return {
        "goal": question.experiment.goal.text,
        "learners": answered,
        "learners_reached": reached,
        "reached_share": round(reached / answered, 4) if answered else None,
        "terms": [
            {
                "term": term.text,
                "median": _median(tally.measured.get(term.text, Counter())),
                "runs": sum(tally.measured.get(term.text, Counter()).values()),
            }
            for term in question.experiment.goal.terms
        ],
        "common_configs": [
            {"config": json.loads(config), "count": n, "reached": tally.configs_reached[config]}
            for config, n in common
        ],
    }


def _question_stats(
    question: Question, tally: _Tally, first: _Tally, learners: tuple[int, int]
) -> dict[str, Any]:
    answered = tally.seen - tally.unanswered
    stats: dict[str, Any] = {
        "question_id": question.id,
        "type": question.type,
        "prompt_html": question.prompt_html,
        "answered": answered,
        "unanswered": tally.unanswered,
        "correct": tally.correct,
        "correct_share": tally.share(tally.correct),
        "first_attempts": first.seen,
        "first_correct": first.correct,
        "first_correct_share": first.share(first.correct),
        "options": [
            {
                "option_id": option.id,
                "html": option.html,
                "correct": option.correct,
                "chosen": tally.chosen[option.id],
            }
            for option in question.options
        ],
        "common_wrong": [
            {"answer": value, "count": count}
            for value, count in sorted(tally.wrong_values.items(), key=lambda kv: (-kv[1], kv[0]))[
                :COMMON_WRONG
            ]
        ],
        "items": [
            {
                "item_id": item.id,
                "html": item.html,
                "right_position": position,
                "placed_correctly": tally.placed[item.id],
                "placed_share": round(tally.placed[item.id] / answered, 4) if answered else None,
            }
            for position, item in enumerate(question.items, start=1)
        ],
        "experiment": (
            _experiment_stats(question, tally, learners) if question.experiment else None
        ),
    }
    return stats


def _reached(session: Session, lessons: Sequence[Lesson]) -> dict[tuple[str, str], tuple[int, int]]:
    """(lesson, experiment question) → (learners who answered it, learners who reached its goal
    in any attempt); no query when no lesson has an experiment."""
    ids = [
        lesson.id
        for lesson in lessons
        if lesson.quiz and any(q.experiment for q in lesson.quiz.questions)
    ]
    if not ids:
        return {}
    reached = func.max(case((AttemptAnswer.correct, 1), else_=0))
    per_learner = (
        select(
            QuizAttempt.lesson_id.label("lesson_id"),
            AttemptAnswer.question_id.label("question_id"),
            reached.label("reached"),
        )
        .join(QuizAttempt, QuizAttempt.id == AttemptAnswer.attempt_id)
        .where(
            QuizAttempt.lesson_id.in_(ids),
            AttemptAnswer.type == "experiment",
            AttemptAnswer.answer.is_not(None),
        )
        .group_by(QuizAttempt.lesson_id, AttemptAnswer.question_id, QuizAttempt.user_id)
        .subquery()
    )
    rows = session.execute(
        select(
            per_learner.c.lesson_id,
            per_learner.c.question_id,
            func.count(),
            func.coalesce(func.sum(per_learner.c.reached), 0),
        ).group_by(per_learner.c.lesson_id, per_learner.c.question_id)
    )
    return {(lesson_id, qid): (int(n), int(hit)) for lesson_id, qid, n, hit in rows}


def _lesson_stats(
    lesson: Lesson,
    totals: Sequence[Any],
    tallies: dict[tuple[str, str, bool], _Tally],
    reached: dict[tuple[str, str], tuple[int, int]],
) -> dict[str, Any]:
    attempts, learners, passed, average, first_attempts, first_passed = totals
    questions = [
        _question_stats(
            question,
            tallies.get((lesson.id, question.id, False), _Tally()),
            tallies.get((lesson.id, question.id, True), _Tally()),
            reached.get((lesson.id, question.id), (0, 0)),
        )
        for question in (lesson.quiz.questions if lesson.quiz else ())
    ]
    return {
        "lesson_id": lesson.id,
        "title": lesson.title,
        "attempts": attempts,
        "learners": learners,
        "passed": int(passed),
        "pass_rate": round(passed / attempts, 4) if attempts else None,
        "average_percent": round(float(average), 2) if average is not None else None,
        "first_attempts": int(first_attempts),
        "first_passed": int(first_passed),
        "first_pass_rate": round(first_passed / first_attempts, 4) if first_attempts else None,
        "questions": questions,
    }
