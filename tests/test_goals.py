"""Goals (`METRIC OP NUMBER` joined by `and`): strict parsing, and evaluation on real runs."""

from __future__ import annotations

import itertools

import pytest

from app.content.goals import METRICS, GoalError, Term, parse_goal
from app.training.nn import parameter_count
from app.training.runner import train

OPS = (">=", "<=", ">", "<")
#: A threshold each metric may take.
VALUES = {
    "test_accuracy": "0.9",
    "train_accuracy": "0.85",
    "final_loss": "0.25",
    "parameters": "2000",
    "epochs_to(0.8)": "12",
}
XOR = {"dataset": "xor", "hidden_layers": [8], "learning_rate": 0.5, "epochs": 8}
#: xor with this learning rate overflows in its first epoch.
DIVERGING = {
    "dataset": "xor",
    "hidden_layers": [16, 16],
    "learning_rate": 100,
    "batch_size": 8,
    "epochs": 5,
}


@pytest.fixture(scope="module")
def xor_run() -> dict:
    return train(XOR)


@pytest.fixture(scope="module")
def diverged_run() -> dict:
    run = train(DIVERGING)
    assert run["status"] == "diverged"
    return run


@pytest.mark.parametrize(("metric", "op"), list(itertools.product(VALUES, OPS)))
def test_every_metric_parses_with_every_operator(metric, op):
    text = f"{metric} {op} {VALUES[metric]}"
    (term,) = parse_goal(text).terms
    assert term.name == metric
    assert term.op == op
    assert term.value == float(VALUES[metric])
    assert term.text == text
    assert term.metric in METRICS


def test_terms_join_with_and_and_spacing_is_free():
    goal = parse_goal("test_accuracy>=0.9   and parameters<=2000 and\tepochs_to(0.75)<30")
    assert [t.text for t in goal.terms] == [
        "test_accuracy >= 0.9",
        "parameters <= 2000",
        "epochs_to(0.75) < 30",
    ]
    assert goal.terms[2] == Term("epochs_to", "<", 30.0, 0.75)
    assert goal.text == "test_accuracy>=0.9 and parameters<=2000 and epochs_to(0.75)<30"


def test_status_terms_are_for_claims_only():
    goal = parse_goal("status == diverged", allow_status=True)
    assert goal.terms == (Term("status", "==", "diverged"),)
    assert parse_goal("status == completed and test_accuracy > 0.5", allow_status=True)
    with pytest.raises(GoalError, match="status cannot be a goal here"):
        parse_goal("status == diverged")


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "the goal is empty"),
        ("test_acc > 0.5", 1, "unknown metric 'test_acc'"),
        ("test_accuracy", 14, "expected >=, <=, > or < after test_accuracy"),
        ("test_accuracy = 0.9", 15, "expected >=, <=, > or < after test_accuracy, found '='"),
        ("test_accuracy == 0.9", 15, "found '=='"),
        ("test_accuracy => 0.9", 15, "found '=>'"),
        ("test_accuracy >= 90", 18, "test_accuracy is a fraction between 0 and 1, not 90"),
        ("test_accuracy >= 90%", 20, "percentages are not numbers here"),
        ("train_accuracy > -0.1", 18, "train_accuracy is a fraction between 0 and 1"),
        ("test_accuracy >= abc", 18, "expected a number after the operator, found 'abc'"),
        ("test_accuracy >= 0.9x", 18, "found '0.9x'"),
        ("test_accuracy < 1e999", 17, "1e999 is not a finite number"),
        ("parameters <= 2,000", 16, "a comma in a number"),
        ("parameters <= 10.5", 15, "parameters is a whole number, not 10.5"),
        ("final_loss < -1", 14, "a loss is never negative"),
        ("epochs_to 0.9 <= 3", 1, "epochs_to needs the test accuracy to reach"),
        ("epochs_to(0.9 <= 3", 1, "epochs_to needs the test accuracy to reach"),
        ("epochs_to(1.5) <= 3", 11, "epochs_to's accuracy is a fraction above 0"),
        ("epochs_to(0.9) <= 2.5", 19, "epochs_to is a whole number"),
        ("test_accuracy >= 0.9 and", 25, "expected a metric, found the end of the goal"),
        ("test_accuracy >= 0.9 or final_loss < 1", 22, "expected 'and' or the end"),
        ("test_accuracy >= 0.9 && final_loss < 1", 22, "found '&'"),
        ("test_accuracy >= 0.9 final_loss < 1", 22, "found 'final_loss'"),
        ("0.9 <= test_accuracy", 1, "expected a metric, found '0.9'"),
        ("status >= 1", 8, "expected '==' after status"),
        ("status == done", 11, "expected completed or diverged"),
    ],
)
def test_a_bad_goal_says_what_is_wrong_and_where(text, column, message):
    with pytest.raises(GoalError) as caught:
        parse_goal(text, allow_status=True)
    assert message in caught.value.message
    assert caught.value.column == column


def test_hints_point_at_the_fix():
    hints = {}
    for text in ("test_acc > 0.5", "test_accuracy >= 90", "test_accuracy > 0.5 or final_loss < 1"):
        with pytest.raises(GoalError) as caught:
            parse_goal(text)
        hints[text] = caught.value.hint
    assert hints == {
        "test_acc > 0.5": "did you mean test_accuracy?",
        "test_accuracy >= 90": "write 0.9 for 90%",
        "test_accuracy > 0.5 or final_loss < 1": "every term must hold: join terms with 'and'",
    }


def test_a_goal_that_is_not_text_or_too_long_is_refused():
    with pytest.raises(GoalError, match="a goal is text"):
        parse_goal(0.9)
    with pytest.raises(GoalError, match="at most 1000 characters"):
        parse_goal("test_accuracy > 0.1 and " * 50)
    with pytest.raises(GoalError, match="at most 16 terms"):
        parse_goal(" and ".join(["test_accuracy > 0.1"] * 17))


def test_every_metric_is_measured_from_a_real_run(xor_run):
    history = xor_run["history"]
    reached = next(row["epoch"] for row in history if row["test_accuracy"] >= 0.9)
    goal = parse_goal(
        "test_accuracy > 0.9 and train_accuracy > 0.8 and final_loss < 1 and parameters <= 42 "
        "and epochs_to(0.9) <= 8",
        allow_status=True,
    )
    outcomes = goal.evaluate(xor_run)
    assert [o.measured for o in outcomes] == [
        xor_run["test_accuracy"],
        xor_run["train_accuracy"],
        history[-1]["loss"],
        parameter_count([2, 8, 2]),
        reached,
    ]
    assert xor_run["parameters"] == 42
    assert all(o.held for o in outcomes)
    assert goal.holds(xor_run)


def test_a_failed_term_reads_as_the_figure_against_its_bound(xor_run):
    accuracy = xor_run["test_accuracy"]
    (outcome,) = parse_goal("test_accuracy >= 0.999").evaluate(xor_run)
    assert not outcome.held
    assert outcome.describe() == f"test_accuracy {accuracy:.4g} < 0.999"
    (outcome,) = parse_goal("parameters < 42").evaluate(xor_run)
    assert outcome.describe() == "parameters 42 >= 42"
    (outcome,) = parse_goal("parameters <= 42").evaluate(xor_run)
    assert outcome.held and outcome.describe() == "parameters 42 <= 42"


def test_an_accuracy_never_reached_fails_epochs_to(xor_run):
    (outcome,) = parse_goal("epochs_to(1) < 1000").evaluate(xor_run)
    assert max(row["test_accuracy"] for row in xor_run["history"]) < 1
    assert outcome.measured is None and not outcome.held
    assert outcome.describe() == "epochs_to(1): test accuracy never reached 1"


def test_a_diverged_run_has_no_final_loss_and_holds_status_diverged(diverged_run):
    goal = parse_goal("status == diverged and final_loss < 100", allow_status=True)
    status, loss = goal.evaluate(diverged_run)
    assert status.held and status.describe() == "status diverged == diverged"
    assert not loss.held and loss.measured is None
    assert loss.describe() == "final_loss: not finite (the run diverged)"
    (completed,) = parse_goal("status == completed", allow_status=True).evaluate(diverged_run)
    assert completed.describe() == "status diverged != completed"


def test_terms_are_json_for_the_quiz_api():
    goal = parse_goal("test_accuracy >= 0.9 and epochs_to(0.8) <= 20")
    assert [t.as_dict() for t in goal.terms] == [
        {"metric": "test_accuracy", "op": ">=", "value": 0.9},
        {"metric": "epochs_to", "op": "<=", "value": 20.0, "accuracy": 0.8},
    ]
