"""Presenting a quiz to one learner, grading their submission, and what their review shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..content import Experiment, Lesson, Question, Quiz
from ..training.query import playground_query
from ..training.schemas import field_spec
from .answers import ExperimentAnswer, FieldError
from .grading import (
    AnswerIds,
    Grade,
    Invalid,
    Number,
    QuestionResult,
    grade,
    item_order,
    option_order,
)


@dataclass(frozen=True, slots=True)
class Learner:
    """Who takes a quiz: the key of their ids and order, the round, their record so far."""

    key: str
    round: int = 0
    user_id: int | None = None
    attempts: int = 0
    passed: bool = False


@dataclass(frozen=True, slots=True)
class PresentedQuestion:
    """A question as this learner sees it: their ids, their order, and nothing about answers."""

    id: str
    type: str
    prompt_html: str
    options: tuple[tuple[str, str], ...]  # (learner's option id, html)
    items: tuple[tuple[str, str], ...]  # (learner's item id, html), shuffled
    run: dict[str, Any] | None
    #: experiment: what public_experiment shows (never the solution), else None
    experiment: dict[str, Any] | None = None


def public_experiment(experiment: Experiment) -> dict[str, Any]:
    """An experiment as a learner sees it: the dataset, fixed fields, what to choose within
    which bounds (TrainRequest's), and the goal; the solution stays on the server."""
    return {
        "dataset": experiment.dataset,
        "fixed": dict(experiment.fixed),
        "free": [field_spec(name) for name in experiment.free],
        "goal": {
            "text": experiment.goal.text,
            "terms": [{**t.as_dict(), "text": t.text} for t in experiment.goal.terms],
        },
    }


def pass_percent_for(lesson: Lesson, default: int) -> int:
    return lesson.pass_percent if lesson.pass_percent is not None else default


def answer_ids(quiz: Quiz, learner: Learner, secret: str) -> AnswerIds:
    """The learner's ids for the quiz's options and items."""
    return AnswerIds(quiz, secret=secret, learner_key=learner.key)


def attempts_left(quiz: Quiz, learner: Learner) -> int | None:
    """How many more attempts the learner may make; None when unlimited."""
    if quiz.max_attempts is None:
        return None
    return max(0, quiz.max_attempts - learner.attempts)


def reveals(quiz: Quiz, *, passed: bool) -> bool:
    """Whether a review shows right answers, explanations, feedback and runs (reviewAnswers)."""
    return quiz.review_answers == "always" or (quiz.review_answers == "after-pass" and passed)


def present(quiz: Quiz, *, learner: Learner, secret: str) -> list[PresentedQuestion]:
    """The quiz as this learner sees it: ids, prompts and options in their order, nothing else."""
    ids = answer_ids(quiz, learner, secret)
    shown = []
    for question in quiz.questions:
        order = {"secret": secret, "learner_key": learner.key, "round": learner.round}
        shown.append(
            PresentedQuestion(
                id=question.id,
                type=question.type,
                prompt_html=question.prompt_html,
                options=tuple(
                    (ids.to_public(o.id), o.html) for o in option_order(question, **order)
                ),
                items=tuple((ids.to_public(i.id), i.html) for i in item_order(question, **order)),
                run=question.run,
                experiment=public_experiment(question.experiment) if question.experiment else None,
            )
        )
    return shown


def grade_lesson(
    lesson: Lesson,
    answers: Mapping[str, Any],
    *,
    default_pass: int,
    ids: AnswerIds | None,
    runs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Grade:
    """Grade answers to a lesson's quiz with the lesson's (or the site's) pass mark; `runs`
    are the runs of its experiment answers, by question id."""
    assert lesson.quiz is not None
    return grade(
        lesson.quiz,
        answers,
        lesson_id=lesson.id,
        pass_percent=pass_percent_for(lesson, default_pass),
        ids=ids,
        runs=runs,
    )


def form_answers(quiz: Quiz, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The no-JavaScript form's fields as the answers the API takes."""
    # A radio's value, a checkbox's values, the text typed (empty: unanswered), and for an
    # ordering its items sorted by the position chosen for each (`<question id>.<item id>`).
    answers: dict[str, Any] = {}
    positions: dict[str, dict[str, str]] = {}
    chosen: dict[str, dict[str, str]] = {}
    for key, value in fields:
        question_id, dot, item = key.partition(".")
        question = quiz.question(question_id)
        if question is not None and question.type == "experiment" and dot:
            chosen.setdefault(question_id, {})[item] = value.strip()
        elif question is not None and question.type == "ordering" and dot:
            positions.setdefault(question_id, {})[item] = value.strip()
        elif question is not None and question.type == "multiple":
            answers.setdefault(key, []).append(value)
        elif question is not None and question.type == "numeric":
            answers[key] = value if value.strip() else None
        else:
            answers[key] = value  # unknown questions are refused by grading, naming them
    for question_id, placed in positions.items():
        answers[question_id] = _form_order(quiz.question(question_id), placed)
    for question_id, values in chosen.items():
        answers[question_id] = _form_experiment(question_id, values)
    return answers


#: What the form takes for null in a nullable /train field: full-batch descent, the set's noise.
NULL_WORDS = {"batch_size": "full", "noise": "default"}


def _form_experiment(question_id: str, values: dict[str, str]) -> dict[str, Any] | None:
    """An experiment's fields as typed (empty: not given); hidden layers as `32, 32`."""
    given: dict[str, Any] = {name: text for name, text in values.items() if text}
    if not given:
        return None  # nothing chosen: unanswered
    for name, word in NULL_WORDS.items():
        if isinstance(given.get(name), str) and given[name].lower() == word:
            given[name] = None
    if "hidden_layers" in given:
        parts = [part.strip() for part in given["hidden_layers"].split(",")]
        if len(parts) > 64 or not all(
            part.isascii() and part.isdigit() and len(part) <= 6 for part in parts
        ):
            raise FieldError(
                f"question {question_id!r}: field 'hidden_layers': write the units of each "
                "hidden layer as whole numbers separated by commas, e.g. 32, 32"
            )
        given["hidden_layers"] = [int(part) for part in parts]
    return given


def _form_order(question: Question | None, chosen: dict[str, str]) -> list[str] | Invalid | None:
    assert question is not None
    picked = {item: pos for item, pos in chosen.items() if pos}
    if not picked:
        return None
    wanted = [str(n) for n in range(1, len(question.items) + 1)]
    if not all(pos in wanted for pos in picked.values()):
        return Invalid("positions must be numbers from the list")
    if len(picked) != len(question.items) or sorted(picked.values(), key=int) != wanted:
        return Invalid("each position must be given to exactly one item")
    return sorted(picked, key=lambda item: int(picked[item]))


@dataclass(frozen=True, slots=True)
class ReviewedOption:
    html: str
    chosen: bool
    correct: bool | None  # None: not shown
    feedback_html: str | None


@dataclass(frozen=True, slots=True)
class ReviewedItem:
    html: str
    position: int | None  # where the learner put it
    right_position: int | None  # None: not shown


@dataclass(frozen=True, slots=True)
class ReviewedQuestion:
    """One question of a graded attempt, as the review page shows it."""

    number: int
    question: Question
    result: QuestionResult
    reveal: bool
    options: list[ReviewedOption]
    items: list[ReviewedItem]
    #: numeric: what the learner typed and what is right ("0.5 ± 0.01"), when shown
    typed: str | None
    right_value: str | None
    #: experiment: the learner's value per free field, and the playground query of their run
    chosen: dict[str, Any] | None = None
    playground: str | None = None

    @property
    def correct(self) -> bool:
        return self.result.correct

    @property
    def answered(self) -> bool:
        return self.result.answer is not None


def numeric_text(result: QuestionResult) -> str | None:
    """The right number as a reader expects it: `0.5`, `0.5 ± 0.01`, `100 ± 5%`."""
    if result.type != "numeric":
        return None
    line = result.correct_answer()
    assert not isinstance(line, str | tuple)
    value = f"{line.value.normalize():f}"
    if not line.tolerance:
        return value
    tolerance = f"{line.tolerance.normalize():f}"
    return f"{value} ± {tolerance}{'%' if line.relative else ''}"


def review(
    lesson: Lesson, result: Grade, *, learner: Learner, secret: str, reveal: bool
) -> list[ReviewedQuestion]:
    """Pair each result with its question, options and items in the order the learner saw them."""
    assert lesson.quiz is not None
    by_id = {r.question_id: r for r in result.results}
    order = {"secret": secret, "learner_key": learner.key, "round": learner.round}
    reviewed = []
    for number, question in enumerate(lesson.quiz.questions, start=1):
        outcome = by_id[question.id]
        chosen = set(outcome.chosen())
        options = [
            ReviewedOption(
                html=o.html,
                chosen=o.id in chosen,
                correct=o.correct if reveal else None,
                feedback_html=o.feedback_html if reveal and o.id in chosen else None,
            )
            for o in option_order(question, **order)
        ]
        right = {item.id: n for n, item in enumerate(question.items, start=1)}
        answer = outcome.answer
        placed = list(answer) if isinstance(answer, tuple) else None
        shown = [question.item(i) for i in placed] if placed else item_order(question, **order)
        items = [
            ReviewedItem(
                html=item.html,
                position=placed.index(item.id) + 1 if placed else None,
                right_position=right[item.id] if reveal else None,
            )
            for item in shown
            if item is not None
        ]
        typed = answer.text if isinstance(answer, Number) else None
        experiment = answer if isinstance(answer, ExperimentAnswer) else None
        reviewed.append(
            ReviewedQuestion(
                number=number,
                question=question,
                result=outcome,
                reveal=reveal,
                options=options,
                items=items,
                typed=typed,
                right_value=numeric_text(outcome) if reveal else None,
                chosen=experiment.values if experiment else None,
                playground=playground_query(experiment.config) if experiment else None,
            )
        )
    return reviewed
