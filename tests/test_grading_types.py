"""Grading every question type (pure functions): exact sets, tolerances, number spellings, orders,
answer shapes, and option and item ids keyed per learner."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.content import load_course
from app.quizzes.grading import (
    AnswerError,
    AnswerIds,
    Invalid,
    grade,
    item_order,
    stored_answer,
    stored_correct,
)

EVERY_TYPE = Path(__file__).parent / "fixtures" / "question-types"
SECRET = "grading-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def quiz():
    return load_course(EVERY_TYPE).get("every-type").quiz


def result_of(quiz, question, value, ids=None):
    """The result of answering one question (the others left unanswered)."""
    graded = grade(quiz, {question.id: value}, lesson_id="every-type", pass_percent=50, ids=ids)
    return next(r for r in graded.results if r.question_id == question.id)


def ids_by_text(question) -> dict[str, str]:
    return {o.html: o.id for o in (*question.options, *question.items)}


# multiple select: exactly the marked set ---------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "right"),
    [
        (["ReLU", "tanh"], True),
        (["tanh", "ReLU"], True),  # order does not matter
        (["ReLU"], False),  # a subset
        (["ReLU", "tanh", "Adam"], False),  # a superset
        (["Adam", "Dropout"], False),
        ([], False),  # answered with nothing chosen
    ],
)
def test_multiple_select_is_right_only_for_exactly_the_marked_set(quiz, chosen, right):
    question = quiz.questions[1]
    by_text = ids_by_text(question)
    result = result_of(quiz, question, [by_text[t] for t in chosen])
    assert result.correct is right
    assert result.answer == frozenset(by_text[t] for t in chosen)
    assert stored_answer(result) == [o.id for o in question.options if o.html in chosen]
    assert stored_correct(result) == [by_text["ReLU"], by_text["tanh"]]


def test_a_select_all_question_with_one_mark_takes_a_list_and_one_right_option(quiz):
    question = quiz.questions[2]
    right = ids_by_text(question)["Cross-entropy"]
    assert result_of(quiz, question, [right]).correct
    with pytest.raises(AnswerError, match="must be a list of option ids"):
        result_of(quiz, question, right)


def test_feedback_is_that_of_the_chosen_options(quiz):
    question = quiz.questions[1]
    by_text = ids_by_text(question)
    result = result_of(quiz, question, [by_text["Adam"], by_text["ReLU"]])
    assert result.feedback() == ((by_text["Adam"], "Adam is an optimiser, not an activation."),)
    assert result_of(quiz, question, [by_text["ReLU"]]).feedback() == ()


# numeric: tolerances and spellings ---------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["0.5", ".5", "5e-1", "0.50", " 0 . 5 ", "0.49", "0.51", "+.5", "50e-2", 0.5, 0.51]
)
def test_a_number_in_any_accepted_spelling_within_the_absolute_tolerance_is_right(quiz, typed):
    result = result_of(quiz, quiz.questions[3], typed)
    assert result.correct and result.note is None


@pytest.mark.parametrize("typed", ["0.48", "0.52", "-0.5", "5", 0, 1])
def test_a_number_outside_the_absolute_tolerance_is_wrong(quiz, typed):
    result = result_of(quiz, quiz.questions[3], typed)
    assert not result.correct and result.note is None


@pytest.mark.parametrize(
    ("typed", "right"),
    [
        ("95", True), ("105", True), ("1.05e2", True), ("100.48", True), ("94.99", False),
        ("105.01", False), ("-100", False), (100, True),
    ],
)  # fmt: skip
def test_a_relative_tolerance_is_a_percentage_of_the_value_and_any_line_may_match(
    quiz, typed, right
):
    assert result_of(quiz, quiz.questions[4], typed).correct is right


@pytest.mark.parametrize("typed", ["abc", "0,5", "1/2", "", "nan", "inf", "½", "5e", "x" * 500])
def test_what_is_not_a_number_is_wrong_and_the_review_says_so(quiz, typed):
    result = result_of(quiz, quiz.questions[3], typed)
    assert not result.correct and result.note == "not a number"
    assert stored_answer(result) == {"text": typed[:100], "value": None}


def test_nan_and_infinity_sent_as_json_numbers_are_not_numbers(quiz):
    for value in (float("nan"), float("inf"), 10**5000):
        assert result_of(quiz, quiz.questions[3], value).note == "not a number"


def test_a_numeric_answer_is_stored_as_text_and_value_and_the_right_one_as_value_and_tolerance(
    quiz,
):
    result = result_of(quiz, quiz.questions[4], " 96 ")
    assert stored_answer(result) == {"text": " 96 ", "value": 96.0}
    assert stored_correct(result) == {"value": 100.0, "tolerance": 5.0}
    exact = result_of(quiz, quiz.questions[4], "100.48")
    assert stored_correct(exact)["value"] == 100.0  # the first line matched first


@pytest.mark.parametrize("value", [True, ["0.5"], {"value": 0.5}])
def test_a_numeric_answer_of_the_wrong_shape_is_refused_naming_the_question(quiz, value):
    question = quiz.questions[3]
    with pytest.raises(AnswerError, match=f"question '{question.id}' \\(numeric\\) must be a num"):
        result_of(quiz, question, value)


# ordering: the whole order, exactly ---------------------------------------------------------


def test_an_ordering_is_right_only_in_exactly_the_written_order(quiz):
    question = quiz.questions[5]
    order = [i.id for i in question.items]
    assert result_of(quiz, question, order).correct
    swapped = [order[1], order[0], *order[2:]]
    result = result_of(quiz, question, swapped)
    assert not result.correct and stored_answer(result) == swapped
    assert stored_correct(result) == order
    assert not result_of(quiz, question, order[::-1]).correct


@pytest.mark.parametrize(
    "change",
    [
        lambda order: order[:-1],  # an item missing
        lambda order: [*order, order[0]],  # an item twice
        lambda order: [*order[:-1], order[0]],
        lambda order: "".join(order),  # not a list
        lambda order: [*order[:-1], 7],  # not all ids
    ],
)
def test_an_ordering_that_is_not_every_item_once_is_refused_naming_the_question(quiz, change):
    question = quiz.questions[5]
    with pytest.raises(AnswerError, match=f"question '{question.id}' \\(ordering\\)"):
        result_of(quiz, question, change([i.id for i in question.items]))


def test_an_item_of_another_question_or_an_option_is_refused_by_name(quiz):
    ordering, single = quiz.questions[5], quiz.questions[0]
    order = [i.id for i in ordering.items]
    with pytest.raises(AnswerError, match=f"belongs to question '{single.id}'"):
        result_of(quiz, ordering, [*order[:-1], single.options[0].id])


def test_an_unreadable_form_order_is_wrong_with_its_reason(quiz):
    result = result_of(quiz, quiz.questions[5], Invalid("each position once"))
    assert (result.correct, result.note, stored_answer(result)) == (
        False,
        "each position once",
        None,
    )


def test_an_ordering_is_never_shown_in_its_right_order(quiz):
    question = quiz.questions[5]
    orders = {
        tuple(i.id for i in item_order(question, secret=SECRET, learner_key=f"g{n}"))
        for n in range(200)
    }
    assert tuple(i.id for i in question.items) not in orders
    assert len(orders) > 12  # the other 23 orders of four items are all in use


# single choice and shapes -----------------------------------------------------------------


@pytest.mark.parametrize("value", [3, ["o1"], {"id": "o1"}, True])
def test_a_single_choice_answer_that_is_not_one_id_is_refused_naming_the_question(quiz, value):
    question = quiz.questions[0]
    with pytest.raises(AnswerError, match=f"question '{question.id}' \\(single choice\\)"):
        result_of(quiz, question, value)


def test_null_or_absent_is_unanswered_and_wrong_for_every_type(quiz):
    graded = grade(
        quiz,
        {q.id: None for q in quiz.questions[:3]},
        lesson_id="every-type",
        pass_percent=50,
    )
    assert graded.score == 0
    assert all(r.answer is None and r.note is None and not r.correct for r in graded.results)


# keyed ids -----------------------------------------------------------------------------------


def test_keyed_ids_are_stable_per_learner_different_between_learners_and_secrets(quiz):
    ada = AnswerIds(quiz, secret=SECRET, learner_key="user:1")
    again = AnswerIds(quiz, secret=SECRET, learner_key="user:1")
    bob = AnswerIds(quiz, secret=SECRET, learner_key="user:2")
    other_site = AnswerIds(quiz, secret=SECRET + "x", learner_key="user:1")
    assert ada.public == again.public
    content = set(ada.public)
    assert content == {c.id for q in quiz.questions for c in (*q.options, *q.items)}
    for ids in (ada, bob, other_site):
        assert not content & set(ids.canonical)  # never the content's own ids
    assert not set(ada.canonical) & set(bob.canonical)
    assert not set(ada.canonical) & set(other_site.canonical)


def test_each_type_is_graded_through_the_learners_own_ids(quiz):
    ids = AnswerIds(quiz, secret=SECRET, learner_key="visitor:abc")
    single, multiple, _, numeric, _, ordering, _ = quiz.questions
    mine = ids.to_public
    answers = {
        single.id: mine(single.correct_option.id),
        multiple.id: [mine(o.id) for o in multiple.correct_options],
        numeric.id: "0.5",
        ordering.id: [mine(i.id) for i in ordering.items],
    }
    graded = grade(quiz, answers, lesson_id="every-type", pass_percent=50, ids=ids)
    assert [r.correct for r in graded.results] == [True, True, False, True, False, True, False]
    assert graded.results[0].answer == single.correct_option.id  # stored in content ids


@pytest.mark.parametrize("index", [0, 1, 5])
def test_another_learners_ids_or_the_contents_own_are_refused(quiz, index):
    question = quiz.questions[index]
    ada = AnswerIds(quiz, secret=SECRET, learner_key="user:1")
    bob = AnswerIds(quiz, secret=SECRET, learner_key="user:2")
    choices = [c.id for c in (*question.options, *question.items)]
    for foreign in ([ada.to_public(c) for c in choices], choices):
        value = foreign[0] if question.type == "single" else foreign
        with pytest.raises(AnswerError, match=f"unknown (option|item) id .* '{question.id}'"):
            grade(quiz, {question.id: value}, lesson_id="every-type", pass_percent=50, ids=bob)
