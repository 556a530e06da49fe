"""A front matter field left empty (`order:`, YAML null) reads as if it were absent."""

from __future__ import annotations

from app.content import load_course

LESSON = "---\nid: a\ntitle: T\nduration: 5 min\nsection: s\n{extra}\n---\nBody.\n"


def test_an_empty_order_or_pass_percent_takes_the_default_instead_of_stopping_the_load(
    content_dir,
):
    (content_dir / "a.md").write_text(LESSON.format(extra="order:\npassPercent: ~"))
    course = load_course(content_dir)
    assert course.problems == []
    lesson = course.get("a")
    assert lesson.order == 0 and lesson.pass_percent is None


def test_an_empty_order_still_lets_the_site_start(make_app, content_dir):
    (content_dir / "a.md").write_text(LESSON.format(extra="order: null"))
    assert make_app(content_dir=content_dir).state.course.get("a").order == 0
