"""Experiment questions in the knowledge check: the ```experiment block, parsed and refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.content import load_course
from app.training.figures import run_validator

FIXTURE = Path(__file__).parent / "fixtures" / "experiments"

META = """---
id: quiz
title: A quiz
duration: 5 mins
section: basics
---

## Knowledge Check

1. Reach the goal.
   ```experiment
"""  # the question is on line 10, the fence on 11, the block's first line on 12

GOOD = {
    "dataset": "dataset: xor",
    "fixed": "fixed: {epochs: 20, seed: 0}",
    "free": "free: [hidden_layers, learning_rate]",
    "goal": "goal: test_accuracy >= 0.9 and parameters <= 100",
    "solution": "solution: {hidden_layers: [8], learning_rate: 0.5}",
}


def write(folder: Path, **lines: str | None) -> None:
    rows = {**GOOD, **lines}
    block = "".join(f"   {row}\n" for row in rows.values() if row is not None)
    text = META + block + "   ```\n"
    (folder / "quiz.md").write_text(text, encoding="utf-8")


def one_error(folder: Path, **lines: str | None) -> tuple[int | None, str]:
    write(folder, **lines)
    course = load_course(folder, validate_run=run_validator(1e9))
    (error,) = course.errors
    assert course.lessons == []
    return error.line, error.message


def test_the_fixture_experiment_is_parsed_as_written():
    course = load_course(FIXTURE, validate_run=run_validator(1e11))
    assert course.problems == []
    experiment_question, single = course.get("experiment").quiz.questions
    assert (experiment_question.type, single.type) == ("experiment", "single")
    assert experiment_question.options == () and experiment_question.run is None
    experiment = experiment_question.experiment
    assert experiment.line == 17
    assert experiment.dataset == "xor"
    assert experiment.fixed == {"epochs": 30, "batch_size": 32, "seed": 3}
    assert experiment.free == ("hidden_layers", "activation", "learning_rate")
    assert [t.text for t in experiment.goal.terms] == ["test_accuracy >= 0.9", "parameters <= 50"]
    assert experiment.solution == {
        "hidden_layers": [9],
        "activation": "tanh",
        "learning_rate": 0.4321,
    }
    assert experiment.config["dataset"] == "xor" and experiment.config["momentum"] == 0.0
    assert experiment.config["hidden_layers"] == [9] and experiment.config["epochs"] == 30
    assert experiment_question.explanation_html.startswith("Eight hidden units")


def test_a_well_formed_block_loads_and_fixed_may_be_left_out(content_dir):
    write(content_dir, fixed=None)
    course = load_course(content_dir, validate_run=run_validator(1e11))
    assert course.problems == []
    experiment = course.get("quiz").quiz.questions[0].experiment
    assert experiment.fixed == {} and experiment.config["epochs"] == 30


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ({"dataset": None}, 11, "experiment block has no 'dataset'"),
        ({"free": None}, 11, "experiment block has no 'free'"),
        ({"goal": None}, 11, "experiment block has no 'goal'"),
        ({"solution": None}, 11, "experiment block has no 'solution'"),
        ({"dataset": "dataset: xor: 3"}, 12, "invalid YAML in the experiment block"),
        ({"dataset": "dataset: mnist"}, 12, "dataset: Input should be"),
        ({"dataset": "dataset: 3"}, 12, "'dataset' must name a dataset"),
        ({"dataset": "datasets: xor"}, 12, "unknown key 'datasets'"),
        ({"fixed": "fixed: {epochs: 0}"}, 13, "epochs: Input should be greater than"),
        ({"fixed": "fixed: {epoch: 3}"}, 13, "unknown /train field 'epoch'"),
        ({"fixed": "fixed: [epochs]"}, 13, "'fixed' must map /train fields to values"),
        ({"fixed": "fixed: {dataset: xor}"}, 13, "sets the dataset"),
        ({"free": "free: [hidden_layers, epochs]"}, 14, "'epochs' is both fixed and free"),
        ({"free": "free: [dataset]"}, 14, "the dataset cannot be free"),
        ({"free": "free: [data]"}, 14, "the data cannot be free"),
        ({"free": "free: []"}, 14, "must list the /train fields"),
        ({"free": "free: [learning_rate, learning_rate]"}, 14, "lists 'learning_rate' twice"),
        (
            {"free": "free: [layers]", "solution": "solution: {layers: [8]}"},
            14,
            "unknown /train field 'layers'",
        ),
        ({"goal": "goal: test_accuracy >= 90%"}, 15, "percentages are not numbers"),
        ({"goal": "goal: accuracy >= 0.9"}, 15, "unknown metric 'accuracy'"),
        ({"goal": "goal: status == diverged"}, 15, "status cannot be a goal here"),
        ({"goal": "goal: test_accuracy >= 0.9 or parameters <= 9"}, 15, "expected 'and'"),
        ({"solution": "solution: {hidden_layers: [8]}"}, 16, "no value for free field"),
        (
            {"solution": "solution: {hidden_layers: [8], learning_rate: 1, seed: 2}"},
            16,
            "sets 'seed', which is not free",
        ),
        (
            {"solution": "solution: {hidden_layers: [8], learning_rate: 0}"},
            16,
            "learning_rate: Input should be greater than 0",
        ),
        (
            {"solution": "solution: {hidden_layers: [1024, 1024, 1024], learning_rate: 1}"},
            16,
            "too much work",
        ),
    ],
)
def test_a_bad_experiment_block_is_an_error_on_the_offending_line(
    content_dir, lines, line, message
):
    found_line, found = one_error(content_dir, **lines)
    assert (found_line, message in found) == (line, True), found


def test_an_experiment_cannot_share_a_question_with_options_or_a_train_block(content_dir):
    write(content_dir)
    path = content_dir / "quiz.md"
    path.write_text(path.read_text() + "   - a\n   - b\n", encoding="utf-8")
    (error,) = load_course(content_dir).errors
    assert error.line == 18 and "mixes an experiment block and options" in error.message
    path.write_text(
        path.read_text().replace("   - a\n   - b\n", "   ```train\n   epochs: 3\n   ```\n"),
        encoding="utf-8",
    )
    (error,) = load_course(content_dir).errors
    assert error.line == 18 and "both a train block and an experiment block" in error.message


def test_an_unclosed_experiment_block_is_an_error_on_its_fence(content_dir):
    write(content_dir)
    path = content_dir / "quiz.md"
    path.write_text(path.read_text().removesuffix("   ```\n"), encoding="utf-8")
    (error,) = load_course(content_dir).errors
    assert error.line == 11 and error.message == "experiment block is not closed"
