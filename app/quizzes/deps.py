"""Who is taking a quiz: the key of their answer ids and order, and their record at the lesson."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from ..accounts.deps import user_of
from ..accounts.progress import attempt_state, guest_state
from ..content import Quiz
from ..hashing import keyed_hasher
from .service import Learner


def guest_id(secret: str, visitor: str) -> str:
    """What guest_attempts stores for a visitor: a keyed hash, never the cookie's id itself."""
    hasher = keyed_hasher("guest-attempts", secret, 16).copy()
    hasher.update(visitor.encode())
    return hasher.hexdigest()


def tracks_guests(quiz: Quiz | None) -> bool:
    """Whether a guest's attempts at this quiz are counted: only when the quiz needs it."""
    return quiz is not None and (
        quiz.max_attempts is not None or quiz.review_answers == "after-pass"
    )


async def get_learner(request: Request) -> Learner:
    """The signed-in learner or the guest (by visitor cookie), with their record at the lesson."""
    # A learner's order changes with each attempt (round = attempts so far); a guest's is round 0.
    user = await user_of(request)
    lesson_id = request.path_params.get("lesson_id", "")
    if user is None:
        visitor = request.state.visitor
        lesson = request.app.state.course.get(lesson_id) if lesson_id else None
        if lesson is None or not tracks_guests(lesson.quiz):
            return Learner(key=f"visitor:{visitor}")  # no database work for most guests
        hashed = guest_id(request.app.state.secret, visitor)
        attempts, passed = await run_in_threadpool(_guest, request, hashed, lesson_id)
        return Learner(key=f"visitor:{visitor}", attempts=attempts, passed=passed)
    attempts, passed = (
        await run_in_threadpool(_state, request, user.id, lesson_id) if lesson_id else (0, False)
    )
    return Learner(
        key=f"user:{user.id}", round=attempts, user_id=user.id, attempts=attempts, passed=passed
    )


def _state(request: Request, user_id: int, lesson_id: str) -> tuple[int, bool]:
    with request.app.state.db.session() as session:
        return attempt_state(session, user_id=user_id, lesson_id=lesson_id)


def _guest(request: Request, visitor: str, lesson_id: str) -> tuple[int, bool]:
    with request.app.state.db.session() as session:
        return guest_state(session, visitor=visitor, lesson_id=lesson_id)


LearnerDep = Annotated[Learner, Depends(get_learner)]
