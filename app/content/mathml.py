"""TeX between dollars drawn as MathML on the server: arithmatex finds it, latex2mathml converts it.

Pages carry the MathML itself, so the browser draws it with no script, font or CDN. A formula
latex2mathml cannot draw faithfully (a syntax error, an unknown command or environment, a brace
left open) is shown as written, marked, and reported: `backprop check` makes it an error.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass

from latex2mathml import commands
from latex2mathml.converter import convert_to_element
from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString
from pymdownx.arithmatex import ArithmatexExtension

#: MathML the sanitiser keeps: what latex2mathml writes, and the presentation elements around
#: it. Not `annotation-xml` or `maction`: the first may hold HTML, the second is interactive.
MATH_TAGS = {
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace",
    "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mstyle", "mtable", "mtr", "mtd",
    "mover", "munder", "munderover", "mpadded", "mphantom", "menclose", "merror",
    "mmultiscripts", "mprescripts", "none",
}  # fmt: skip
#: Layout attributes only: no href, style, mathcolor or event handlers on any of them.
MATH_ATTRIBUTES = {
    "accent", "accentunder", "columnalign", "columnlines", "columnspacing", "columnspan",
    "depth", "display", "displaystyle", "fence", "form", "frame", "height", "largeop",
    "linethickness", "lspace", "mathsize", "mathvariant", "maxsize", "minsize",
    "movablelimits", "notation", "rowalign", "rowlines", "rowspacing", "rowspan", "rspace",
    "scriptlevel", "separator", "stretchy", "symmetric", "voffset", "width",
}  # fmt: skip
ATTRIBUTES = {tag: set(MATH_ATTRIBUTES) for tag in MATH_TAGS}
ATTRIBUTES["math"] |= {"alttext"}
ATTRIBUTES["annotation"] = {"encoding"}

#: Longer than any formula a lesson needs; bounds the converter's work on one.
MAX_FORMULA_CHARS = 4000

#: Commands latex2mathml accepts that we refuse: macro definitions (their expansion is
#: unbounded work at load), and links, inline styles and colours the sanitiser would strip.
_REFUSED = {
    commands.DEF: "macro definitions", commands.NEWCOMMAND: "macro definitions",
    r"\renewcommand": "macro definitions", commands.NEWENVIRONMENT: "macro definitions",
    commands.DECLAREMATHOPERATOR: "macro definitions (write \\operatorname{name})",
    commands.HREF: "links", r"\style": "inline styles", commands.COLOR: "colours",
    commands.TEXTCOLOR: "colours", commands.COLORBOX: "colours", commands.FCOLORBOX: "colours",
}  # fmt: skip
_ENVIRONMENTS = {
    name[1:]
    for name in (*commands.MATRICES, commands.CASES, commands.SPLIT, commands.ALIGN)
    + (commands.ALIGNSTAR, commands.SMALLMATRIX)
}
_COMMAND = re.compile(r"\\[A-Za-z]+")
_BEGIN = re.compile(r"\\begin\s*\{([^{}]*)\}")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class InvalidMath(ValueError):
    """TeX latex2mathml cannot draw as written; the message says why."""


def _check_source(latex: str) -> None:
    if len(latex) > MAX_FORMULA_CHARS:
        raise InvalidMath(f"the formula is over {MAX_FORMULA_CHARS} characters")
    for command in _COMMAND.findall(latex):
        if command in _REFUSED:
            raise InvalidMath(f"{command} is not supported: no {_REFUSED[command]} in formulas")
    for environment in _BEGIN.findall(latex):
        if environment.strip() not in _ENVIRONMENTS:
            raise InvalidMath(
                f"unknown environment {{{environment}}}"
                " (try split, align, cases, array or a matrix)"
            )
    depth = 0
    for match in re.finditer(r"\\.|[{}]", latex, re.DOTALL):
        token = match.group()
        depth += {"{": 1, "}": -1}.get(token, 0)
        if depth < 0:
            raise InvalidMath("a '}' closes no '{'")
    if depth:
        raise InvalidMath(f"{depth} '{{' never closed" if depth > 1 else "a '{' is never closed")


def _describe(exc: Exception) -> str:
    """latex2mathml's exceptions carry their meaning in the class name, often with no message."""
    words = _CAMEL.sub(" ", type(exc).__name__.removesuffix("Error")).lower()
    return f"{words}: {exc}" if str(exc) else words


def _check_output(root: etree.Element) -> None:
    """What latex2mathml lets through but cannot mean what the author wrote."""
    for element in root.iter():
        text = element.text or ""
        if element.tag != "mtext" and _COMMAND.fullmatch(text):
            raise InvalidMath(f"unknown command {text}")
        if element.tag == "mi" and text == "&":
            raise InvalidMath("'&' outside a matrix, cases, split or align environment")
        if element.get("linebreak") == "newline":
            raise InvalidMath(r"'\\' breaks lines only inside an environment such as split")


_SCRIPTS = {"msub", "msup", "msubsup", "munder", "mover", "munderover"}
_NAME = re.compile(r"[A-Za-z]{2,}")
_THIN = "0.167em"


def _name_of(atom: etree.Element) -> etree.Element | None:
    """The operator name (log, max, softmax...) an atom is, or carries scripts on."""
    base = atom[0] if atom.tag in _SCRIPTS and len(atom) else atom
    if base.tag in ("mi", "mo") and _NAME.fullmatch(base.text or "") and len(base) == 0:
        return base
    return None


def _space_names(root: etree.Element) -> None:
    """Operator names as TeX sets them: upright, a thin space from the atoms beside them and
    none before a bracket. latex2mathml writes `\\log` as a bare <mi> (no space: "logx") and
    `\\operatorname` as an <mo> without dictionary spacing (a wide gap before "(")."""
    for parent in list(root.iter()):
        children = list(parent)
        if parent.tag in _SCRIPTS or not any(_name_of(child) is not None for child in children):
            continue
        spaced: list[etree.Element] = []
        for index, child in enumerate(children):
            name = _name_of(child)
            if name is not None and name.tag == "mo" and name.get("movablelimits") is None:
                name.tag, name.attrib = "mi", {}  # a multi-letter <mi> is upright
            if name is None or name.tag != "mi":
                spaced.append(child)
                continue
            before = spaced[-1] if spaced else None
            after = children[index + 1] if index + 1 < len(children) else None
            if before is not None and before.tag not in ("mo", "mspace"):
                spaced.append(etree.Element("mspace", width=_THIN))
            spaced.append(child)
            if after is not None and after.tag not in ("mo", "mspace"):
                spaced.append(etree.Element("mspace", width=_THIN))
        parent[:] = spaced


_SIGNS = {"\u2212", "+", "\u00b1", "\u2213"}
_CLOSING = {")", "]", "}", "|", "\u2016", "\u27e9", "\u230b", "\u2309"}


def _unary_signs(root: etree.Element) -> None:
    """A sign after an operator or an opening bracket is unary, as TeX sets it (`= -x`,
    `(-z)`): no space around it. MathML would space it as the binary minus of `a - b`."""
    for parent in list(root.iter()):
        previous = None
        for child in parent:
            if (
                child.tag == "mo"
                and child.text in _SIGNS
                and previous is not None
                and previous.tag == "mo"
                and previous.text not in _CLOSING
            ):
                child.set("lspace", "0")
                child.set("rspace", "0")
            previous = child


_PRIMES = re.compile("[\u2032\u2033\u2034\u2057]+")


def _prime_text(script: etree.Element) -> str | None:
    parts = list(script) if script.tag == "mrow" else [script]
    text = "".join(part.text or "" for part in parts)
    plain = all(part.tag in ("mi", "mo") and len(part) == 0 for part in parts)
    return text if plain and _PRIMES.fullmatch(text) else None


def _set_primes(root: etree.Element) -> None:
    """`f'` as f and a prime beside it: latex2mathml makes the prime a superscript, and the
    prime character, raised already, comes out tiny and too high."""
    for element in list(root.iter("msup")):
        if len(element) == 2 and (primes := _prime_text(element[1])) is not None:
            element.tag = "mrow"
            element[1] = etree.Element("mo", lspace="0", rspace="0")
            element[1].text = primes


def to_mathml(latex: str, *, display: bool) -> str:
    """One formula as a MathML `<math>` element; raises InvalidMath for TeX it cannot draw."""
    _check_source(latex)
    try:
        root = convert_to_element(latex, display="block" if display else "inline")
    # A third-party parser fed author text: whatever it raises (its own errors, IndexError,
    # RecursionError on deep nesting) means this formula cannot be drawn, not a failed page.
    except Exception as exc:
        raise InvalidMath(_describe(exc)) from None
    _check_output(root)
    root.attrib.pop("xmlns", None)  # HTML puts <math> in the MathML namespace by itself
    root.set("alttext", latex.strip())  # the source, for assistive technology and copying
    for element in root.iter():
        # latex2mathml writes character references as text ("&#x02211;") and leaves the
        # author's own "<" and "&" raw: decode once, and tostring() escapes it all properly.
        if element.text:
            element.text = html.unescape(element.text)
        if element.tail:
            element.tail = html.unescape(element.tail)
    _space_names(root)
    _set_primes(root)
    _unary_signs(root)
    return etree.tostring(root, encoding="unicode")


@dataclass(frozen=True, slots=True)
class MathError:
    """A formula that could not be drawn: its TeX, how it was written, why, and (once the
    renderer has found it in the text) its line there, from 1."""

    latex: str
    display: bool
    message: str
    line: int | None = None

    @property
    def written(self) -> str:
        return f"$${self.latex}$$" if self.display else f"${self.latex}$"


class _ToMathML(Treeprocessor):
    """Replaces arithmatex's generic output (a span or div holding the TeX) with MathML."""

    def __init__(self, md: Markdown, errors: list[MathError]) -> None:
        super().__init__(md)
        self.errors = errors

    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            if element.get("class") != "arithmatex":
                continue
            display = element.tag == "div"
            # The block processor escapes its TeX for HTML, the inline one does not.
            latex = html.unescape(element.text or "") if display else element.text or ""
            try:
                mathml = to_mathml(latex, display=display)
            except InvalidMath as exc:
                error = MathError(latex, display, str(exc))
                self.errors.append(error)
                element.set("class", "math-error")
                element.set("title", f"invalid LaTeX: {error.message}")
                element.text = AtomicString(error.written)
                continue
            element.set("class", "math-display" if display else "math-inline")
            if display:  # a formula wider than a phone scrolls: keyboards must reach it too
                element.set("tabindex", "0")
            element.text = self.md.htmlStash.store(mathml)


class MathExtension(Extension):
    """`$...$` and `$$...$$` (smart dollars, so "$5 and $10" stays prose; `\\$` is a dollar)
    as MathML; the formulas that failed since the last reset are in `errors`."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[MathError] = []

    def extendMarkdown(self, md: Markdown) -> None:
        md.registerExtension(self)
        ArithmatexExtension(
            generic=True,
            smart_dollar=True,
            inline_syntax=["dollar"],
            block_syntax=["dollar"],
            tex_inline_wrap=["", ""],
            tex_block_wrap=["", ""],
        ).extendMarkdown(md)
        # After the inline patterns (20), before the table of contents reads the headings (5).
        md.treeprocessors.register(_ToMathML(md, self.errors), "mathml", 19)

    def reset(self) -> None:
        self.errors.clear()
