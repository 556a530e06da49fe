"""Markdown to safe HTML: highlighted code, heading ids, a table of contents, sanitised."""

from __future__ import annotations

import html as htmllib
import re
import threading
from collections.abc import Callable

import markdown
import nh3
from pygments.formatters import HtmlFormatter
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token

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


def _cleaner(tags: set[str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=tags,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# Built once: nh3.clean() builds its allowlists on every call, most of an inline item's cost.
_BLOCK_CLEANER = _cleaner(BLOCK_TAGS)
_INLINE_CLEANER = _cleaner(INLINE_TAGS)


def sanitize(html: str, *, inline: bool = False) -> str:
    """Keep allowlisted tags, attributes and URL schemes (no script, handlers, javascript:)."""
    return (_INLINE_CLEANER if inline else _BLOCK_CLEANER).clean(html)


class _Formatters(threading.local):
    """HtmlFormatters by their options, one set per thread: building one computes its style
    table, and codehilite would build a new one for every code block."""

    def __init__(self) -> None:
        self.by_options: dict[str, HtmlFormatter] = {}


_formatters = _Formatters()


#: The highlighting themes of pygments_css(): light by default, dark under prefers-color-scheme.
LIGHT_STYLE, DARK_STYLE = "default", "monokai"


def _plain_token_types() -> frozenset:
    """Token types both themes show exactly as plain code text, so a span around them changes
    nothing on screen (Name and Punctuation here): dropping them shrinks pages, not colours."""
    styles = [get_style_by_name(LIGHT_STYLE), get_style_by_name(DARK_STYLE)]
    return frozenset(
        ttype
        for ttype in STANDARD_TYPES
        if all(style.style_for_token(ttype) == style.style_for_token(Token) for style in styles)
    )


class _LeanHtmlFormatter(HtmlFormatter):
    """Pygments' HTML formatter, leaving tokens that no theme styles unwrapped."""

    plain = _plain_token_types()

    def _get_css_classes(self, ttype: object) -> str:
        return "" if ttype in self.plain else super()._get_css_classes(ttype)


def _formatter(**options: object) -> HtmlFormatter:
    """codehilite's `pygments_formatter`: the formatter it would build (less the spans that
    style nothing), reused."""
    key = repr(sorted(options.items()))
    formatter = _formatters.by_options.get(key)
    if formatter is None:
        formatter = _formatters.by_options[key] = _LeanHtmlFormatter(**options)
    return formatter


def _markdown() -> markdown.Markdown:
    return markdown.Markdown(
        extensions=["fenced_code", "tables", "toc", "codehilite", "sane_lists", "attr_list"],
        extension_configs={
            "codehilite": {**_FORMATTER_OPTIONS, "pygments_formatter": _formatter},
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


class _Converter(threading.local):
    """One Markdown instance per thread, reset between lessons (instances are not thread-safe)."""

    def __init__(self) -> None:
        self.md = _markdown()


_converter = _Converter()

Rendered = tuple[str, tuple[TocEntry, ...]]


def render_body(text: str) -> Rendered:
    """Render a lesson body to sanitised HTML and its table of contents (h2–h4)."""
    md = _converter.md.reset()
    body = md.convert(text)
    return sanitize(body), tuple(_flatten(md.toc_tokens))


class LessonBody:
    """A lesson's Markdown and, once asked for, its (html, toc): rendered at most once per
    process even when many threads ask at the same time.

    Rendering is most of a lesson's load time, so the server renders a body when a page or the
    API first needs it. `render` may look the result up elsewhere first (the disk cache).
    """

    __slots__ = ("source", "_rendered", "_render", "_lock")

    def __init__(
        self,
        source: str,
        rendered: Rendered | None = None,
        render: Callable[[str], Rendered] = render_body,
    ) -> None:
        self.source = source
        self._rendered = rendered
        self._render: Callable[[str], Rendered] | None = None if rendered else render
        self._lock = threading.Lock()

    @property
    def is_rendered(self) -> bool:
        return self._rendered is not None

    def rendered(self) -> Rendered:
        """(html, toc), rendering under the lock on first use; later calls take no lock."""
        done = self._rendered
        if done is not None:
            return done
        with self._lock:
            if self._rendered is None:
                assert self._render is not None
                self._rendered = self._render(self.source)
                self._render = None  # drop the closure and what it holds
            return self._rendered

    def __eq__(self, other: object) -> bool:
        # Same Markdown, same renderer (the cache key covers it): the same html and toc.
        return isinstance(other, LessonBody) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        state = "rendered" if self.is_rendered else "not rendered"
        return f"<LessonBody {len(self.source)} chars, {state}>"


_INLINE_MD = markdown.Markdown(extensions=[], output_format="html")
_PARAGRAPH = re.compile(r"^<p>(.*)</p>$", re.DOTALL)
#: Prose with nothing Markdown or HTML would act on: it renders as itself. A letter first (no
#: list, heading or quote marker), ASCII letters, digits, spaces and punctuation without meaning
#: to either (no `*_[]!<>&\#`, no tab or newline). tests/test_render.py checks it against Markdown.
PLAIN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9 ,.?;:'\"()/%-]*")


def render_inline(text: str) -> str:
    """Render one line of Markdown (code, emphasis, links) as inline HTML, without the <p>."""
    text = text.strip()
    if PLAIN_TEXT.fullmatch(text):  # most quiz items: skip Markdown and the sanitiser
        return text
    body = _INLINE_MD.reset().convert(text)
    match = _PARAGRAPH.match(body)
    return sanitize(match.group(1) if match else body, inline=True)


def pygments_css() -> str:
    """The highlighting stylesheet, light by default and dark under prefers-color-scheme."""
    light = HtmlFormatter(style=LIGHT_STYLE).get_style_defs(".highlight")
    dark = HtmlFormatter(style=DARK_STYLE).get_style_defs(".highlight")
    dark = "\n".join("  " + line for line in dark.splitlines())
    return f"{light}\n\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
