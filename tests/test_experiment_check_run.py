"""`backprop check --run` trains every experiment's solution: it must reach the goal it sets."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.content import load_course
from app.training.figures import RunStore, run_validator
from app.training.verify import SOURCES, check_runs, course_jobs, experiment_jobs

FIXTURE = Path(__file__).parent / "fixtures" / "experiments" / "experiment.md"


def test_experiment_solutions_are_a_source_of_check_run():
    assert experiment_jobs in SOURCES


def test_a_solution_that_reaches_its_goal_passes_and_one_that_does_not_is_reported(tmp_path):
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    missing = FIXTURE.read_text(encoding="utf-8").replace("id: experiment", "id: missing")
    missing = missing.replace("learning_rate: 0.4321}", "learning_rate: 0.001}")
    (folder / "missing.md").write_text(missing, encoding="utf-8")
    course = load_course(folder, validate_run=run_validator(1e11))
    assert course.problems == []
    jobs = course_jobs(course, [experiment_jobs])
    assert [(Path(j.path).name, j.line) for j in jobs] == [
        ("experiment.md", 17), ("missing.md", 17),
    ]  # fmt: skip
    store = RunStore(tmp_path / "runs")
    report = check_runs(jobs, store, workers=1)
    (problem,) = report.problems
    assert Path(problem.path).name == "missing.md" and problem.line == 17
    assert problem.message.startswith("experiment solution does not reach its goal: ")
    assert "test_accuracy 0." in problem.message and "< 0.9" in problem.message
    assert "parameters" not in problem.message  # only the term that failed
    # what was measured is stored, and a second check reads it back
    again = check_runs(jobs, store, workers=1)
    assert (again.trained, again.reused, again.problems) == (0, 2, report.problems)
