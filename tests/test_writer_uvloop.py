"""The attempt writer under uvloop (the server's loop) with an answer of tens of KiB: read whole.

uvloop leaves a descriptor it watched non-blocking, so the writer's answer to a batch, when it was
still being written, was read halfway, taken for a dead writer, and every attempt of the batch was
told "may or may not be stored" instead of what really happened to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvloop

from app.accounts.writer import MAX_BATCH, AttemptWriter, WriterFailed
from app.db import Database, upgrade
from app.models import User
from app.quizzes.grading import Grade, QuestionResult


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    database = Database.open(database_url)
    upgrade(database.engine)
    yield database
    database.close()


def on_uvloop(db: Database, entries: list[tuple[int, Grade]], rounds: int) -> list[Any]:
    """Record every entry at once, `rounds` times, through one AttemptWriter on a uvloop loop in a
    thread of its own; the outcomes of every round."""
    outcome: list = []

    async def run() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        writer = AttemptWriter(db)
        try:
            for _ in range(rounds):
                outcome.extend(
                    await asyncio.gather(
                        *(writer.record(user_id=u, grade=g) for u, g in entries),
                        return_exceptions=True,
                    )
                )
        finally:
            writer.close()

    thread = threading.Thread(target=lambda: uvloop.run(run()))
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    return outcome


def test_a_full_batch_of_failures_reaches_each_attempt_whole_under_uvloop(db):
    with db.session() as session:
        user = User(username="a", username_key="a", password_hash="x")
        session.add(user)
        session.commit()
        user_id = user.id
    twice = QuestionResult("q1", "q1-o0", "q1-o0", True, None)
    bad = Grade("lesson-a", 1, 2, 50.0, False, 80, (twice, twice))  # the same question twice
    # each entry fails alone with its own database error of a few hundred bytes: the answer to
    # the batch is far over the 16 KiB multiprocessing writes in two parts; three rounds, as
    # catching such an answer half-written is a race
    outcomes = on_uvloop(db, [(user_id, bad)] * MAX_BATCH, rounds=3)
    assert len(outcomes) == 3 * MAX_BATCH
    for outcome in outcomes:
        assert isinstance(outcome, WriterFailed) and "IntegrityError" in str(outcome), outcome
