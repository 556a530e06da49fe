"""Request and response shapes of the accounts, progress and instructor APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from ..web.schemas import error
from .service import PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN

Status = Literal["not_started", "in_progress", "completed"]


class RegisterIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "ada", "password": "correct horse"}]}
    )
    username: Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
    password: Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


class PasswordIn(BaseModel):
    """The account's password, asked again before deleting the account."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"password": "correct horse"}]})
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX)]


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"current_password": "correct horse", "new_password": "battery staple"}]
        }
    )
    current_password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX)]
    new_password: Password


class Ended(BaseModel):
    ended: int = Field(description="how many other sessions and tokens were ended")


class CredentialOut(BaseModel):
    """One of my browser sessions or API tokens."""

    id: str = Field(description="`session-<n>` or `token-<n>`: DELETE /api/me/sessions/{id}")
    kind: Literal["session", "token"]
    created_at: datetime
    last_used_at: datetime | None = Field(description="to within a few minutes")
    expires_at: datetime
    user_agent: str | None
    current: bool = Field(description="the one this request was made with")


class UserCreated(BaseModel):
    id: int
    username: str


class UserOut(BaseModel):
    id: int
    username: str
    role: Literal["learner", "instructor"]
    created_at: datetime


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class ProgressEntry(BaseModel):
    lesson_id: str
    status: Status
    best_percent: float | None
    attempts: int
    completed_at: datetime | None


class ProgressOut(BaseModel):
    lessons: list[ProgressEntry]
    completed: int
    total: int
    percent: float


class AnswerOut(BaseModel):
    """A stored answer, in the content's own ids (not the ones a learner's quiz shows)."""

    question_id: str
    type: Literal["single", "multiple", "numeric", "ordering", "experiment"]
    answer: JsonValue = Field(
        description="An option id, a list of option ids, {text, value}, the item ids in the "
        "learner's order, or {config, run, terms} (experiment: the free fields chosen, the "
        "run's figures, each goal term measured); null if unanswered"
    )
    correct_answer: JsonValue = Field(
        description="What was right: an option id, a list of them, {value, tolerance}, the "
        "item ids in order, or {goal} (experiment); null while the lesson does not show its "
        "answers"
    )
    selected_option_id: str | None = Field(description="Single choice: as `answer`")
    correct_option_id: str | None = Field(description="Single choice: as `correct_answer`")
    correct: bool


class StoredAttemptOut(BaseModel):
    id: int
    lesson_id: str
    score: int
    total: int
    percent: float
    passed: bool
    created_at: datetime
    answers: list[AnswerOut]


class ExportProgress(ProgressEntry):
    started_at: datetime


class Validity(BaseModel):
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    user_agent: str | None


class ReviewCardOut(BaseModel):
    lesson_id: str
    question_id: str
    state: int = Field(description="FSRS state: 1 learning, 2 review, 3 relearning")
    step: int | None = Field(description="Learning or relearning step; null in review")
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reviews: int
    lapses: int
    created_at: datetime


class ExportOut(BaseModel):
    user: UserOut
    progress: list[ExportProgress]
    attempts: list[StoredAttemptOut]
    review_cards: list[ReviewCardOut]
    api_tokens: list[Validity]
    sessions: list[Validity]
    recent_failed_logins: int


class OptionStats(BaseModel):
    option_id: str
    html: str
    correct: bool
    chosen: int = Field(description="Answers that chose it (a multiple select's, every one)")


class WrongValue(BaseModel):
    answer: str = Field(description="A wrong number as read, or the text when not a number")
    count: int


class ItemStats(BaseModel):
    item_id: str
    html: str
    right_position: int
    placed_correctly: int
    placed_share: float | None = Field(description="Share of answered orders with it in place")


class TermStats(BaseModel):
    term: str
    median: float | None = Field(description="Median figure measured over the runs; null: none")
    runs: int = Field(description="Answers whose run measured it")


class ConfigStats(BaseModel):
    config: dict[str, JsonValue] = Field(description="The free fields as the learners set them")
    count: int
    reached: int = Field(description="How many of those runs reached the goal")


class ExperimentStats(BaseModel):
    goal: str
    learners: int = Field(description="Learners who answered it")
    learners_reached: int = Field(description="... and reached the goal in some attempt")
    reached_share: float | None
    terms: list[TermStats]
    common_configs: list[ConfigStats] = Field(description="The five most common, most first")


class QuestionStats(BaseModel):
    question_id: str
    type: Literal["single", "multiple", "numeric", "ordering", "experiment"]
    prompt_html: str
    answered: int
    unanswered: int
    correct: int
    correct_share: float | None
    first_attempts: int = Field(description="Learners' first attempts that reached it")
    first_correct: int
    first_correct_share: float | None
    options: list[OptionStats] = Field(description="Single choice and multiple select")
    common_wrong: list[WrongValue] = Field(description="Numeric: the five most common wrong")
    items: list[ItemStats] = Field(description="Ordering: each item, in the right order")
    experiment: ExperimentStats | None = Field(
        default=None, description="Experiment: who reached the goal, figures, configurations"
    )


class LessonStats(BaseModel):
    lesson_id: str
    title: str
    attempts: int
    learners: int
    passed: int
    pass_rate: float | None
    average_percent: float | None
    first_attempts: int
    first_passed: int
    first_pass_rate: float | None
    questions: list[QuestionStats]


UNAUTHORIZED = {401: error("Not signed in, or the token is invalid or expired")}
FORBIDDEN = {403: error("Signed in, but not an instructor")}
NOT_FOUND = {404: error("No such lesson or attempt (or it is someone else's)")}
THROTTLED = {429: error("Too many failed logins (or sign-ups); see Retry-After")}
BUSY = {503: error("Every password-hashing slot is busy; see Retry-After")}
WRONG_PASSWORD = {403: error("The password given is not the account's")}
