"""The bundled course: a chain of lessons from the seed, each using the platform's features."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from app.content import load_course
from app.training.schemas import TrainRequest

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"
SEED = "dl-intro-neural-networks"
COURSE = load_course(CONTENT)
AFTER_SEED = [lesson for lesson in COURSE.lessons if lesson.id != SEED]
# Where the lessons' quoted code comes from: the project's network and runner, and the seed.
SOURCES = [ROOT / "app" / "training" / "nn.py", ROOT / "app" / "training" / "runner.py"]
SOURCES.append(CONTENT / f"{SEED}.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def test_the_bundled_course_loads_with_no_error_and_no_warning():
    assert COURSE.errors == [] and COURSE.warnings == []
    assert len(AFTER_SEED) >= 7


def test_the_next_lesson_chain_runs_from_the_seed_through_every_lesson_to_a_real_last_one():
    seen, lesson = [], COURSE.get(SEED)
    while lesson is not None:
        assert lesson.id not in seen, f"the chain loops back to {lesson.id}"
        seen.append(lesson.id)
        if lesson.next_lesson_id is None:
            break
        following = COURSE.get(lesson.next_lesson_id)
        assert following is not None, f"{lesson.id} names {lesson.next_lesson_id}: no such lesson"
        lesson = following
    assert seen[:2] == [SEED, "dl-building-networks"]
    assert sorted(seen) == sorted(les.id for les in COURSE.lessons)  # every lesson is reached
    assert COURSE.get(seen[-1]).quiz is not None  # the last one is a real lesson, not a stub


def test_the_chain_follows_the_course_order_in_two_or_three_sections():
    chain = [SEED]
    while (next_id := COURSE.get(chain[-1]).next_lesson_id) is not None:
        chain.append(next_id)
    assert chain == [lesson.id for lesson in COURSE.lessons]  # next is also the listed order
    sections = list(dict.fromkeys(lesson.section for lesson in COURSE.lessons))
    assert 2 <= len(sections) <= 3


@pytest.mark.parametrize("lesson", AFTER_SEED, ids=lambda lesson: lesson.id)
def test_each_lesson_has_four_explained_questions_a_claim_and_a_playground_preset(lesson):
    questions = lesson.quiz.questions
    assert len(questions) >= 4
    assert all(question.explanation_html for question in questions)
    assert len(lesson.claims) >= 1
    assert lesson.playground, "no playground preset"
    TrainRequest(**lesson.playground)  # a /train configuration as it stands
    source = (CONTENT / Path(lesson.path).name).read_text(encoding="utf-8")
    assert re.search(r"\$\$\n.+?\n\$\$", source, re.DOTALL), "no display formula"
    assert "<math" in lesson.html  # the LaTeX reached the page as MathML


def test_every_question_type_is_used_three_times_predict_then_run_four_and_experiments_three():
    questions = [q for lesson in COURSE.lessons if lesson.quiz for q in lesson.quiz.questions]
    # A predict-then-run question counts once, as such, not also as its answer's type.
    types = Counter(q.type for q in questions if q.run is None)
    for kind in ("single", "multiple", "numeric", "ordering", "experiment"):
        assert types[kind] >= 3, (kind, types)
    assert sum(q.run is not None for q in questions) >= 4


def _blocks(lesson) -> list[tuple[str, str, str | None]]:
    """(language, code, the plain block right after it or None) for each fence in the lesson."""
    source = (CONTENT / Path(lesson.path).name).read_text(encoding="utf-8")
    fences = list(FENCE.finditer(source))
    found = []
    for i, fence in enumerate(fences):
        after = fences[i + 1] if i + 1 < len(fences) else None
        output = None
        if after and after.group(1) == "" and not source[fence.end() : after.start()].strip():
            output = after.group(2)
        found.append((fence.group(1), fence.group(2), output))
    return found


EXAMPLES = [
    pytest.param(code, output, id=f"{lesson.id}-{n}")
    for lesson in AFTER_SEED
    for n, (lang, code, output) in enumerate(_blocks(lesson))
    if lang == "python" and output is not None
]
QUOTES = [
    pytest.param(code, id=f"{lesson.id}-{n}")
    for lesson in AFTER_SEED
    for n, (lang, code, output) in enumerate(_blocks(lesson))
    if lang == "python" and output is None
]


def test_the_lessons_have_runnable_examples_and_quotes():
    assert len(EXAMPLES) >= 7 and len(QUOTES) >= 7


@pytest.mark.parametrize(("code", "output"), EXAMPLES)
def test_each_example_prints_what_the_lesson_shows_under_it(code, output):
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    printed = [line.rstrip() for line in ran.stdout.splitlines()]
    assert printed == [line.rstrip() for line in output.splitlines()]


@pytest.mark.parametrize("code", QUOTES)
def test_each_quoted_fragment_is_the_projects_or_the_seeds_own_code(code):
    known = {line.strip() for path in SOURCES for line in path.read_text().splitlines()}
    for line in code.splitlines():
        if line.strip() and line.strip() != "...":
            assert line.strip() in known, line
