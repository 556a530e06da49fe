"""Who is taking a quiz: the key that orders their options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..accounts.progress import attempt_round
from ..deps import OptionalUser, SessionDep


@dataclass(frozen=True, slots=True)
class Learner:
    """`key` seeds the option order; `round` changes it between attempts."""

    key: str
    round: int = 0
    user_id: int | None = None


def get_learner(request: Request, user: OptionalUser, session: SessionDep) -> Learner:
    """A signed-in learner (their order changes with each attempt), or a guest known by the
    signed visitor cookie (round 0)."""
    if user is not None:
        lesson_id = request.path_params.get("lesson_id", "")
        rounds = attempt_round(session, user_id=user.id, lesson_id=lesson_id) if lesson_id else 0
        return Learner(key=f"user:{user.id}", round=rounds, user_id=user.id)
    return Learner(key=f"visitor:{request.state.visitor}")


LearnerDep = Annotated[Learner, Depends(get_learner)]
