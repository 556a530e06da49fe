"""`backprop check --run`: train what the lessons state about their networks, and compare.

What is trained comes from SOURCES, functions from a lesson to its Jobs: a configuration, where
it is written, and the goal its run must meet. Claims are one source, the predict-then-run
```train blocks of questions another (their review shows the figures stored here:
app/quizzes/runs.py), the solutions of experiment questions a third (each must reach its
goal); a Job without a goal is only measured and stored, and fails only if it cannot run.

Each distinct configuration is trained once through runner.train (figures.measure), one BLAS
thread per run, in up to one process per core started with spawn (fresh interpreters, as the
server's training processes are; only as many as the work is worth), and its summary stored
in the RunStore the lesson pages read. Figures already stored for a configuration under this
engine are used as they are, since a seeded run measures the same figures every time;
`fresh=True` trains everything again.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from ..content import Course, Lesson, Problem
from ..content.goals import Goal
from .figures import RunStore, measure, quiet_interrupt, run_key
from .runner import estimate_work

#: Work (estimate_work's units) a spawned worker costs to start: a fresh interpreter importing
#: NumPy and the engine. Fewer runs than this per worker train faster in one process.
SPAWN_WORK = 5e9


@dataclass(frozen=True, slots=True)
class Job:
    """One configuration to train, where it is written, and what its run must meet."""

    path: str
    line: int
    config: dict[str, Any]
    goal: Goal | None = None
    #: how a run that misses the goal is reported, before the terms that failed
    failure: str = "claim does not hold"


JobSource = Callable[[Lesson], Iterable[Job]]


def claim_jobs(lesson: Lesson) -> Iterator[Job]:
    """A job per ```claim block: its run must meet its expectation."""
    for claim in lesson.claims:
        yield Job(lesson.path, claim.line, claim.config, claim.expect)


def train_block_jobs(lesson: Lesson) -> Iterator[Job]:
    """A job per predict-then-run question: its ```train block is measured for the review."""
    if lesson.quiz is None:
        return
    for question in lesson.quiz.questions:
        if question.run is not None:
            yield Job(lesson.path, question.line, question.run)


def experiment_jobs(lesson: Lesson) -> Iterator[Job]:
    """A job per experiment question: the author's solution must reach the goal it sets."""
    if lesson.quiz is None:
        return
    for question in lesson.quiz.questions:
        if (experiment := question.experiment) is not None:
            yield Job(
                lesson.path,
                experiment.line,
                experiment.config,
                experiment.goal,
                failure="experiment solution does not reach its goal",
            )


#: Everything `check --run` trains, by where a lesson writes it; extended by appending a source.
SOURCES: list[JobSource] = [claim_jobs, train_block_jobs, experiment_jobs]


def course_jobs(course: Course, sources: Iterable[JobSource] | None = None) -> list[Job]:
    """Every job of every served lesson, in course order."""
    chosen = list(SOURCES if sources is None else sources)
    return [job for lesson in course.lessons for source in chosen for job in source(lesson)]


@dataclass(slots=True)
class Report:
    """What a check of runs found: failed jobs as Problems, and what it cost."""

    problems: list[Problem] = field(default_factory=list)
    jobs: int = 0
    trained: int = 0
    reused: int = 0
    seconds: float = 0.0
    #: run_key of every job's configuration (what the store should keep)
    keys: set[str] = field(default_factory=set)


Progress = Callable[[int, int], None]


class ProgressBar:
    """`[#####.....] 3/6 runs, 4.2 s` redrawn in place on a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream, self.width, self.started = stream, width, time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        seconds = time.perf_counter() - self.started
        end = "\n" if done == total else ""
        self.stream.write(f"\rtraining [{bar}] {done}/{total} runs, {seconds:.1f} s{end}")
        self.stream.flush()


def _train_all(
    todo: dict[str, dict[str, Any]], workers: int, progress: Progress | None
) -> Iterator[tuple[str, dict[str, Any] | BaseException]]:
    """(key, summary or the exception the run raised) per configuration, as each finishes."""
    total = len(todo)
    if not total:
        return
    if progress:
        progress(0, total)
    if workers <= 1 or total <= 1:
        for done, (key, config) in enumerate(todo.items(), 1):
            try:
                yield key, measure(config)
            except Exception as exc:  # reported against the jobs, like a worker's failure
                yield key, exc
            if progress:
                progress(done, total)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, total), mp_context=context, initializer=quiet_interrupt
    ) as pool:
        futures: dict[Future, str] = {
            pool.submit(measure, config): key for key, config in todo.items()
        }
        for done, future in enumerate(as_completed(futures), 1):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # a run that raised, or a worker that died
                yield futures[future], exc
            if progress:
                progress(done, total)


def auto_workers(configs: Iterable[dict[str, Any]], cores: int) -> int:
    """Processes worth starting for these runs (1: train in this one), at most `cores`."""
    work = sum(estimate_work(config) for config in configs)
    return max(1, min(cores, int(work // SPAWN_WORK)))


def check_runs(
    jobs: list[Job],
    store: RunStore,
    *,
    workers: int | None = None,
    fresh: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Train (or find stored) every job's configuration, store what was measured, and compare.

    `workers`: processes to train in (1: this one); None starts as many as the work is worth
    (auto_workers), up to the cores.
    """
    started = time.perf_counter()
    report = Report(jobs=len(jobs))
    configs = {run_key(job.config): job.config for job in jobs}
    report.keys = set(configs)
    figures: dict[str, dict[str, Any]] = {}
    if not fresh:
        for key in configs:
            if (stored := store.get(key)) is not None:
                figures[key] = stored
    report.reused = len(figures)
    todo = {key: config for key, config in configs.items() if key not in figures}
    if workers is None:
        workers = auto_workers(todo.values(), os.cpu_count() or 1)
    failures: dict[str, BaseException] = {}
    for key, outcome in _train_all(todo, workers, progress):
        if isinstance(outcome, BaseException):
            failures[key] = outcome
            continue
        when = datetime.now(UTC)
        store.put(key, outcome, when=when)
        figures[key] = {**outcome, "verified_at": when.isoformat(timespec="seconds")}
        report.trained += 1
    for job in jobs:
        key = run_key(job.config)
        if key in failures:
            exc = failures[key]
            report.problems.append(
                Problem(job.path, job.line, f"the run failed: {type(exc).__name__}: {exc}")
            )
            continue
        if job.goal is None:
            continue
        missed = [o for o in job.goal.evaluate(figures[key]) if not o.held]
        if missed:
            terms = ", ".join(outcome.describe() for outcome in missed)
            report.problems.append(Problem(job.path, job.line, f"{job.failure}: {terms}"))
    report.problems.sort(key=lambda p: (p.path, p.line or 0))
    report.seconds = time.perf_counter() - started
    return report
