"""The knowledge check is found under any heading the page would show as "Knowledge Check",
so its options and [x] marks never reach the lesson body; stray task items are warned about."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content import ContentError, load_course
from app.content.knowledge_check import reads_knowledge_check, split_knowledge_check
from app.content.render import render_body

from .test_cli import run_check

META = "---\nid: x\ntitle: T\nduration: 5 mins\nsection: s\n---\n"  # the body starts on line 7
QUIZ = "\n1. Which one?\n   - [ ] wrong answer\n   - [x] right answer\n"


def load_one(content_dir, body: str):
    (content_dir / "x.md").write_text(META + body)
    course = load_course(content_dir)
    return course, course.get("x")


def rendered_headings(body: str) -> list[str]:
    """The text of every h1–h6 the renderer makes of a body."""
    html = render_body(body)[0]
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h\d[^>]*>(.*?)</h\d>", html)]


HEADINGS = [
    "Knowledge Check\n---------------\n",
    "Knowledge Check\n===\n",
    "Knowledge check\n-\n",
    "## Knowledge check:\n",
    "## 📝 Knowledge Check\n",
    "## **Knowledge-Check** ##\n",
    "##Knowledge Check\n",
    "### Knowledge Check {#quiz}\n",
    "# ＫＮＯＷＬＥＤＧＥ ＣＨＥＣＫ!\n",
]


@pytest.mark.parametrize("heading", HEADINGS)
def test_any_heading_reading_knowledge_check_becomes_the_quiz_and_leaves_the_body(
    content_dir, heading
):
    body = "Intro.\n\n" + heading + QUIZ
    assert any(reads_knowledge_check(text) for text in rendered_headings(body)), "a heading"
    course, lesson = load_one(content_dir, body)
    assert course.problems == []
    (question,) = lesson.quiz.questions
    assert [(o.html, o.correct) for o in question.options] == [
        ("wrong answer", False),
        ("right answer", True),
    ]
    assert "Intro." in lesson.html
    assert "[x]" not in lesson.html and "right answer" not in lesson.html
    assert "Which one?" not in lesson.html and "Knowledge" not in lesson.html


@pytest.mark.parametrize("underline", ["---", "==="])
def test_a_setext_knowledge_check_ends_at_the_next_heading_of_its_level(content_dir, underline):
    after = "After\n" + underline + "\n\nkept\n"
    body = "Knowledge Check\n" + underline + "\n" + QUIZ + "\n#### Quiz notes\n\nhidden\n\n" + after
    _, lesson = load_one(content_dir, body)
    assert lesson.question_count == 1
    assert "kept" in lesson.html and ">After</h" in lesson.html
    assert "hidden" not in lesson.html and "Quiz notes" not in lesson.html


@pytest.mark.parametrize(
    "body",
    [
        "Some text\nKnowledge Check\n---\n" + QUIZ,  # no heading: a paragraph, then a rule
        "Knowledge Check\n   ---\n" + QUIZ,  # an indented underline is not one
        "    Knowledge Check\n---\n" + QUIZ,  # indented code, then a rule
        "   ## Knowledge Check\n" + QUIZ,  # an indented '#' is text to Python-Markdown
        "## Knowledge Checks\n" + QUIZ,
        "```\nKnowledge Check\n---\n```\n" + QUIZ,
    ],
)
def test_what_the_renderer_does_not_show_as_that_heading_is_not_the_quiz(content_dir, body):
    assert not any(reads_knowledge_check(text) for text in rendered_headings(body))
    course, lesson = load_one(content_dir, body)
    assert lesson.quiz is None
    # ...and the two options it prints, [x] marks and all, are flagged.
    assert [w.message.startswith("task-list item") for w in course.problems] == [True, True]


def test_backprop_check_reports_a_broken_setext_knowledge_check_on_its_line(content_dir):
    broken = "\n1. All? (select all that apply)\n   - [ ] a\n   - [ ] b\n"
    (content_dir / "x.md").write_text(META + "Knowledge Check\n===============\n" + broken)
    result = run_check(str(content_dir))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        f"{content_dir.as_posix()}/x.md:10: error: multiple select marks no option [x]"
    )


def test_task_list_items_left_in_the_body_are_warnings_with_their_lines(content_dir):
    body = (
        "## Checklist\n\n- [x] done\n* [ ] to do\n1. [X] numbered\n> - [ ] quoted\n\n"
        "```markdown\n- [x] in a fence: an example, not a warning\n```\n\n"
        "- plain item\n- [link](https://example.com)\n\n## Knowledge Check\n" + QUIZ
    )
    course, lesson = load_one(content_dir, body)
    assert lesson.question_count == 1 and course.errors == []
    assert [(w.path, w.line, w.severity) for w in course.warnings] == [
        ("x.md", line, "warning") for line in (9, 10, 11, 12)
    ]
    assert "task-list item outside the knowledge check" in course.warnings[0].message
    result = run_check(str(content_dir))
    assert result.returncode == 0
    assert f"{content_dir.as_posix()}/x.md:9: warning: task-list item" in result.stdout
    assert "0 error(s), 4 warning(s)" in result.stdout.splitlines()[-1]


def test_a_lone_carriage_return_is_a_line_break_for_the_quiz_as_for_the_renderer(content_dir):
    body = "Intro.\r\r## Knowledge Check\r" + QUIZ.replace("\n", "\r")
    assert "Knowledge Check" in rendered_headings(body)
    course, lesson = load_one(content_dir, body)
    assert lesson.question_count == 1 and "right answer" not in lesson.html
    assert course.problems == []


LINES = [
    "## Knowledge Check", "##Knowledge check:", "### 📝 Knowledge Check ###", "# Other",
    "Knowledge Check", "knowledge-check", "Intro text", "---", "===", "-", "   ---", "***",
    "", "", "```", "```python", "~~~", "    indented", "\tKnowledge Check", "   ## Knowledge Check",
    "- item", "1. item", "   - [x] right", "   - [ ] wrong",
]  # fmt: skip


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(st.lists(st.sampled_from(LINES), max_size=14))
def test_the_loader_finds_a_knowledge_check_exactly_when_the_page_would_show_one(lines):
    body = "\n".join(lines) + "\n"
    shown = any(reads_knowledge_check(text) for text in rendered_headings(body))
    try:
        found = split_knowledge_check(body, 1).questions is not None
    except ContentError:
        found = True  # found, and its questions refused (a bullet before any question)
    assert found == shown


def test_finding_fences_stays_linear_on_a_file_of_unclosed_fences():
    # fenced_code's own regex, searched after every failed opening, takes minutes on this.
    started = time.perf_counter()
    split = split_knowledge_check("```a\n" * 100_000 + "## Knowledge Check\n" + QUIZ, 1)
    assert split.questions is not None
    assert time.perf_counter() - started < 20
