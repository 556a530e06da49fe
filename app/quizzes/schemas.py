"""The quiz API's request and response shapes: nothing in QuizOut can tell what is right.

Option and item ids are the learner's own (see grading.AnswerIds): a result's ids are those
the same learner's quiz showed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..content import NumericAnswer
from .grading import (
    AnswerIds,
    ExperimentAnswer,
    Grade,
    Invalid,
    Number,
    QuestionResult,
    outcome_json,
)

QuestionType = Literal["single", "multiple", "numeric", "ordering", "experiment"]


class OptionOut(BaseModel):
    id: str
    text: str = Field(description="Safe inline HTML")


class FreeFieldOut(BaseModel):
    """A /train field the learner chooses, with /train's own bounds for it."""

    name: str
    kind: Literal["choice", "integer", "number", "layers"] = Field(
        description="choice: one of `choices`; integer or number: from `min` to `max`; "
        "layers: a list of at most `max_length` unit counts, each from `min` to `max`"
    )
    choices: list[str] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = Field(default=False, description="`min` itself is not allowed")
    max_exclusive: bool = Field(default=False, description="`max` itself is not allowed")
    max_length: int | None = Field(default=None, description="layers: at most this many")
    nullable: bool = Field(default=False, description="null is a value (batch_size: full batch)")


class GoalTermOut(BaseModel):
    metric: str
    op: str
    value: float | str
    accuracy: float | None = Field(default=None, description="epochs_to's test accuracy")
    text: str = Field(description="The term as written, e.g. `epochs_to(0.9) <= 20`")


class GoalOut(BaseModel):
    text: str
    terms: list[GoalTermOut] = Field(description="Every term must hold")


class ExperimentOut(BaseModel):
    """What an experiment question asks: never its solution."""

    dataset: str
    fixed: dict[str, Any] = Field(description="/train fields the lesson sets")
    free: list[FreeFieldOut] = Field(description="/train fields the answer sets, in order")
    goal: GoalOut


class QuestionOut(BaseModel):
    id: str
    type: QuestionType = Field(
        description="single: one option id; multiple: a list of option ids; numeric: a number; "
        "ordering: the list of every item id, first first; experiment: an object with a value "
        "for every free field"
    )
    prompt: str = Field(description="Safe inline HTML")
    options: list[OptionOut] = Field(description="In this learner's order; [] unless a choice")
    items: list[OptionOut] = Field(description="Ordering: the items, shuffled; [] otherwise")
    run: dict[str, Any] | None = Field(
        description="Predict-then-run: the /train configuration the review runs, else null"
    )
    experiment: ExperimentOut | None = Field(
        default=None, description="Experiment: what to choose and the goal, else null"
    )


class QuizOut(BaseModel):
    lesson_id: str
    pass_percent: int
    review_answers: Literal["always", "after-pass", "never"] = Field(
        description="When results carry right answers and explanations"
    )
    max_attempts: int | None = Field(description="Attempts allowed; null is unlimited")
    attempts_left: int | None = Field(description="For this learner; null is unlimited")
    questions: list[QuestionOut]


class AttemptIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answers": {
                        "q1a2b3c4d5e": "o0123456789abcdef",
                        "q2b3c4d5e6f": ["o0123456789abcdef", "ofedcba9876543210"],
                        "q3c4d5e6f7a": "0.5",
                        "q4d5e6f7a8b": ["i0123456789abcdef", "ifedcba9876543210"],
                    }
                }
            ]
        }
    )

    answers: dict[str, JsonValue] = Field(
        description="Question id → answer: an option id (single), a list of option ids "
        "(multiple), a number or numeric string (numeric), every item id in order "
        "(ordering), or an object of the free /train fields (experiment); leave a question "
        "out (or null) to skip it",
        max_length=500,
    )


class RunOut(BaseModel):
    """The real run of a predict-then-run question, or of an experiment answer."""

    status: Literal["completed", "diverged", "unavailable"] = Field(
        description="unavailable: the run could not be done just now; submit again later"
    )
    history: list[dict[str, Any]] = Field(description="Per epoch: loss and accuracies")
    train_accuracy: float | None
    test_accuracy: float | None
    final_loss: float | None = Field(default=None, description="null once it is not finite")
    parameters: int | None = Field(default=None, description="Weights and biases")


class TermOut(BaseModel):
    """One goal term measured on an experiment's run."""

    term: str = Field(description="The term, e.g. `test_accuracy >= 0.9`")
    measured: float | str | None = Field(description="null: nothing to measure (e.g. diverged)")
    held: bool


class ResultOut(BaseModel):
    question_id: str
    type: QuestionType
    correct: bool
    selected: JsonValue = Field(description="The answer as understood; null if unanswered")
    correct_answer: JsonValue = Field(
        description="An option id, a list of option ids, {value, tolerance}, or the item ids "
        "in order; null when the lesson does not show answers (yet)"
    )
    selected_option_id: str | None = Field(description="Single choice: as `selected`")
    correct_option_id: str | None = Field(description="Single choice: as `correct_answer`")
    explanation: str | None = Field(description="Safe inline HTML, or null")
    feedback: dict[str, str] | None = Field(
        description="Chosen option id → its feedback (safe inline HTML), or null"
    )
    note: str | None = Field(description="Why an answer could not count, e.g. 'not a number'")
    run: RunOut | None = Field(
        description="Predict-then-run: the real run, when shown; experiment: the answer's run"
    )
    terms: list[TermOut] | None = Field(
        default=None, description="Experiment: each goal term on the answer's run"
    )


class GradedAttempt(BaseModel):
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    attempt_id: int | None = Field(description="Stored attempt's id; null for guests")
    answers_shown: bool = Field(description="Whether results carry right answers (reviewAnswers)")
    attempts_left: int | None = Field(description="null is unlimited")
    results: list[ResultOut]

    @classmethod
    def of(
        cls,
        grade: Grade,
        attempt_id: int | None,
        *,
        ids: AnswerIds,
        reveal: bool = True,
        runs: dict[str, dict[str, Any]] | None = None,
        attempts_left: int | None = None,
    ) -> GradedAttempt:
        runs = runs or {}
        return cls(
            lesson_id=grade.lesson_id,
            score=grade.score,
            total=grade.total,
            percent=grade.percent,
            passed=grade.passed,
            attempt_id=attempt_id,
            answers_shown=reveal,
            attempts_left=attempts_left,
            results=[result_out(r, ids, reveal, runs.get(r.question_id)) for r in grade.results],
        )


def public_answer(result: QuestionResult, ids: AnswerIds) -> JsonValue:
    """The learner's answer in their own ids (a numeric one as a number, or the text sent)."""
    answer = result.answer
    if answer is None or isinstance(answer, Invalid):
        return None
    if isinstance(answer, str):
        return ids.to_public(answer)
    if isinstance(answer, frozenset):
        return [ids.to_public(o) for o in result.chosen()]
    if isinstance(answer, Number):
        return float(answer.value) if answer.value is not None else answer.text
    if isinstance(answer, ExperimentAnswer):
        return answer.values
    return [ids.to_public(i) for i in answer]


def public_correct(result: QuestionResult, ids: AnswerIds) -> JsonValue:
    right = result.correct_answer()
    if right is None:  # an experiment: the goal is the answer, its solution stays here
        return None
    if isinstance(right, NumericAnswer):
        return {"value": float(right.value), "tolerance": float(right.absolute_tolerance)}
    if isinstance(right, str):
        return ids.to_public(right)
    return [ids.to_public(i) for i in right]


def result_out(
    result: QuestionResult, ids: AnswerIds, reveal: bool, run: dict[str, Any] | None
) -> ResultOut:
    single = result.type == "single"
    selected = public_answer(result, ids)
    right = public_correct(result, ids) if reveal else None
    feedback = {ids.to_public(o): html for o, html in result.feedback()} if reveal else {}
    return ResultOut(
        question_id=result.question_id,
        type=result.type,
        correct=result.correct,
        selected=selected,
        correct_answer=right,
        selected_option_id=selected if single else None,  # type: ignore[arg-type]
        correct_option_id=right if single else None,  # type: ignore[arg-type]
        explanation=result.explanation_html if reveal else None,
        feedback=feedback or None,
        note=result.note,
        run=_run_out(result, run, reveal),
        terms=[TermOut(**outcome_json(o)) for o in result.outcomes()] if result.run else None,
    )


def _run_out(result: QuestionResult, run: dict[str, Any] | None, reveal: bool) -> RunOut | None:
    """An experiment's own run (the learner's, shown whatever the lesson reveals), or the
    predict-then-run question's real run when answers are shown."""
    if result.run is not None:
        return RunOut(**{k: result.run[k] for k in RunOut.model_fields})
    return RunOut(**run) if run is not None and reveal else None
