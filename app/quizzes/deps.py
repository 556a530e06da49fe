"""Who is taking a quiz: the key that orders their options."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from ..accounts.deps import user_of
from ..accounts.progress import attempt_round
from .service import Learner


async def get_learner(request: Request) -> Learner:
    """A signed-in learner (the order changes with each attempt: round = attempts so far), or a
    guest known by the signed visitor cookie (round 0)."""
    user = await user_of(request)
    if user is None:
        return Learner(key=f"visitor:{request.state.visitor}")
    lesson_id = request.path_params.get("lesson_id", "")
    rounds = await run_in_threadpool(_round, request, user.id, lesson_id) if lesson_id else 0
    return Learner(key=f"user:{user.id}", round=rounds, user_id=user.id)


def _round(request: Request, user_id: int, lesson_id: str) -> int:
    with request.app.state.db.session() as session:
        return attempt_round(session, user_id=user_id, lesson_id=lesson_id)


LearnerDep = Annotated[Learner, Depends(get_learner)]
