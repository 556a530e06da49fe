"""The pure core of spaced review: FSRS ratings and intervals, the spreading order, due phrases,
and migration 0006 up and down."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fsrs import Rating
from hypothesis import given
from hypothesis import strategies as st

from app.db import current_revision, downgrade, make_engine, upgrade
from app.review.schedule import (
    due_phrase,
    make_scheduler,
    new_card,
    rating_for,
    review,
    reviewable,
    spread,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
EXACT = make_scheduler(fuzz=False)


def test_a_right_answer_is_rated_good_and_a_wrong_one_again():
    assert rating_for(True) is Rating.Good and rating_for(False) is Rating.Again


def test_right_answers_push_a_card_out_ever_further_and_a_wrong_one_brings_it_back_in_minutes():
    card, now, intervals = new_card(NOW), NOW, []
    for _ in range(5):
        card = review(card, correct=True, now=now, scheduler=EXACT)
        intervals.append(card.due - now)
        now = card.due
    assert intervals[0] >= timedelta(days=1)  # one learning step: right graduates at once
    assert all(b > a for a, b in zip(intervals, intervals[1:], strict=False)), intervals
    lapsed = review(card, correct=False, now=now, scheduler=EXACT)
    assert lapsed.due - now == timedelta(minutes=10) and lapsed.lapses == 1
    assert lapsed.reviews == 6 and lapsed.stability < card.stability
    first_wrong = review(new_card(NOW), correct=False, now=NOW, scheduler=EXACT)
    assert first_wrong.due - NOW == timedelta(minutes=10) and first_wrong.state == 1


def test_times_must_be_aware_and_come_back_in_utc():
    with pytest.raises(ValueError):
        review(new_card(NOW), correct=True, now=datetime(2026, 12, 1))
    from zoneinfo import ZoneInfo

    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    card = review(new_card(paris), correct=False, now=paris, scheduler=EXACT)
    assert card.due.tzinfo is UTC and card.due == NOW + timedelta(minutes=10)


def test_only_questions_answered_at_once_become_cards():
    assert all(reviewable(t) for t in ("single", "multiple", "numeric", "ordering"))
    assert not reviewable("experiment")


def test_spreading_alternates_lessons_and_starts_away_from_the_one_just_answered():
    items = ["a1", "a2", "a3", "b1", "b2", "c1"]
    lesson = lambda item: item[0]  # noqa: E731
    assert spread(items, lesson=lesson) == ["a1", "b1", "a2", "b2", "a3", "c1"]
    assert spread(items, lesson=lesson, after="a") == ["b1", "a1", "b2", "a2", "c1", "a3"]
    # the earliest due wait when serving them would leave one lesson's questions bunched up
    assert spread(["b1", "c1", "a1", "a2", "a3"], lesson=lesson) == ["a1", "b1", "a2", "c1", "a3"]
    assert spread(["a1", "a2"], lesson=lesson, after="a") == ["a1", "a2"]  # nothing else to give


@given(st.lists(st.sampled_from("abcd"), max_size=40), st.sampled_from([None, "a", "b"]))
def test_spreading_never_puts_one_lessons_questions_side_by_side_when_it_can_be_avoided(
    lessons, after
):
    items = [f"{name}{i}" for i, name in enumerate(lessons)]
    order = spread(items, lesson=lambda item: item[0], after=after)
    assert sorted(order) == sorted(items)
    for name in set(lessons):  # each lesson's own questions keep their due order
        mine = [item for item in order if item[0] == name]
        assert mine == [item for item in items if item[0] == name]
    counts, n = Counter(lessons), len(lessons)
    possible = all(
        count <= (n // 2 if name == after else (n + 1) // 2) for name, count in counts.items()
    )
    sequence = [after, *[item[0] for item in order]]
    pairs = sum(1 for x, y in zip(sequence, sequence[1:], strict=False) if x == y)
    if possible:
        assert pairs == 0, order


def test_a_due_time_reads_as_people_say_it():
    assert due_phrase(NOW, NOW) == "now"
    assert due_phrase(NOW - timedelta(days=3), NOW) == "now"
    assert due_phrase(NOW + timedelta(seconds=20), NOW) == "in 1 minute"
    assert due_phrase(NOW + timedelta(minutes=10), NOW) == "in 10 minutes"
    assert due_phrase(NOW + timedelta(hours=1), NOW) == "in 1 hour"
    assert due_phrase(NOW + timedelta(hours=5, minutes=20), NOW) == "in 5 hours"
    assert due_phrase(NOW + timedelta(days=11, hours=3), NOW) == "in 11 days"


def test_migration_0006_adds_review_cards_and_reverts_to_0005_without_them(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0005")
        assert "review_cards" not in sa.inspect(engine).get_table_names()
        upgrade(engine, "0006")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("review_cards")}
        assert {"user_id", "question_id", "lesson_id", "state", "step", "stability",
                "difficulty", "due", "last_review", "reviews", "lapses"} <= columns  # fmt: skip
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("review_cards")}
        assert "ix_review_cards_user_id_due" in indexes
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, username, username_key, password_hash, role, "
                    "created_at) VALUES (1, 'ada', 'ada', 'x', 'learner', :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO review_cards (user_id, question_id, lesson_id, state, due, "
                    "reviews, lapses, created_at) VALUES (1, 'q1', 'l', 1, :t, 0, 0, :t)"
                ),
                {"t": NOW},
            )
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(
                    sa.text(
                        "INSERT INTO review_cards (user_id, question_id, lesson_id, state, due, "
                        "reviews, lapses, created_at) VALUES (1, 'q2', 'l', 7, :t, 0, 0, :t)"
                    ),
                    {"t": NOW},
                )
            conn.execute(sa.text("DELETE FROM users"))  # cascades to the user's cards
            assert conn.execute(sa.text("SELECT count(*) FROM review_cards")).scalar() == 0
        downgrade(engine, "0005")
        assert current_revision(engine) == "0005"
        assert "review_cards" not in sa.inspect(engine).get_table_names()
        assert "users" in sa.inspect(engine).get_table_names()
        upgrade(engine)
        assert "review_cards" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
