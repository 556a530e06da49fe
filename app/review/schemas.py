"""The review API's shapes: due questions as the quiz shows them, and one graded answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..quizzes.schemas import QuestionOut, ResultOut


class ReviewQuestionOut(QuestionOut):
    lesson_id: str
    lesson_title: str
    due: datetime = Field(description="When it fell due (UTC)")


class ReviewOut(BaseModel):
    cards: int = Field(description="All my review cards on questions the course still serves")
    due: int = Field(description="How many of them are due now")
    next_due: datetime | None = Field(
        description="When the next card not yet due falls due (UTC); null if none"
    )
    questions: list[ReviewQuestionOut] = Field(
        description="The due questions, in the order to answer them (one lesson's spread apart)"
    )


class ReviewAnswerIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"answer": "o0123456789abcdef"}, {"answer": "0.5"}]}
    )

    answer: JsonValue = Field(
        description="As in a quiz submission: an option id, a list of option ids, a number or "
        'numeric string, or every item id in order; null for "I don\'t know" (wrong)'
    )


class ReviewResultOut(BaseModel):
    lesson_id: str
    question_id: str
    answers_shown: bool = Field(description="Whether the result carries the right answer")
    result: ResultOut
    state: Literal["learning", "review", "relearning"] = Field(description="FSRS's card state")
    due: datetime = Field(description="When the question is due again (UTC)")
    reviews: int = Field(description="Times the question has been rated, quizzes included")
    due_now: int = Field(description="How many questions are still due now")
