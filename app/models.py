"""SQLAlchemy 2.0 models: learners, their sessions and tokens, quiz attempts, lesson progress,
review cards and queued training runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: Constraint names are fixed so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Longer User-Agent headers are stored cut to this length.
USER_AGENT_MAX = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('learner', 'instructor')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    #: lower-cased username: "Alice" and "alice" are one account
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="learner")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sessions: Mapped[list[WebSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    attempts: Mapped[list[QuizAttempt]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    progress: Mapped[list[LessonProgress]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    review_cards: Mapped[list[ReviewCard]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class WebSession(Base):
    """A browser session; the cookie holds a random secret, the table only its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: updated at most every few minutes (app/accounts/service.py LAST_USED_EVERY)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))

    user: Mapped[User] = relationship(back_populates="sessions")


class ApiToken(Base):
    """A bearer token for the JSON API; stored as its SHA-256, deleted at logout."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginFailure(Base):
    """One failed login (or one being verified), counted per username and address and per
    address for throttling (app/accounts/limits.py)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_key_created_at", "username_key", "created_at"),
        Index("ix_login_failures_address_created_at", "address", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username_key: Mapped[str] = mapped_column(String(256))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignUp(Base):
    """One registration attempt, counted per client address (REGISTER_PER_HOUR)."""

    __tablename__ = "sign_ups"
    __table_args__ = (Index("ix_sign_ups_address_created_at", "address", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizAttempt(Base):
    """One graded quiz submission by a signed-in learner."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (
        Index("ix_quiz_attempts_user_id_lesson_id", "user_id", "lesson_id"),
        Index("ix_quiz_attempts_lesson_id", "lesson_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[str] = mapped_column(String(100))
    #: how many attempts this learner had made at the lesson before this one (the shuffle round)
    round: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    percent: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="attempts")
    answers: Mapped[list[AttemptAnswer]] = relationship(
        back_populates="attempt",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AttemptAnswer.position",
    )


class AttemptAnswer(Base):
    """A learner's answer to one question of an attempt, as typed JSON in the content's own ids.

    `answer` (None: left unanswered) is an option id (single), a list of option ids (multiple),
    `{"text", "value"}` (numeric), the item ids in the learner's order (ordering) or
    `{"config", "run", "terms"}` (experiment: the free fields, the run's figures, each goal
    term measured); `correct_answer` is what was right when it was graded (an experiment's
    goal, never its solution). Single-choice answers also keep the
    columns they had before types: `selected_option_id` and `correct_option_id`.
    """

    __tablename__ = "attempt_answers"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16), default="single", server_default="single")
    answer: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    correct_answer: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    selected_option_id: Mapped[str | None] = mapped_column(String(100))
    correct_option_id: Mapped[str | None] = mapped_column(String(100))
    correct: Mapped[bool] = mapped_column(Boolean)

    attempt: Mapped[QuizAttempt] = relationship(back_populates="answers")


class LessonProgress(Base):
    """Where one learner stands on one lesson."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        CheckConstraint("status IN ('not_started', 'in_progress', 'completed')", name="status"),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    lesson_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="in_progress")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    best_percent: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="progress")


class ReviewCard(Base):
    """One question a learner has answered in a stored attempt, scheduled for review by FSRS.

    The columns are the `fsrs.Card` fields (app/review/schedule.py converts both ways), so a due
    list is one indexed query; `reviews` and `lapses` count every rating and every `Again`.
    """

    __tablename__ = "review_cards"
    __table_args__ = (
        CheckConstraint("state IN (1, 2, 3)", name="state"),
        Index("ix_review_cards_user_id_due", "user_id", "due"),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: question ids hash their lesson's id (app/content/questions.py): unique across lessons
    question_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(100))
    #: fsrs.State: 1 learning, 2 review, 3 relearning
    state: Mapped[int] = mapped_column(Integer)
    #: the learning or relearning step; None in the review state
    step: Mapped[int | None] = mapped_column(Integer)
    stability: Mapped[float | None] = mapped_column(Float)
    difficulty: Mapped[float | None] = mapped_column(Float)
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    last_review: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviews: Mapped[int] = mapped_column(Integer, default=0)
    lapses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="review_cards")


class GuestAttempts(Base):
    """How often one guest (a keyed hash of their visitor id) tried a lesson's quiz, and a pass."""

    # Kept only for lessons with maxAttempts or reviewAnswers: after-pass: a guest's attempts
    # themselves are never stored.

    __tablename__ = "guest_attempts"

    visitor: Mapped[str] = mapped_column(String(64), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class PasswordReset(Base):
    """A one-time link to set a new password (`backprop user reset-link`); stored as its
    SHA-256, deleted when used, dead after `expires_at`."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- training runs on the queue (TRAINING_BACKEND=queue) --------------------------------------


class TrainingRun(Base):
    """One /train run handed to the queue: where it stands, and its result once finished.

    Written with plain SQL by app/training/queue.py (web) and app/training/worker.py (workers);
    the JSON columns hold the exact text the worker serialised, so a result reads back bit for bit.
    """

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')", name="status"
        ),
        Index("ix_training_runs_finished_at", "finished_at"),
    )

    #: uuid4 hex, also the result's run_id
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: procrastinate's job id (procrastinate_jobs.id; no foreign key: finished jobs are deleted)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    config: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    #: why a failed run failed, in words a learner may read
    error: Mapped[str | None] = mapped_column(Text)
    #: how many times a worker has started it (a worker that shuts down gives its run back)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: host:pid of the worker process training it
    worker: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrainingEpoch(Base):
    """One epoch of a queued run as its worker announced it: the history row and any boundary."""

    __tablename__ = "training_epochs"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics: Mapped[str] = mapped_column(Text)
    boundary: Mapped[str | None] = mapped_column(Text)
