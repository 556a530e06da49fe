"""Markdown to safe HTML: highlighted code, MathML, heading ids, a table of contents, sanitised."""

from __future__ import annotations

import html as htmllib
import re
import threading
from collections.abc import Callable
from dataclasses import replace

import markdown
import nh3
from pygments.formatters import HtmlFormatter
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, Token

from . import mathml
from .mathml import MathError, MathExtension
from .models import ContentError, Problem, TocEntry

#: Tags an author may use; everything else (script, iframe, style, form...) is dropped.
BLOCK_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
}  # fmt: skip
INLINE_TAGS = {"a", "abbr", "b", "br", "code", "del", "em", "i", "kbd", "mark", "s", "span",
               "strong", "sub", "sup", "u", "var"}  # fmt: skip
BLOCK_TAGS |= mathml.MATH_TAGS
INLINE_TAGS |= mathml.MATH_TAGS
ATTRIBUTES = {
    **mathml.ATTRIBUTES,
    "*": {"class", "id", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "abbr": {"title"},
    "div": {"tabindex"},  # the box a display formula scrolls in is focusable (mathml.py)
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


def _markdown(math: MathExtension) -> markdown.Markdown:
    return markdown.Markdown(
        extensions=["fenced_code", "tables", "toc", "codehilite", "sane_lists", "attr_list", math],
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
        self.math = MathExtension()
        self.md = _markdown(self.math)


_converter = _Converter()

Rendered = tuple[str, tuple[TocEntry, ...]]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _locate(text: str, errors: list[MathError]) -> list[MathError]:
    """Each error with the line of `text` its formula is on, searched in document order."""
    # Markdown keeps no positions, and list or quote markers and tabs can change a formula's
    # lines on the way: a formula not found as written is looked for by its first line.
    located, cursor = [], 0
    for error in errors:
        written, first = error.written, _first_line(error.latex)
        for needle, start in ((written, cursor), (first, cursor), (written, 0), (first, 0)):
            at = text.find(needle, start) if needle else -1
            if at >= 0:
                cursor = at + len(needle)
                located.append(replace(error, line=text.count("\n", 0, at) + 1))
                break
        else:
            located.append(error)
    return located


def render_body(text: str, math_errors: list[MathError] | None = None) -> Rendered:
    """Render a lesson body to sanitised HTML and its table of contents (h2–h4); a formula
    that cannot be drawn is shown as written and added to `math_errors` with its line."""
    md = _converter.md.reset()
    body = md.convert(text)
    if math_errors is not None and _converter.math.errors:
        math_errors.extend(_locate(text, _converter.math.errors))
    return sanitize(body), tuple(_flatten(md.toc_tokens))


def math_problems(path: str, body: LessonBody) -> list[Problem]:
    """The formulas a rendered body could not draw, as check errors on their file's lines."""
    return [
        Problem(
            path,
            None if error.line is None else body.first_line + error.line - 1,
            _invalid(error),
            hint=_MATH_HINT,
        )
        for error in body.math_errors
    ]


_MATH_HINT = "fix the TeX (see README, 'Mathematics'), or write \\$ for a dollar sign"


def _invalid(error: MathError) -> str:
    written = error.written if len(error.written) <= 60 else error.written[:57] + "..."
    return f"invalid LaTeX {written}: {error.message}"


#: How a LessonBody renders its source: appending the formulas it could not draw to the list.
Render = Callable[[str, list[MathError]], Rendered]


class LessonBody:
    """A lesson's Markdown and, once asked for, its (html, toc): rendered at most once per
    process even when many threads ask at the same time.

    Rendering is most of a lesson's load time, so the server renders a body when a page or the
    API first needs it. `render` may look the result up elsewhere first (the disk cache).
    `first_line` is the file's line the source starts on, for `math_problems`.
    """

    __slots__ = ("source", "first_line", "math_errors", "_rendered", "_render", "_lock")

    def __init__(
        self,
        source: str,
        rendered: Rendered | None = None,
        render: Render = render_body,
        *,
        first_line: int = 1,
    ) -> None:
        self.source = source
        self.first_line = first_line
        #: The formulas the render could not draw (lines in `source`); () until rendered.
        self.math_errors: tuple[MathError, ...] = ()
        self._rendered = rendered
        self._render: Render | None = None if rendered else render
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
                errors: list[MathError] = []
                rendered = self._render(self.source, errors)
                self.math_errors = tuple(errors)
                self._rendered = rendered
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


_INLINE_MATH = MathExtension()
_INLINE_MD = markdown.Markdown(extensions=[_INLINE_MATH], output_format="html")
#: One instance for every caller, and its errors are read after the convert: one at a time.
_INLINE_LOCK = threading.Lock()
_PARAGRAPH = re.compile(r"^<p>(.*)</p>$", re.DOTALL)
#: Prose with nothing Markdown or HTML would act on: it renders as itself. A letter first (no
#: list, heading or quote marker), ASCII letters, digits, spaces and punctuation without meaning
#: to either (no `*_[]!<>&\#`, no tab or newline). tests/test_render.py checks it against Markdown.
PLAIN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9 ,.?;:'\"()/%-]*")


def render_inline(text: str, *, line: int | None = None) -> str:
    """Render one line of Markdown (code, emphasis, links, math) as inline HTML, without the
    <p>; a formula that cannot be drawn is a ContentError on `line`."""
    text = text.strip()
    if PLAIN_TEXT.fullmatch(text):  # most quiz items: skip Markdown and the sanitiser
        return text
    with _INLINE_LOCK:
        body = _INLINE_MD.reset().convert(text)
        errors = list(_INLINE_MATH.errors)
    if errors:
        raise ContentError(_invalid(errors[0]), line=line, hint=_MATH_HINT)
    match = _PARAGRAPH.match(body)
    return sanitize(match.group(1) if match else body, inline=True)


def pygments_css() -> str:
    """The highlighting stylesheet, light by default and dark under prefers-color-scheme."""
    light = HtmlFormatter(style=LIGHT_STYLE).get_style_defs(".highlight")
    dark = HtmlFormatter(style=DARK_STYLE).get_style_defs(".highlight")
    dark = "\n".join("  " + line for line in dark.splitlines())
    return f"{light}\n\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
