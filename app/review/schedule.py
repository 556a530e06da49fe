"""FSRS scheduling of review cards, and the order due questions are served in; pure functions.

A thin wrapper around `fsrs.Scheduler`: a right answer is rated `Good`, a wrong one `Again`, and
every time is an aware UTC datetime. The scheduler keeps FSRS-6's default parameters and
desired retention (0.9) with one learning and one relearning step of ten minutes: a question
missed comes back in ten minutes, one answered right goes out by days (FSRS's own defaults, a
1-minute then a 10-minute step, would bring every question of a quiz back within ten minutes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from fsrs import Card, Rating, Scheduler, State

T = TypeVar("T")

LEARNING_STEPS = (timedelta(minutes=10),)
RELEARNING_STEPS = (timedelta(minutes=10),)
#: the longest a question goes unreviewed: a course is not a language deck kept for life
MAXIMUM_INTERVAL_DAYS = 365


#: The question types a review asks again. Anything else (an experiment, graded by a training
#: run of the learner's own configuration) is left out: a review answers at once, without a run.
REVIEWABLE_TYPES = frozenset({"single", "multiple", "numeric", "ordering"})


def reviewable(question_type: str) -> bool:
    """Whether questions of this type become review cards."""
    return question_type in REVIEWABLE_TYPES


def make_scheduler(*, fuzz: bool = True) -> Scheduler:
    """The site's FSRS scheduler; `fuzz` spreads intervals of a few days by up to ±15%."""
    return Scheduler(
        learning_steps=LEARNING_STEPS,
        relearning_steps=RELEARNING_STEPS,
        maximum_interval=MAXIMUM_INTERVAL_DAYS,
        enable_fuzzing=fuzz,
    )


@dataclass(frozen=True, slots=True)
class CardState:
    """What a review card stores: the `fsrs.Card` fields and counts of reviews and lapses."""

    state: int
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reviews: int = 0
    lapses: int = 0


def new_card(now: datetime) -> CardState:
    """A card never reviewed, due at `now` (what FSRS starts every card from)."""
    return CardState(State.Learning.value, 0, None, None, _utc(now), None)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("review times must be aware UTC datetimes")
    return moment.astimezone(UTC)


def rating_for(correct: bool) -> Rating:
    """Right is `Good`, wrong (or unanswered) is `Again`."""
    return Rating.Good if correct else Rating.Again


def review(
    card: CardState, *, correct: bool, now: datetime, scheduler: Scheduler | None = None
) -> CardState:
    """The card after one answer at `now`: FSRS's new state and due time."""
    scheduler = scheduler or make_scheduler()
    before = Card(
        card_id=0,  # fsrs sleeps a millisecond to invent an id; ours is (learner, question)
        state=State(card.state),
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=_utc(card.due),
        last_review=_utc(card.last_review) if card.last_review else None,
    )
    after, _ = scheduler.review_card(before, rating_for(correct), review_datetime=_utc(now))
    return CardState(
        state=after.state.value,
        step=after.step,
        stability=after.stability,
        difficulty=after.difficulty,
        due=_utc(after.due),
        last_review=_utc(after.last_review) if after.last_review else None,
        reviews=card.reviews + 1,
        lapses=card.lapses + (0 if correct else 1),
    )


STATE_NAMES = {State.Learning.value: "learning", State.Review.value: "review",
               State.Relearning.value: "relearning"}  # fmt: skip


def spread(items: Sequence[T], *, lesson: Callable[[T], str], after: str | None = None) -> list[T]:
    """`items` (earliest due first) reordered so no two of one lesson come one after the other.

    Each next item is the earliest due whose lesson differs from the one before (`after` before
    the first) and that leaves an order without neighbours of one lesson possible; only where
    none exists (one lesson holds more than half of what is left) do two meet.
    """
    left = list(items)
    counts = Counter(lesson(item) for item in left)
    order: list[T] = []
    previous = after
    while left:
        pick = next(
            (
                i
                for i, item in enumerate(left)
                if lesson(item) != previous and _arrangeable(counts, lesson(item))
            ),
            None,
        )
        if pick is None:  # no order avoids a pair: take the earliest of another lesson, if any
            pick = next((i for i, item in enumerate(left) if lesson(item) != previous), 0)
        item = left.pop(pick)
        counts[lesson(item)] -= 1
        order.append(item)
        previous = lesson(item)
    return order


def _arrangeable(counts: Counter[str], taken: str) -> bool:
    """Whether, once one of `taken` is served, the rest can follow with no neighbours alike."""
    # n items can be lined up without two alike side by side, the first not `taken`, iff no
    # lesson holds more than (n + 1) // 2 of them and `taken` no more than n // 2.
    rest = sum(counts.values()) - 1
    for name, count in counts.items():
        count -= name == taken
        if count > (rest // 2 if name == taken else (rest + 1) // 2):
            return False
    return True


def due_phrase(due: datetime, now: datetime) -> str:
    """When a due time falls, as a reader says it: "now", "in 10 minutes", "in 3 days"."""
    seconds = (_utc(due) - _utc(now)).total_seconds()
    if seconds <= 0:
        return "now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size or unit == "minute":
            count = max(1, round(seconds / size))
            return f"in {count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")
