"""Markdown to safe HTML: highlighted code, heading ids, a table of contents, sanitised."""

from __future__ import annotations

import html as htmllib
import re

import markdown
import nh3
from pygments.formatters import HtmlFormatter

from .models import TocEntry

#: Tags an author may use; everything else (script, iframe, style, form...) is dropped.
BLOCK_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
}  # fmt: skip
INLINE_TAGS = {"a", "abbr", "b", "br", "code", "del", "em", "i", "kbd", "mark", "s", "span",
               "strong", "sub", "sup", "u", "var"}  # fmt: skip
ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_FORMATTER_OPTIONS = {"css_class": "highlight", "guess_lang": False, "wrapcode": True}


def sanitize(html: str, *, inline: bool = False) -> str:
    """Keep allowlisted tags, attributes and URL schemes (no script, handlers, javascript:)."""
    return nh3.clean(
        html,
        tags=INLINE_TAGS if inline else BLOCK_TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def _markdown() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=["fenced_code", "tables", "toc", "codehilite", "sane_lists", "attr_list"],
        extension_configs={
            "codehilite": _FORMATTER_OPTIONS,
            "toc": {"permalink": False, "toc_depth": "2-4"},
            "tables": {"use_align_attribute": True},
        },
        output_format="html",
    )


def _flatten(tokens: list[dict]) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for token in tokens:
        title = htmllib.unescape(re.sub(r"<[^>]+>", "", token["name"]))
        entries.append(TocEntry(level=token["level"], id=token["id"], title=title))
        entries.extend(_flatten(token["children"]))
    return entries


def render_body(text: str) -> tuple[str, tuple[TocEntry, ...]]:
    """Render a lesson body to sanitised HTML and its table of contents (h2–h4)."""
    md = _markdown()
    body = md.convert(text)
    return sanitize(body), tuple(_flatten(md.toc_tokens))


_INLINE_MD = markdown.Markdown(extensions=[], output_format="html")
_PARAGRAPH = re.compile(r"^<p>(.*)</p>$", re.DOTALL)


def render_inline(text: str) -> str:
    """Render one line of Markdown (code, emphasis, links) as inline HTML, without the <p>."""
    body = _INLINE_MD.reset().convert(text.strip())
    match = _PARAGRAPH.match(body)
    return sanitize(match.group(1) if match else body, inline=True)


def pygments_css() -> str:
    """The highlighting stylesheet, light by default and dark under prefers-color-scheme."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".highlight")
    dark = "\n".join("  " + line for line in dark.splitlines())
    return f"{light}\n\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
