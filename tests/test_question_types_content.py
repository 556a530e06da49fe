"""Question types in the knowledge check: how each is written, parsed, and refused with its line."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.content import NumericAnswer, load_course, parse_number
from app.content.numbers import parse_numeric_line
from app.training.figures import run_validator

ROOT = Path(__file__).resolve().parent.parent
EVERY_TYPE = Path(__file__).parent / "fixtures" / "question-types"

META = """---
id: quiz
title: A quiz
duration: 5 mins
section: basics
{extra}---

## Knowledge Check

"""  # the first question is on line 10 (11 with one extra front matter line)


def load(folder: Path, check: str, extra: str = "", **kwargs):
    (folder / "quiz.md").write_text(META.format(extra=extra) + check, encoding="utf-8")
    return load_course(folder, **kwargs)


def one_error(folder: Path, check: str, **kwargs) -> tuple[int | None, str]:
    course = load(folder, check, **kwargs)
    (error,) = course.errors
    assert course.lessons == []
    return error.line, error.message


def test_the_fixture_lesson_has_one_question_of_every_type_parsed_as_written():
    course = load_course(EVERY_TYPE, validate_run=run_validator(1e11))
    assert course.problems == []
    quiz = course.get("every-type").quiz
    types = [q.type for q in quiz.questions]
    assert types == ["single", "multiple", "multiple", "numeric", "numeric", "ordering", "single"]
    single, multiple, select_all, numeric, relative, ordering, predict = quiz.questions
    assert [(o.html, o.correct) for o in single.options] == [
        ("ReLU", False), ("Sigmoid", True), ("The identity", False),
    ]  # fmt: skip
    assert single.correct_option == single.options[1]
    assert [o.feedback_html for o in single.options] == [
        None,
        "Right: 1 / (1 + e^-x) never leaves (0, 1).",
        "The identity passes every value through unchanged.",
    ]
    assert single.explanation_html == "The sigmoid is the logistic function."
    assert [o.correct for o in multiple.options] == [True, True, False, False]
    assert multiple.correct_option is None
    assert multiple.options[2].feedback_html == "Adam is an optimiser, not an activation."
    assert multiple.explanation_html.startswith("Adam updates weights")
    assert [o.correct for o in select_all.options] == [True, False, False]
    assert numeric.options == () and numeric.numeric == (
        NumericAnswer(Decimal("0.5"), Decimal("0.01")),
    )
    assert relative.numeric == (
        NumericAnswer(Decimal("100"), Decimal("5"), relative=True),
        NumericAnswer(Decimal("100.48")),
    )
    assert [i.html for i in ordering.items] == [
        "Forward pass", "Compute the loss", "Backward pass", "Update the weights",
    ]  # fmt: skip
    assert ordering.explanation_html.startswith("Gradients need the loss")
    assert predict.run == {
        "dataset": "xor", "hidden_layers": [8], "activation": "relu", "epochs": 40,
        "learning_rate": 0.5, "batch_size": 32, "momentum": 0.0, "init": "he", "seed": 3,
        "noise": None,
    }  # fmt: skip
    assert predict.prompt_html.startswith("Predict: after training")
    ids = [i.id for i in ordering.items] + [o.id for q in quiz.questions for o in q.options]
    assert len(set(ids)) == len(ids)
    assert all(quiz.owners[i.id] == ordering.id for i in ordering.items)


def test_without_a_validator_a_train_block_is_kept_as_written(content_dir):
    check = "1. Predict?\n   ```train\n   dataset: xor\n   epochs: 5\n   ```\n   - yes\n   - no\n"
    course = load(content_dir, check)
    assert course.errors == []
    assert course.get("quiz").quiz.questions[0].run == {"dataset": "xor", "epochs": 5}


def test_lines_inside_a_train_block_are_never_options_or_questions(content_dir):
    check = (
        "1. Predict?\n   ```train\n   dataset: xor\n   hidden_layers:\n     - 4\n     - 2\n"
        "   ```\n   - yes\n   - no\n"
    )
    (question,) = load(content_dir, check).get("quiz").quiz.questions
    assert question.run == {"dataset": "xor", "hidden_layers": [4, 2]}
    assert [o.html for o in question.options] == ["yes", "no"]


def test_a_wrapped_ordering_item_and_a_wrapped_feedback_line_continue_their_own_text(content_dir):
    check = (
        "1. Order\n   1. first\n   part\n   2. second\n\n2. Pick\n   - [x] a\n     > well\n"
        "     done\n   - [ ] b\n"
    )
    ordering, single = load(content_dir, check).get("quiz").quiz.questions
    assert [i.html for i in ordering.items] == ["first part", "second"]
    assert single.options[0].feedback_html == "well done"


def test_a_three_space_numbered_line_under_a_question_is_an_item_and_at_the_margin_a_question(
    content_dir,
):
    check = "1. Order these\n   1. a\n   2. b\n2. Next?\n   - x\n   - y\n"
    first, second = load(content_dir, check).get("quiz").quiz.questions
    assert (first.type, [i.html for i in first.items]) == ("ordering", ["a", "b"])
    assert second.type == "single"


def test_review_answers_and_max_attempts_are_read_from_front_matter(content_dir):
    check = "1. Q?\n   - a\n   - b\n"
    extra = "reviewAnswers: after-pass\nmaxAttempts: 3\n"
    quiz = load(content_dir, check, extra=extra).get("quiz").quiz
    assert (quiz.review_answers, quiz.max_attempts) == ("after-pass", 3)
    plain = load(content_dir, check).get("quiz").quiz
    assert (plain.review_answers, plain.max_attempts) == ("always", None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("reviewAnswers: sometimes\n", "field 'reviewAnswers' is 'sometimes'"),
        ("maxAttempts: 0\n", "field 'maxAttempts' must be a whole number from 1"),
        ("maxAttempts: two\n", "field 'maxAttempts' must be a whole number from 1"),
    ],
)
def test_bad_review_answers_or_max_attempts_are_errors_on_their_line(content_dir, extra, message):
    course = load(content_dir, "1. Q?\n   - a\n   - b\n", extra=extra)
    (error,) = course.errors
    assert error.line == 6 and message in error.message


@pytest.mark.parametrize(
    ("check", "line", "message"),
    [
        ("1. Both?\n   - a\n   - b\n   = 3\n", 13, "mixes options and '=' lines"),
        ("1. Both?\n   = 3\n   1. a\n   2. b\n", 12, "mixes '=' lines and an ordering list"),
        ("1. Value?\n   = three\n", 11, "cannot read '= three'"),
        ("1. Value?\n   = 3 +- -1\n", 11, "tolerance '-1' is not a number of zero or more"),
        ("1. Value?\n   = 3 +- x%\n", 11, "cannot read '= 3 +- x%'"),
        ("1. Value?\n   = 3\n   and more\n", 12, "text after an '=' answer line"),
        ("1. Order\n   1. only one\n", 11, "ordering has 1 item; it needs at least two"),
        ("1. Order\n   1. a\n   2. a\n", 10, "ordering lists the same item twice"),
        ("1. All? (select all that apply)\n   - a\n   - b\n", 10, "marks no option [x]"),
        ("1. Run?\n   ```train\n   dataset: [\n   ```\n   - a\n   - b\n", 12, "invalid YAML"),
        ("1. Run?\n   ```train\n   - xor\n   ```\n   - a\n   - b\n", 11, "must map /train"),
        ("1. Run?\n   ```train\n   epochs: 3\n   - a\n   - b\n", 11, "train block is not closed"),
        ("```train\nepochs: 3\n```\n1. Q?\n   - a\n   - b\n", 10, "before any numbered"),
        (
            "1. Run?\n   ```train\n   a: 1\n   ```\n   ```train\n   b: 1\n   ```\n   - a\n   - b\n",
            14,
            "second train block",
        ),
    ],
)
def test_malformed_question_types_are_errors_on_the_offending_line(
    content_dir, check, line, message
):
    found_line, found = one_error(content_dir, check)
    assert (found_line, message in found) == (line, True), found


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("dataset: mnist\n", "dataset: Input should be"),
        ("epochs: 0\n", "epochs: Input should be greater than or equal to 1"),
        ("layers: [3]\n", "unknown /train field 'layers'"),
        ("dataset: xor\nnoise: 2\n", "noise: Input should be less than or equal to 1"),
        ("hidden_layers: [1024, 1024]\nepochs: 1000\n", "too much work: about"),
    ],
)
def test_a_train_block_that_is_not_valid_train_input_or_over_budget_is_an_error(
    content_dir, block, message
):
    body = "".join(f"   {line}\n" for line in block.splitlines())
    check = f"1. Run?\n   ```train\n{body}   ```\n   - a\n   - b\n"
    line, found = one_error(content_dir, check, validate_run=run_validator(1e11))
    assert line == 11 and "train block is not a run this site can do" in found
    assert message in found


def test_backprop_check_reports_question_type_errors_with_file_and_line(content_dir, tmp_path):
    (content_dir / "quiz.md").write_text(
        META.format(extra="") + "1. Run?\n   ```train\n   epochs: 5000\n   ```\n   - a\n   - b\n"
        "\n2. Value?\n   = about three\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", str(content_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "d")},
    )
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"{content_dir.as_posix()}/quiz.md:11: error: the train block is not a run this site "
        "can do: epochs: Input should be less than or equal to 1000"
    ), result.stdout


def test_backprop_check_passes_the_fixture_lesson_of_every_type(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "check", str(EVERY_TYPE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "d")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 lesson(s) OK, 0 error(s), 0 warning(s)" in result.stdout


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.5", "0.5"), (".5", "0.5"), ("-3", "-3"), ("5e-1", "0.5"), (" 0 . 5 ", "0.5"),
        ("1 000", "1000"), ("+2", "2"), ("\u22124", "-4"), ("5.", "5"), ("1E2", "100"),
    ],
)  # fmt: skip
def test_numbers_are_read_in_every_accepted_spelling(text, value):
    assert parse_number(text) == Decimal(value)


@pytest.mark.parametrize(
    "text", ["", "abc", "0,5", "1/2", "inf", "nan", "1_000", "--3", "e5", ".", "1e", "٣", "1e999"]
)
def test_what_is_not_a_plain_number_is_not_read_as_one(text):
    assert parse_number(text) is None


def test_tolerances_are_absolute_or_relative_and_inclusive():
    absolute = parse_numeric_line("0.7 +- 0.1")
    assert absolute.matches(Decimal("0.8")) and absolute.matches(Decimal("0.6"))
    assert not absolute.matches(Decimal("0.8000001"))
    relative = parse_numeric_line("200 ± 5%")
    assert relative.absolute_tolerance == 10
    assert relative.matches(Decimal("210")) and not relative.matches(Decimal("210.01"))
    negative = parse_numeric_line("-40 +- 10%")
    assert negative.matches(Decimal("-44")) and not negative.matches(Decimal("-35.9"))
    exact = parse_numeric_line("3")
    assert exact.matches(Decimal("3.000")) and not exact.matches(Decimal("3.0001"))
