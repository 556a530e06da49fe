"""Loading and validating lessons: every error kind, with its file and line."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from app.content import load_course, parse_duration

GOOD_META = """---
id: {id}
title: A lesson
duration: 10 mins
order: {order}
section: basics
---
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def lesson(id: str = "a-lesson", order: int = 0, body: str = "Some text.\n") -> str:
    return GOOD_META.format(id=id, order=order) + body


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("55 mins", 55),
        ("20 min", 20),
        ("1 hr 10 mins", 70),
        ("1h 30m", 90),
        ("90 minutes", 90),
        ("2 hours", 120),
        ("1.5 h", 90),
        (45, 45),
    ],
)
def test_durations_in_every_documented_form_become_whole_minutes(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["soon", "", "10", "mins 10", "10 parsecs", "0 mins", True, 1.5])
def test_unreadable_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_seed_lesson_loads_first_with_five_questions_and_its_next_lesson_exists():
    course = load_course(Path(__file__).parent.parent / "content")
    assert course.lessons[0].id == "dl-intro-neural-networks"
    seed = course.lessons[0]
    assert (seed.title, seed.duration_minutes, seed.section, seed.order) == (
        "Introduction to Neural Networks",
        55,
        "fundamentals",
        1,
    )
    assert seed.question_count == 5
    assert course.errors == []
    assert course.warnings == []  # the seed's nextLessonId, dl-building-networks, is written
    assert course.get("dl-building-networks") is not None
    # The seed's convention: with no markers, the first option is right.
    assert all(
        q.options[0].correct and sum(o.correct for o in q.options) == 1 for q in seed.quiz.questions
    )


def test_the_knowledge_check_is_removed_from_the_body_and_the_title_heading_is_not_repeated():
    seed = load_course(Path(__file__).parent.parent / "content").lessons[0]
    assert "Knowledge Check" not in seed.html
    assert "What is the purpose of an activation function" not in seed.html
    assert "<h1" not in seed.html
    assert "knowledge-check" not in [entry.id for entry in seed.toc]


def test_plain_fenced_diagrams_are_kept_byte_for_byte():
    source = (Path(__file__).parent.parent / "content" / "dl-intro-neural-networks.md").read_text()
    diagram = source.split("```\n", 2)[1].split("```", 1)[0]  # the first plain fence
    seed = load_course(Path(__file__).parent.parent / "content").lessons[0]
    blocks = [
        html.unescape(re.sub(r"<[^>]+>", "", block))
        for block in re.findall(r"<pre>(.*?)</pre>", seed.html, re.DOTALL)
    ]
    assert diagram in blocks
    assert any("x₁ ──w₁──┐" in block and "Σ(w·x) + b" in block for block in blocks)


def test_the_fixture_course_groups_sections_by_lowest_order_and_skips_hidden_and_other_files(
    fixture_course,
):
    course = load_course(fixture_course)
    assert course.errors == []
    assert [(section, [les.id for les in lessons]) for section, lessons in course.sections()] == [
        ("fundamentals", ["dl-intro-neural-networks"]),
        ("training", ["gradient-descent", "learning-rates"]),
        ("advanced", ["regularisation"]),
    ]
    assert course.get("draft") is None
    assert course.get("regularisation").path == "advanced/deep/regularisation.md"
    assert course.get("regularisation").type == "reading"


def test_explicit_markers_pick_the_right_option_and_explanations_attach_to_their_question(
    fixture_course,
):
    quiz = load_course(fixture_course).get("gradient-descent").quiz
    first, second, third = quiz.questions
    assert [o.correct for o in first.options] == [False, True, False]
    assert first.prompt_html == "What does the <em>learning rate</em> η control?"
    assert first.explanation_html == "A larger η takes bigger steps along −∇L."
    assert second.prompt_html == "Which update uses <code>velocity</code>?"
    assert [o.correct for o in second.options] == [False, True]
    assert third.explanation_html is None
    assert [o.correct for o in third.options] == [True, False]
    assert quiz.pass_percent == 60


def test_question_and_option_ids_are_opaque_stable_and_unique(fixture_course):
    first = load_course(fixture_course).get("gradient-descent").quiz
    again = load_course(fixture_course).get("gradient-descent").quiz
    assert [q.id for q in first.questions] == [q.id for q in again.questions]
    option_ids = [o.id for q in first.questions for o in q.options]
    assert option_ids == [o.id for q in again.questions for o in q.options]
    assert len(set(option_ids)) == len(option_ids)
    assert all(re.fullmatch(r"o[0-9a-f]{12}", oid) for oid in option_ids)


def test_unicode_prose_and_tables_render(fixture_course):
    page = load_course(fixture_course).get("gradient-descent").html
    assert "w ← w − η ∂L/∂w" in page
    assert '<td align="right">none</td>' in page


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("empty.md", "", 1, "file is empty"),
        ("blank.md", "  \n\n", 1, "file is empty"),
        ("binary.md", b"---\x00\x01\x02", None, "file looks binary"),
        ("latin1.md", "---\nid: x\ntitle: caf\xe9\n".encode("latin-1"), 3, "not valid UTF-8"),
        ("nofm.md", "# Just a heading\n", 1, "no front matter"),
        ("open.md", "---\nid: x\n", 1, "front matter is not closed"),
        ("yaml.md", "---\nid: x\ntitle: [unclosed\nsection: s\n---\n", 4, "invalid YAML"),
        ("dupkey.md", "---\nid: x\nid: y\n---\n", 3, "duplicate key 'id'"),
        ("list.md", "---\n- a\n- b\n---\n", 2, "must be a mapping"),
        (
            "noid.md",
            "---\ntitle: T\nduration: 5 min\nsection: s\n---\n",
            2,
            "missing required field 'id'",
        ),
        (
            "badid.md",
            "---\nid: Bad_Id\ntitle: T\nduration: 5 min\nsection: s\n---\n",
            2,
            "not a valid lesson id",
        ),
        (
            "numtitle.md",
            "---\nid: x\ntitle: 42\nduration: 5 min\nsection: s\n---\n",
            3,
            "field 'title' must be a non-empty string",
        ),
        (
            "nodur.md",
            "---\nid: x\ntitle: T\nsection: s\n---\n",
            2,
            "missing required field 'duration'",
        ),
        (
            "baddur.md",
            "---\nid: x\ntitle: T\nduration: a while\nsection: s\n---\n",
            4,
            "cannot read duration 'a while'",
        ),
        (
            "order.md",
            "---\nid: x\ntitle: T\nduration: 5 min\nsection: s\norder: first\n---\n",
            6,
            "field 'order' must be a whole number",
        ),
        (
            "nosection.md",
            "---\nid: x\ntitle: T\nduration: 5 min\n---\n",
            2,
            "missing required field 'section'",
        ),
        (
            "pass.md",
            "---\nid: x\ntitle: T\nduration: 5 min\nsection: s\npassPercent: 120\n---\n",
            6,
            "field 'passPercent' must be a whole number from 0 to 100",
        ),
    ],
)
def test_each_kind_of_content_error_is_reported_with_path_and_line(
    content_dir, name, content, line, message
):
    write(content_dir, name, content)
    write(content_dir, "good.md", lesson())
    course = load_course(content_dir)
    assert [les.id for les in course.lessons] == ["a-lesson"], "the good file is still served"
    (error,) = course.errors
    assert error.path == name
    assert error.line == line
    assert message in error.message
    assert error.format().startswith(f"{name}:{line}: error: " if line else f"{name}: error: ")


@pytest.mark.parametrize(
    ("check", "line", "message"),
    [
        ("1. Lonely?\n   - only one\n", 11, "needs at least two"),
        ("1. All? (select all that apply)\n   - [ ] a\n   - [ ] b\n", 11, "marks no option [x]"),
        ("1. Unmarked?\n   - [ ] a\n   - [ ] b\n", 11, "marks no option [x]"),
        ("- stray option\n", 11, "option before any numbered question"),
        ("Nothing numbered here.\n", 9, "has no numbered questions"),
        ("1. Twice?\n   - same\n   - same\n", 11, "same option twice"),
    ],
)
def test_malformed_knowledge_checks_are_errors_on_the_offending_line(
    content_dir, check, line, message
):
    write(content_dir, "quiz.md", lesson(body="\n## Knowledge Check\n\n" + check))
    (error,) = load_course(content_dir).errors
    assert (error.path, error.line) == ("quiz.md", line)
    assert message in error.message
    assert error.hint


def test_a_duplicate_id_is_kept_by_the_file_that_sorts_first(content_dir):
    write(content_dir, "b/second.md", lesson(id="same", body="second"))
    write(content_dir, "a/first.md", lesson(id="same", body="first"))
    course = load_course(content_dir)
    assert course.get("same").path == "a/first.md"
    (error,) = course.errors
    assert error.path == "b/second.md"
    assert "duplicate lesson id 'same', already used by a/first.md" in error.message


def test_unknown_fields_and_dangling_next_lessons_are_warnings_not_errors(content_dir):
    write(content_dir, "x.md", lesson().replace("order: 0", "order: 0\nnextLesonId: y"))
    course = load_course(content_dir)
    assert course.errors == []
    assert len(course.lessons) == 1
    (warning,) = course.warnings
    assert warning.line == 6
    assert "unknown front matter field 'nextLesonId'" in warning.message
    assert warning.hint == "did you mean 'nextLessonId'?"


def test_the_knowledge_check_heading_is_case_insensitive_and_ends_at_the_next_same_level_heading(
    content_dir,
):
    body = (
        "## Intro\n\ntext\n\n## KNOWLEDGE CHECK\n\n1. Q?\n   - a\n   - b\n\n"
        "### Still quiz notes\n\n## After\n\nkept\n"
    )
    write(content_dir, "x.md", lesson(body=body))
    (les,) = load_course(content_dir).lessons
    assert les.question_count == 1
    assert "kept" in les.html and "After" in les.html
    assert "KNOWLEDGE CHECK" not in les.html and "Still quiz notes" not in les.html


def test_a_knowledge_check_heading_inside_a_code_fence_is_not_a_quiz(content_dir):
    body = "```markdown\n## Knowledge Check\n1. Q?\n   - a\n```\n"
    write(content_dir, "x.md", lesson(body=body))
    (les,) = load_course(content_dir).lessons
    assert les.quiz is None
    assert "## Knowledge Check" in les.html


def test_a_missing_content_folder_is_a_problem_not_a_crash(tmp_path):
    course = load_course(tmp_path / "nowhere")
    assert course.lessons == []
    assert "does not exist" in course.errors[0].message


def test_the_render_cache_returns_the_same_lessons_and_misses_when_a_file_changes(
    fixture_course, tmp_path
):
    cache = tmp_path / "cache"
    fresh = load_course(fixture_course)
    first = load_course(fixture_course, cache_dir=cache)
    assert len(list(cache.glob("*.json"))) == 4
    cached = load_course(fixture_course, cache_dir=cache)
    assert cached.lessons == first.lessons == fresh.lessons
    assert [(les.html, les.toc) for les in cached.lessons] == [
        (les.html, les.toc) for les in fresh.lessons
    ]
    assert cached.problems == fresh.problems
    lesson = fixture_course / "training" / "learning-rates.md"
    lesson.write_text(lesson.read_text().replace("Warm-up, then decay.", "Cosine decay."))
    edited = load_course(fixture_course, cache_dir=cache).get("learning-rates")
    assert "Cosine decay." in edited.html
    assert len(list(cache.glob("*.json"))) == 4  # the edited body's old entry was pruned


def test_a_corrupt_cache_entry_is_a_miss(fixture_course, tmp_path):
    cache = tmp_path / "cache"
    load_course(fixture_course, cache_dir=cache)
    for entry in cache.glob("*.json"):
        entry.write_bytes(b"not json")
    course = load_course(fixture_course, cache_dir=cache)
    assert course.errors == [] and len(course.lessons) == 4


def test_a_playground_preset_is_kept_and_a_malformed_one_is_an_error(content_dir):
    preset = "playground:\n  dataset: spiral\n  hidden_layers: [32, 32]\n"
    write(content_dir, "ok.md", lesson(id="ok").replace("order: 0\n", "order: 0\n" + preset))
    write(
        content_dir, "bad.md", lesson(id="bad").replace("order: 0\n", "order: 0\nplayground: 3\n")
    )
    course = load_course(content_dir)
    assert course.get("ok").playground == {"dataset": "spiral", "hidden_layers": [32, 32]}
    (error,) = course.errors
    assert (error.path, error.line) == ("bad.md", 6)
    assert "field 'playground'" in error.message
