"""The quiz API's request and response shapes: nothing in QuizOut can tell which option is right."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .grading import Grade


class OptionOut(BaseModel):
    id: str
    text: str = Field(description="Safe inline HTML")


class QuestionOut(BaseModel):
    id: str
    prompt: str = Field(description="Safe inline HTML")
    options: list[OptionOut]


class QuizOut(BaseModel):
    lesson_id: str
    pass_percent: int
    questions: list[QuestionOut]


class AttemptIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"answers": {"q1a2b3c4d5e": "o0123456789ab"}}]}
    )

    answers: dict[str, str | None] = Field(
        description="Question id → chosen option id; leave a question out (or null) to skip it",
        max_length=500,
    )


class ResultOut(BaseModel):
    question_id: str
    selected_option_id: str | None
    correct_option_id: str
    correct: bool
    explanation: str | None = Field(description="Safe inline HTML, or null")


class GradedAttempt(BaseModel):
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    attempt_id: int | None = Field(description="Stored attempt's id; null for guests")
    results: list[ResultOut]

    @classmethod
    def of(cls, grade: Grade, attempt_id: int | None) -> GradedAttempt:
        return cls(
            lesson_id=grade.lesson_id,
            score=grade.score,
            total=grade.total,
            percent=grade.percent,
            passed=grade.passed,
            attempt_id=attempt_id,
            results=[
                ResultOut(
                    question_id=r.question_id,
                    selected_option_id=r.selected_option_id,
                    correct_option_id=r.correct_option_id,
                    correct=r.correct,
                    explanation=r.explanation_html,
                )
                for r in grade.results
            ],
        )
