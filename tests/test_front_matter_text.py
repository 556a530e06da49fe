"""Front matter is plain text: control characters are content errors, documented fields are
not warnings, and a lesson refused for either reason is never served."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.content import load_course

from .test_cli import run_check


def meta(*extra: str, lesson_id: str = "x", title: str = "T", section: str = "s") -> str:
    fields = [f"id: {lesson_id}", f"title: {title}", "duration: 5 mins", f"section: {section}"]
    return "---\n" + "\n".join([*fields, *extra]) + "\n---\nBody text.\n"


def test_a_playground_preset_as_the_readme_documents_it_is_not_a_warning(content_dir):
    preset = "playground:\n  dataset: moons\n  hidden_layers: [16, 8]\n  learning_rate: 0.1"
    (content_dir / "x.md").write_text(meta(preset))
    course = load_course(content_dir)
    assert course.problems == []
    assert course.get("x").playground == {
        "dataset": "moons",
        "hidden_layers": [16, 8],
        "learning_rate": 0.1,
    }
    result = run_check(str(content_dir))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"1 lesson(s) OK, 0 error(s), 0 warning(s) in {content_dir.as_posix()}"
    ]


@pytest.mark.parametrize(
    ("extra", "title", "section", "line", "message"),
    [
        ((), r'"Slot\0slot:zzz\0 injection"', "s", 3, "U+0000 in field 'title'"),
        ((), r'"Ring\x07"', "s", 3, "U+0007 in field 'title'"),
        ((), "T", r'"\0slot:csrf\0"', 5, "U+0000 in field 'section'"),
        ((), "T", r'"bell\x07"', 5, "U+0007 in field 'section'"),
        ((), "T", r'"DEL\x7f and C1\x85"', 5, "U+007F in field 'section'"),
        ((), r'"CR\rhere"', "s", 3, "U+000D in field 'title'"),
        (
            ("playground:", "  dataset: moons", r'  note: "a\x07"'),
            "T",
            "s",
            8,
            "field 'playground'",
        ),
        (("playground:", "  hidden_layers: [16]", r'  tags: [ok, "\0"]'), "T", "s", 8, "U+0000"),
        (("extra:", "  - nested:", r'      - "\x01"'), "T", "s", 8, "U+0001 in field 'extra'"),
        ((r'"bad\0key": 1',), "T", "s", 6, "U+0000 in a front matter key"),
        (("playground:", r'  "da\ttaset": moons'), "T", "s", 7, "a key under field 'playground'"),
    ],
)
def test_a_control_character_in_any_front_matter_string_is_an_error_with_its_line(
    content_dir, extra, title, section, line, message
):
    (content_dir / "bad.md").write_text(meta(*extra, title=title, section=section))
    (content_dir / "good.md").write_text(meta(lesson_id="good"))
    course = load_course(content_dir)
    assert [les.id for les in course.lessons] == ["good"]
    (error,) = course.errors
    assert (error.path, error.line) == ("bad.md", line)
    assert "control character" in error.message and message in error.message
    assert error.hint


def test_backprop_check_reports_a_nul_in_a_title_with_file_and_line_and_fails(content_dir):
    (content_dir / "bad.md").write_text(meta(title=r'"Slot\0slot:zzz\0 injection"'))
    result = run_check(str(content_dir))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        f"{content_dir.as_posix()}/bad.md:3: error: control character U+0000 in field 'title'"
    )
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("title", "kind"), [(r'"Two\nlines"', "a line break"), (r'"Tab\there"', "a tab")]
)
def test_a_title_must_be_one_line(content_dir, title, kind):
    (content_dir / "x.md").write_text(meta(title=title))
    (error,) = load_course(content_dir).errors
    assert (error.line, error.message) == (
        3,
        f"field 'title' holds {kind}; it must be a single line",
    )


def test_tabs_and_newlines_stay_allowed_where_text_may_hold_them(content_dir):
    folded = "title: >\n  A folded\n  title\n"  # a block scalar ends with a newline
    text = meta(r'notes: "line one\nline two\tindented"').replace("title: T\n", folded)
    (content_dir / "x.md").write_text(text)
    course = load_course(content_dir)
    assert course.errors == []
    assert course.get("x").title == "A folded title"


def test_front_matter_nested_too_deeply_is_an_error_not_a_crash(content_dir):
    (content_dir / "deep.md").write_text(meta("junk: " + "[" * 2000 + "]" * 2000))
    (content_dir / "good.md").write_text(meta(lesson_id="good"))
    course = load_course(content_dir)
    assert [les.id for les in course.lessons] == ["good"]
    (error,) = course.errors
    assert (error.path, error.line, error.message) == (
        "deep.md",
        2,
        "front matter is nested too deeply",
    )
    result = run_check(str(content_dir))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "title", [r'"Slot\0slot:zzz\0 injection"', r'"\0slot:csrf\0"', r'"Ring\x07"']
)
def test_a_lesson_with_a_control_character_is_not_served_and_its_neighbours_still_are(
    make_app, content_dir, title
):
    (content_dir / "a.md").write_text(meta("order: 1", lesson_id="first", title="First"))
    (content_dir / "b.md").write_text(meta("order: 2", lesson_id="bad", title=title))
    (content_dir / "c.md").write_text(meta("order: 3", lesson_id="last", title="Last"))
    with TestClient(make_app(content_dir=content_dir)) as client:
        assert client.get("/lessons/bad").status_code == 404
        assert client.get("/api/lessons/bad").status_code == 404
        assert [les["id"] for les in client.get("/api/lessons").json()] == ["first", "last"]
        for lesson_id, heading in (("first", "First"), ("last", "Last")):
            page = client.get(f"/lessons/{lesson_id}")
            assert page.status_code == 200
            assert "\x00" not in page.text and "\x07" not in page.text
            assert re.search(r"<title>([^<]*)</title>", page.text).group(1).startswith(heading)
        assert 'href="/lessons/last" rel="next"' in client.get("/lessons/first").text
