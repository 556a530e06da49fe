"""Rendering: highlighting, heading ids, and the sanitiser's allowlist."""

from __future__ import annotations

import re
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import markdown
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.content.render import pygments_css, render_body, render_inline, sanitize

ROOT = Path(__file__).resolve().parent.parent


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
    from app.resources import static_dir

    committed = (static_dir() / "css" / "pygments.css").read_text()
    assert committed == pygments_css()
    assert "@media (prefers-color-scheme: dark)" in committed


def _markdown_inline(text: str) -> str:
    """render_inline without its plain-text shortcut: Markdown, then the inline sanitiser."""
    body = markdown.Markdown(extensions=[], output_format="html").convert(text.strip())
    match = re.fullmatch(r"<p>(.*)</p>", body, re.DOTALL)
    return sanitize(match.group(1) if match else body, inline=True)


@settings(max_examples=400, database=None, derandomize=True, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " ,.?;:'\"()/%-", max_size=60))
def test_plain_text_skips_markdown_and_comes_out_as_markdown_would_render_it(text):
    assert render_inline(text) == _markdown_inline(text)


@pytest.mark.parametrize(
    "text",
    ["To speed up training", "What is f(x) = 2x?", "Zero", "1. not plain", "- a list?", "a  b"],
)
def test_inline_items_render_as_markdown_would_with_or_without_the_shortcut(text):
    assert render_inline(text) == _markdown_inline(text)


def test_rendering_one_body_after_another_reuses_nothing_but_gives_fresh_results():
    """The Markdown instance and formatters are reused between bodies: no ids, toc entries or
    footnotes may leak from one body into the next."""
    first = "## Setup\n\n```python\nx = 1\n```\n"
    second = "## Setup\n\n```js\nlet y = 2\n```\n"
    alone, alone_toc = render_body(second)
    render_body(first)
    again, again_toc = render_body(second)
    assert (again, again_toc) == (alone, alone_toc)
    assert '<h2 id="setup">' in again and "setup_1" not in again
    assert [t.id for t in again_toc] == ["setup"]


def test_bodies_render_the_same_in_several_threads_at_once():
    bodies = [
        f"## Part {n}\n\n```python\ndef f{n}(x):\n    return x * {n}\n```\n" for n in range(8)
    ]
    expected = [render_body(body) for body in bodies]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(render_body, bodies)) == expected


def _code_blocks(html: str) -> list[str]:
    return re.findall(r'<div class="highlight">.*?</div>', html, re.DOTALL)


def test_highlighted_code_drops_only_spans_that_no_theme_styles():
    source = (ROOT / "content" / "dl-intro-neural-networks.md").read_text(encoding="utf-8")
    lean, _ = render_body(source)
    full = markdown.markdown(
        source,
        extensions=["fenced_code", "codehilite"],
        extension_configs={"codehilite": {"css_class": "highlight", "guess_lang": False}},
    )
    css = pygments_css()
    for ours, pygments in zip(_code_blocks(lean), _code_blocks(full), strict=True):
        # the same text on screen...
        assert re.sub(r"<[^>]+>", "", ours) == re.sub(r"<[^>]+>", "", pygments)
        # ...and every class left has a rule in the stylesheet, light and dark
        for cls in set(re.findall(r'<span class="([a-z0-9]+)">', ours)):
            assert css.count(f".highlight .{cls} {{") == 2, cls
    assert '<span class="n">' not in lean and '<span class="p">' not in lean
    assert '<span class="k">def</span>' in lean
    assert len(lean) < 0.75 * len(full)
