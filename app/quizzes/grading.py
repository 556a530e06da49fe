"""Grading, per-learner answer ids and per-learner order; pure functions, no web framework.

Everything here works on the content's own (canonical) option and item ids. Learners never see
those: `AnswerIds` maps them to ids keyed per learner and back, so an answer key read off one
learner's review means nothing in anyone else's submission.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from ..content import Item, NumericAnswer, Option, Question, QuestionType, Quiz, parse_number
from ..content.goals import Outcome
from ..hashing import keyed_hasher
from .answers import AnswerError, ExperimentAnswer, read_experiment

__all__ = ["AnswerError", "ExperimentAnswer"]

T = TypeVar("T", Option, Item)


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric answer: the text as sent, and its value (None: not a number)."""

    text: str
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class Invalid:
    """An answer of the right kind that cannot be read as one (positions used twice): wrong."""

    note: str


#: An answer in canonical ids: an option id (single), the set of option ids (multiple),
#: a Number (numeric), the item ids in the learner's order (ordering), an ExperimentAnswer
#: (experiment), or Invalid.
Answer = str | frozenset[str] | Number | tuple[str, ...] | ExperimentAnswer | Invalid

NOT_A_NUMBER = "not a number"
TYPE_NAMES = {
    "single": "single choice",
    "multiple": "multiple select",
    "numeric": "numeric",
    "ordering": "ordering",
    "experiment": "experiment",
}


class AnswerIds:
    """One learner's ids for a quiz's options and items, both ways."""

    # Each a keyed hash of the site secret, the learner, the question and the option: stable for
    # that learner, meaningless to anyone else.

    def __init__(self, quiz: Quiz, *, secret: str, learner_key: str) -> None:
        keyed = keyed_hasher("answer-ids", secret, 8)
        self.public: dict[str, str] = {}
        self.canonical: dict[str, str] = {}
        for question in quiz.questions:
            for prefix, choices in (("o", question.options), ("i", question.items)):
                for choice in choices:
                    hasher = keyed.copy()
                    hasher.update(f"{learner_key}|{question.id}|{choice.id}".encode())
                    public = prefix + hasher.hexdigest()
                    while public in self.canonical:  # 64 bits: never in practice, but never twice
                        public += "x"
                    self.public[choice.id] = public
                    self.canonical[public] = choice.id

    def to_public(self, canonical_id: str) -> str:
        return self.public[canonical_id]

    def to_canonical(self, public_id: str) -> str | None:
        return self.canonical.get(public_id)


def learner_order(
    choices: Sequence[T], question: Question, *, secret: str, learner_key: str, round: int = 0
) -> list[T]:
    """A question's options or items in this learner's order for this round."""
    # Sorted by a keyed BLAKE2b of (learner, round, question, choice): the same on every reload,
    # different between learners and rounds, unpredictable without the secret, and blind to
    # which option is right or which item comes first.
    keyed = keyed_hasher("option-order", secret, 16)
    prefix = f"{learner_key}|{round}|{question.id}|"

    def rank(choice: T) -> bytes:
        hasher = keyed.copy()
        hasher.update((prefix + choice.id).encode())
        return hasher.digest()

    return sorted(choices, key=rank)


def option_order(
    question: Question, *, secret: str, learner_key: str, round: int = 0
) -> list[Option]:
    """The options in this learner's order for this round: lesson page, quiz API and review."""
    return learner_order(
        question.options, question, secret=secret, learner_key=learner_key, round=round
    )


def item_order(question: Question, *, secret: str, learner_key: str, round: int = 0) -> list[Item]:
    """An ordering's items shuffled for this learner and round, never in the right order."""
    # Shown in the right order, the question would answer itself for whoever leaves it as shown.
    items = learner_order(
        question.items, question, secret=secret, learner_key=learner_key, round=round
    )
    return items[1:] + items[:1] if items == list(question.items) else items


def _wrong_shape(question: Question, expected: str) -> AnswerError:
    kind = TYPE_NAMES[question.type]
    return AnswerError(f"the answer to question {question.id!r} ({kind}) must be {expected}")


def _choice(quiz: Quiz, question: Question, value: str, ids: AnswerIds | None) -> str:
    """The canonical id of one of this question's options or items, sent as `value`."""
    canonical = ids.to_canonical(value) if ids is not None else value
    if canonical is not None and (question.option(canonical) or question.item(canonical)):
        return canonical
    owner = quiz.owners.get(canonical) if canonical is not None else None
    kind = "item" if question.type == "ordering" else "option"
    if owner is not None:
        raise AnswerError(
            f"{kind} {value[:80]!r} belongs to question {owner!r}, not {question.id!r}"
        )
    raise AnswerError(f"unknown {kind} id {value[:80]!r} for question {question.id!r}")


def _number(value: Any) -> Number | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return Number(str(value), None)  # NaN and Infinity, which Python's json reads
        try:
            text = repr(value)
        except ValueError:  # an int too long to print is out of any range anyway
            return Number("", None)
        return Number(text, parse_number(text))
    if isinstance(value, str):
        return Number(value[:100], parse_number(value))
    return None


def read_answer(quiz: Quiz, question: Question, value: Any, ids: AnswerIds | None) -> Answer:
    """One submitted value as an Answer of its question's type; AnswerError for a wrong shape."""
    if isinstance(value, Invalid):
        return value
    kind = question.type
    if kind == "experiment":
        return read_experiment(question, value)
    if kind == "single":
        if not isinstance(value, str):
            raise _wrong_shape(question, "an option id")
        return _choice(quiz, question, value, ids)
    if kind == "numeric":
        number = _number(value)
        if number is None:
            raise _wrong_shape(question, "a number or a numeric string")
        return number
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        expected = "a list of option ids" if kind == "multiple" else "the list of every item id"
        raise _wrong_shape(question, expected)
    chosen = [_choice(quiz, question, v, ids) for v in value]
    if len(set(chosen)) != len(chosen):
        raise _wrong_shape(question, "a list of ids, each at most once")
    if kind == "multiple":
        return frozenset(chosen)
    if len(chosen) != len(question.items):
        raise _wrong_shape(
            question, f"the list of every item id ({len(question.items)}), once each"
        )
    return tuple(chosen)


def check_answers(
    quiz: Quiz, answers: Mapping[str, Any], ids: AnswerIds | None = None
) -> dict[str, Answer]:
    """The submitted answers as Answers, unanswered dropped; AnswerError names what is wrong."""
    # With `ids`, option and item ids are the learner's; without, the content's own.
    checked: dict[str, Answer] = {}
    for question_id, value in answers.items():
        question = quiz.question(question_id)
        if question is None:
            raise AnswerError(f"unknown question id {question_id[:80]!r}")
        if value is None:
            continue
        checked[question_id] = read_answer(quiz, question, value, ids)
    return checked


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """One question's outcome, in canonical ids."""

    question: Question = field(repr=False)
    answer: Answer | None
    correct: bool
    #: why an answer that was given could not count ("not a number"), or None
    note: str | None = None
    #: numeric: the `=` line that matched, else the first
    numeric: NumericAnswer | None = None
    #: experiment: the summary of the answer's run (app.training.figures.summary)
    run: dict[str, Any] | None = field(default=None, repr=False)

    def outcomes(self) -> tuple[Outcome, ...]:
        """Experiment: each goal term measured on the run (() when nothing ran)."""
        experiment = self.question.experiment
        if experiment is None or self.run is None:
            return ()
        return experiment.goal.evaluate(self.run)

    @property
    def question_id(self) -> str:
        return self.question.id

    @property
    def type(self) -> QuestionType:
        return self.question.type

    @property
    def explanation_html(self) -> str | None:
        return self.question.explanation_html

    @property
    def selected_option_id(self) -> str | None:
        """Single choice: the chosen option (None otherwise, or unanswered)."""
        return self.answer if isinstance(self.answer, str) else None

    @property
    def correct_option_id(self) -> str | None:
        """Single choice: the right option (None for the other types)."""
        right = self.question.correct_option
        return right.id if right is not None else None

    def chosen(self) -> tuple[str, ...]:
        """The option ids the learner chose, in the question's order."""
        picked = (
            {self.answer} if isinstance(self.answer, str) else self.answer
            if isinstance(self.answer, frozenset) else set()
        )  # fmt: skip
        return tuple(o.id for o in self.question.options if o.id in picked)

    def feedback(self) -> tuple[tuple[str, str], ...]:
        """(option id, html) of each chosen option that has feedback."""
        return tuple(
            (o.id, o.feedback_html)
            for o in self.question.options
            if o.feedback_html and o.id in self.chosen()
        )

    def correct_answer(self) -> str | tuple[str, ...] | NumericAnswer | None:
        """What is right: an option id, the option ids, a NumericAnswer, or the items in order;
        None for an experiment, whose solution never leaves the server (the goal says what)."""
        question = self.question
        if question.type == "experiment":
            return None
        if question.type == "single":
            assert question.correct_option is not None
            return question.correct_option.id
        if question.type == "multiple":
            return tuple(o.id for o in question.correct_options)
        if question.type == "numeric":
            return self.numeric or question.numeric[0]
        return tuple(i.id for i in question.items)


def judge(
    question: Question, answer: Answer | None, run: Mapping[str, Any] | None = None
) -> QuestionResult:
    """One question's result; unanswered is wrong. An experiment's is `run`, its answer's run."""
    if answer is None:
        return QuestionResult(question, None, False)
    if isinstance(answer, Invalid):
        return QuestionResult(question, answer, False, note=answer.note)
    if question.type == "experiment":
        assert question.experiment is not None
        if run is None:
            return QuestionResult(question, answer, False, note="the run could not be done")
        held = question.experiment.goal.holds(run)
        return QuestionResult(question, answer, held, run=dict(run))
    if question.type == "numeric":
        assert isinstance(answer, Number)
        if answer.value is None:
            return QuestionResult(question, answer, False, note=NOT_A_NUMBER)
        value = answer.value
        matched = next((line for line in question.numeric if line.matches(value)), None)
        return QuestionResult(question, answer, matched is not None, numeric=matched)
    if question.type == "single":
        return QuestionResult(question, answer, answer == question.correct_option.id)  # type: ignore[union-attr]
    if question.type == "multiple":
        right = frozenset(o.id for o in question.correct_options)
        return QuestionResult(question, answer, answer == right)
    return QuestionResult(question, answer, answer == tuple(i.id for i in question.items))


@dataclass(frozen=True, slots=True)
class Grade:
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    pass_percent: int
    results: tuple[QuestionResult, ...]


def score(lesson_id: str, results: Iterable[QuestionResult], pass_percent: int) -> Grade:
    """The grade of a set of results."""
    results = tuple(results)
    right = sum(r.correct for r in results)
    total = len(results)
    return Grade(
        lesson_id=lesson_id,
        score=right,
        total=total,
        percent=round(100 * right / total, 1) if total else 0.0,
        passed=right * 100 >= pass_percent * total,
        pass_percent=pass_percent,
        results=results,
    )


def grade(
    quiz: Quiz,
    answers: Mapping[str, Any],
    *,
    lesson_id: str,
    pass_percent: int,
    ids: AnswerIds | None = None,
    runs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Grade:
    """Score a submission; unanswered questions count as wrong. `runs`: question id → the run
    of its experiment answer (see app/quizzes/experiments.py)."""
    checked = check_answers(quiz, answers, ids)
    runs = runs or {}
    results = [
        judge(question, checked.get(question.id), runs.get(question.id))
        for question in quiz.questions
    ]
    return score(lesson_id, results, pass_percent)


def stored_answer(result: QuestionResult) -> Any:
    """The answer as the typed JSON an attempt stores, in canonical ids (None: unanswered)."""
    answer = result.answer
    if answer is None or isinstance(answer, Invalid):
        return None
    if isinstance(answer, str):
        return answer
    if isinstance(answer, frozenset):
        return list(result.chosen())
    if isinstance(answer, Number):
        return {"text": answer.text, "value": None if answer.value is None else float(answer.value)}
    if isinstance(answer, ExperimentAnswer):
        return {
            "config": answer.values,
            "run": result.run,
            "terms": [outcome_json(o) for o in result.outcomes()],
        }
    return list(answer)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """A goal term's outcome as JSON: the term as text, what was measured, whether it held."""
    return {"term": outcome.term.text, "measured": outcome.measured, "held": outcome.held}


def stored_correct(result: QuestionResult) -> Any:
    """What was right, as the typed JSON an attempt stores (an experiment: its goal)."""
    if result.question.experiment is not None:
        return {"goal": result.question.experiment.goal.text}
    right = result.correct_answer()
    if isinstance(right, NumericAnswer):
        return {"value": float(right.value), "tolerance": float(right.absolute_tolerance)}
    return right if isinstance(right, str) else list(right)
