"""Rendering: highlighting, heading ids, and the sanitiser's allowlist."""

from __future__ import annotations

import pytest

from app.content.render import pygments_css, render_body, render_inline


def test_python_fences_are_highlighted_with_pygments_classes():
    page, _ = render_body("```python\ndef relu(z):\n    return z\n```\n")
    assert '<div class="highlight">' in page
    assert '<span class="k">def</span>' in page


def test_headings_get_ids_and_a_table_of_contents_from_h2_to_h4():
    page, toc = render_body("# Top\n\n## Forward Pass\n\n### Shapes\n\n##### Deep\n")
    assert '<h2 id="forward-pass">Forward Pass</h2>' in page
    assert [(t.level, t.id, t.title) for t in toc] == [
        (2, "forward-pass", "Forward Pass"),
        (3, "shapes", "Shapes"),
    ]


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ('<img src="x.png" onerror="alert(1)">', "onerror"),
        ("[click](javascript:alert(1))", "javascript:"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "javascript"),
        ('<iframe src="https://example.org"></iframe>', "<iframe"),
        ("<style>body{display:none}</style>", "<style"),
        ('<p style="position:fixed">x</p>', "style="),
        ('<form action="/logout"><button>x</button></form>', "<form"),
        ('<svg onload="alert(1)"></svg>', "onload"),
    ],
)
def test_author_html_is_sanitised_by_an_allowlist(source, forbidden):
    page, _ = render_body(source + "\n\nafter\n")
    assert forbidden.lower() not in page.lower()
    assert "after" in page


def test_safe_author_html_and_links_survive_with_noopener():
    page, _ = render_body(
        "<details><summary>Hint</summary>Use <kbd>Tab</kbd></details>\n\n[docs](https://numpy.org)\n"
    )
    assert "<details><summary>Hint</summary>" in page
    assert '<a href="https://numpy.org" rel="noopener noreferrer">docs</a>' in page


def test_inline_rendering_keeps_code_and_emphasis_but_no_blocks():
    assert render_inline("Use `np.dot` *twice*") == "Use <code>np.dot</code> <em>twice</em>"
    assert "<h1" not in render_inline("# not a heading?")
    assert render_inline("a <b onclick='x()'>bold</b>") == "a <b>bold</b>"


def test_the_committed_pygments_stylesheet_is_the_generated_one_with_a_dark_variant():
    from app.config import PROJECT_ROOT

    committed = (PROJECT_ROOT / "static" / "css" / "pygments.css").read_text()
    assert committed == pygments_css()
    assert "@media (prefers-color-scheme: dark)" in committed
