"""Who is taking a quiz: the key that orders their options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request


@dataclass(frozen=True, slots=True)
class Learner:
    """`key` seeds the option order; `round` changes it between attempts."""

    key: str
    round: int = 0
    user_id: int | None = None


async def get_learner(request: Request) -> Learner:
    """A guest, known by the signed visitor cookie."""
    return Learner(key=f"visitor:{request.state.visitor}")


LearnerDep = Annotated[Learner, Depends(get_learner)]
