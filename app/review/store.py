"""Review cards in the database: written with each stored attempt and each review (no web
framework). The caller passes `now`: every due time is computed from the time it is given."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from fsrs import Scheduler
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..content.loader import ID_PATTERN
from ..db import begin_write, commit
from ..models import ReviewCard
from .schedule import CardState, new_card, review

#: The columns of a card that FSRS's state is read from and written to.
_STATE = ("state", "step", "stability", "difficulty", "due", "last_review", "reviews", "lapses")


def card_state(row: Any) -> CardState:
    """The FSRS state of a ReviewCard, or of a row of its `_STATE` columns."""
    return CardState(
        state=row.state,
        step=row.step,
        stability=row.stability,
        difficulty=row.difficulty,
        due=row.due,
        last_review=row.last_review,
        reviews=row.reviews,
        lapses=row.lapses,
    )


def _apply(row: ReviewCard, state: CardState) -> None:
    row.state, row.step = state.state, state.step
    row.stability, row.difficulty = state.stability, state.difficulty
    row.due, row.last_review = state.due, state.last_review
    row.reviews, row.lapses = state.reviews, state.lapses


def record_answers(
    session: Session,
    *,
    user_id: int,
    lesson_id: str,
    answers: Iterable[tuple[str, bool]],
    now: datetime,
    scheduler: Scheduler | None = None,
) -> None:
    """Rate each (question id, right?) of a stored attempt, making cards for new questions.

    Runs inside the caller's write transaction (record_attempt's): the attempt and its cards
    are stored together or not at all. INSERT ... ON CONFLICT DO NOTHING then SELECT ... FOR
    UPDATE, so two attempts at once neither fail on the key nor lose a review.
    """
    answers = dict(answers)
    if not answers:
        return
    fresh = new_card(now)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Statements with parameter lists (executemany), not values built per attempt: compiled
    # once and cached, they cost a third of what a multi-row VALUES compiled each time did.
    session.execute(
        insert(ReviewCard).on_conflict_do_nothing(index_elements=["user_id", "question_id"]),
        [
            {
                "user_id": user_id,
                "question_id": question_id,
                "lesson_id": lesson_id,
                "state": fresh.state,
                "step": fresh.step,
                "due": fresh.due,
                "reviews": 0,
                "lapses": 0,
                "created_at": now,
            }
            for question_id in sorted(answers)  # one lock order for every writer
        ],
    )
    rows = session.execute(
        select(ReviewCard.question_id, *(getattr(ReviewCard, name) for name in _STATE))
        .where(ReviewCard.user_id == user_id, ReviewCard.question_id.in_(answers))
        .order_by(ReviewCard.question_id)
        .with_for_update()
    ).all()
    updates = []
    for row in rows:
        state = review(card_state(row), correct=answers[row.question_id], now=now,
                       scheduler=scheduler)  # fmt: skip
        updates.append(
            {"user_id": user_id, "question_id": row.question_id, "lesson_id": lesson_id}
            | {name: getattr(state, name) for name in _STATE}
        )
    if updates:
        session.execute(update(ReviewCard), updates)  # by primary key, one executemany


class Scheduled(Protocol):
    """What the due list needs of a card: a ReviewCard, or a row of `cards`."""

    question_id: str
    lesson_id: str
    due: datetime
    last_review: datetime | None
    reviews: int


def cards(session: Session, *, user_id: int) -> Sequence[Scheduled]:
    """Every card of the learner, earliest due first, as rows of the columns the list needs."""
    # Plain rows, not ORM objects: the course page asks on every load, and building objects
    # for a few hundred cards cost ten times the query.
    return session.execute(
        select(
            ReviewCard.question_id,
            ReviewCard.lesson_id,
            ReviewCard.due,
            ReviewCard.last_review,
            ReviewCard.reviews,
        )
        .where(ReviewCard.user_id == user_id)
        .order_by(ReviewCard.due, ReviewCard.question_id)
    ).all()  # type: ignore[return-value]


def get_card(session: Session, *, user_id: int, question_id: str) -> ReviewCard | None:
    """The learner's card for a question; someone else's is None, like a missing one."""
    if len(question_id) > 100 or not ID_PATTERN.fullmatch(question_id):
        return None  # no question has that id (and PostgreSQL refuses NUL in text)
    return session.get(ReviewCard, (user_id, question_id))


class NotDue(Exception):
    """The card is not due (any more): answered meanwhile, or never due yet."""


def answer_card(
    session: Session,
    *,
    user_id: int,
    question_id: str,
    correct: bool,
    now: datetime,
    reviews: int,
    scheduler: Scheduler | None = None,
) -> CardState:
    """Rate a due card at `now`; NotDue (nothing written) unless it is still due and still has
    the `reviews` it was shown with (so one question shown once is scheduled once)."""
    begin_write(session)
    try:
        row = session.scalars(
            select(ReviewCard)
            .where(ReviewCard.user_id == user_id, ReviewCard.question_id == question_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if row is None or row.due > now or row.reviews != reviews:
            raise NotDue(question_id)
        state = review(card_state(row), correct=correct, now=now, scheduler=scheduler)
        _apply(row, state)
        commit(session)
    except BaseException:
        session.rollback()
        raise
    return state
