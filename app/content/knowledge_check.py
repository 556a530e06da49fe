"""Find a lesson's `Knowledge Check` by the rules the Markdown renderer uses for headings.

A heading the page shows as "Knowledge Check" but the loader missed would print the quiz,
its `[x]` marks included, as plain text: so headings and code are recognised the way
Python-Markdown (render.py) recognises them, with its own regular expressions where they
are linear, and any task-list item left in the body is reported.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from markdown.blockprocessors import HRProcessor
from markdown.extensions.attr_list import AttrListTreeprocessor

from .models import ContentError

TAB_LENGTH = 4  # Python-Markdown's default, which render.py keeps

# The opening line of FencedBlockPreprocessor.FENCED_BLOCK_RE: a fence, then {attrs} or a
# language and hl_lines.
_FENCE_OPEN = re.compile(
    r"^(~{3,}|`{3,})[ ]*(?:\{[^\n]*\}|\.?[\w#.+-]*[ ]*(?:hl_lines=([\"'])[^\n]*?\2[ ]*)?)$"
)
_HR = re.compile(HRProcessor.RE)
_ATTR_LIST = AttrListTreeprocessor.HEADER_RE  # `## Title {#id}`: the braces are not shown
# Python-Markdown's ATX headings start at the margin and need no space after the hashes.
_ATX = re.compile(r"^(#{1,6})(.*)$")
_SETEXT_UNDERLINE = re.compile(r"^(?:=+|-+)[ ]*$")
_QUESTION = re.compile(r"^\s{0,3}(\d+)[.)]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+[.)]\s+)(.*)$")
_NUMERIC = re.compile(r"^\s*=\s*(.*)$")
_TRAIN_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[ ]*(train|experiment)[ ]*$")
_OPTION = re.compile(r"^\s*[-*+]\s+(.*)$")
_MARKER = re.compile(r"^\[([ xX])\]\s+(.*)$")
_EXPLANATION = re.compile(r"^\s*>\s?(.*)$")
_NOT_ASCII_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_TASK_ITEM = re.compile(r"^\s*(?:>\s*)*(?:[-*+]|\d+[.)])\s+\[[ xX]\](?=\s|$)")


@dataclass(slots=True)
class DraftOption:
    """A `- option` bullet as written, with the `> ...` feedback lines indented under it."""

    line: int
    text: str
    marker: bool | None
    indent: int
    feedback: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DraftQuestion:
    """A numbered item of the knowledge check, before its answers are validated."""

    line: int
    prompt: list[str]
    #: the column its text starts at: a numbered line indented this far is an ordering item
    content_column: int
    options: list[DraftOption] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    numeric: list[tuple[int, str]] = field(default_factory=list)  # (line, text after '=')
    items: list[tuple[int, str]] = field(default_factory=list)  # (line, text)
    run: tuple[int, str] | None = None  # (line of the opening fence, the block's text)
    experiment: tuple[int, str] | None = None  # the ```experiment block, likewise
    #: what a wrapped (lazy continuation) line continues
    last: str = "prompt"


class SplitBody(NamedTuple):
    """A body with its knowledge check cut out, and what was found on the way."""

    rest: str
    questions: list[DraftQuestion] | None  # None: no knowledge check heading
    heading_line: int
    task_item_lines: list[int]  # `- [x]` / `- [ ]` items outside the knowledge check


@dataclass(frozen=True, slots=True)
class _Heading:
    start: int  # index of its first line
    end: int  # index after its last line (a setext heading has two)
    level: int
    text: str


def reads_knowledge_check(text: str) -> bool:
    """Whether a heading's letters read "knowledge check" (`📝 Knowledge-Check:` does)."""
    # Case, punctuation, symbols (emoji) and spaces are ignored; digits are not.
    text = text.strip().rstrip("#").rstrip()
    if text.endswith("}"):
        text = _ATTR_LIST.sub("", text)
    if text.isascii():  # most headings: no need to ask unicodedata about every character
        return _NOT_ASCII_ALNUM.sub("", text).lower() == "knowledgecheck"
    folded = unicodedata.normalize("NFKC", text).casefold()
    letters = "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")
    return letters == "knowledgecheck"


def _normalise(lines: list[str]) -> list[str]:
    """The lines as Python-Markdown sees them: tabs expanded, whitespace-only lines empty."""
    out = []
    for line in lines:
        line = line.expandtabs(TAB_LENGTH)
        out.append(line if line.strip(" ") else "")
    return out


def _code_lines(lines: list[str]) -> list[bool]:
    """Which lines are inside a fenced code block, as the fenced_code extension decides."""
    # An opening fence at the margin, closed by the first later line of exactly that fence.
    # fenced_code's regex, searched again after each failed opening, is quadratic on unclosed
    # fences; bisecting each opening's closing line keeps validation linear.
    closings: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        if line[:3] in ("```", "~~~") and (fence := line.rstrip(" ")) and set(fence) == {fence[0]}:
            closings.setdefault(fence, []).append(index)
    code = [False] * len(lines)
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index]) if lines[index][:3] in ("```", "~~~") else None
        candidates = closings.get(opening.group(1), []) if opening else []
        after = bisect.bisect_right(candidates, index)
        if after == len(candidates):
            index += 1
            continue
        close = candidates[after]
        code[index : close + 1] = [True] * (close + 1 - index)
        index = close + 1
    return code


def _headings(lines: list[str], code: list[bool]) -> Iterator[_Heading]:
    """ATX and setext headings outside code, as Python-Markdown's block parser finds them."""
    # A setext heading is the first line of a block (after a blank line, a heading, a rule or
    # code) underlined at the margin with `=` or `-`; a `#` line at the margin is a heading
    # anywhere, even inside a paragraph or a list.
    block_start, index = True, 0
    while index < len(lines):
        line = lines[index]
        if code[index] or not line:
            block_start, index = True, index + 1
            continue
        if atx := _ATX.match(line):
            yield _Heading(index, index + 1, len(atx.group(1)), atx.group(2))
            block_start, index = True, index + 1
            continue
        if block_start and line.startswith(" " * TAB_LENGTH):
            index += 1  # indented code: the first line at the margin starts a new block
            continue
        underline = lines[index + 1] if index + 1 < len(lines) else ""
        if block_start and _SETEXT_UNDERLINE.match(underline) and not code[index + 1]:
            yield _Heading(index, index + 2, 1 if underline[0] == "=" else 2, line)
            block_start, index = True, index + 2
            continue
        block_start, index = bool(_HR.match(line)), index + 1


def split_knowledge_check(body: str, first_line: int) -> SplitBody:
    """Cut the knowledge check (up to the next heading of its level or higher) out of a body."""
    lines = body.split("\n")
    seen = _normalise(lines)
    code = _code_lines(seen)
    quiz: _Heading | None = None
    end = len(lines)
    for heading in _headings(seen, code):
        if quiz is None:
            if reads_knowledge_check(heading.text):
                quiz = heading
        elif heading.level <= quiz.level:
            end = heading.start
            break
    start, content = (quiz.start, quiz.end) if quiz else (end, end)
    tasks = [
        first_line + i
        for i, line in enumerate(seen)
        if not code[i] and not start <= i < end and _TASK_ITEM.match(line)
    ]
    if quiz is None:
        return SplitBody(body, None, 0, tasks)
    rest = "\n".join(lines[:start] + lines[end:])
    questions = _parse_questions(lines[content:end], first_line + content)
    return SplitBody(rest, questions, first_line + start, tasks)


def _indent(line: str) -> int:
    expanded = line.expandtabs(TAB_LENGTH)
    return len(expanded) - len(expanded.lstrip(" "))


def _parse_questions(lines: list[str], first_line: int) -> list[DraftQuestion]:
    questions: list[DraftQuestion] = []
    # (line, fence, indent, body lines, language)
    fence: tuple[int, str, int, list[str], str] | None = None
    for offset, line in enumerate(lines):
        number = first_line + offset
        current = questions[-1] if questions else None
        if fence is not None:
            opened, marks, indent, body, language = fence
            stripped = line.strip()
            if stripped and set(stripped) == {marks[0]} and len(stripped) >= len(marks):
                assert current is not None
                block = (opened, "\n".join(body))
                if language == "train":
                    current.run = block
                else:
                    current.experiment = block
                current.last, fence = "run", None
            else:
                body.append(line.expandtabs(TAB_LENGTH)[indent:] if _indent(line) >= indent else "")
            continue
        if not line.strip():
            continue
        indent = _indent(line)
        nested = _NUMBERED.match(line)
        if current is not None and nested and indent >= current.content_column:
            # A numbered list inside a question: the items of an ordering, in the right order.
            current.items.append((number, nested.group(3)))
            current.last = "item"
            continue
        if match := _QUESTION.match(line):
            assert nested is not None
            column = len(nested.group(1).expandtabs(TAB_LENGTH) + nested.group(2).expandtabs())
            questions.append(DraftQuestion(number, [match.group(2)], column))
            continue
        if opening := _TRAIN_FENCE.match(line):
            language = opening.group(2)
            if current is None:
                raise ContentError(
                    f"{language} block before any numbered question",
                    line=number,
                    hint=f"put the ```{language} block inside the question it belongs to",
                )
            if current.run is not None or current.experiment is not None:
                had = "train" if current.run is not None else "experiment"
                what = (
                    f"a second {language} block"
                    if had == language
                    else "both a train block and an experiment block"
                )
                raise ContentError(
                    f"question has {what}; one run per question",
                    line=number,
                    hint="split it into two questions",
                )
            fence = (number, opening.group(1), indent, [], language)
            continue
        if match := _EXPLANATION.match(line):
            if current is None:
                continue  # a quote above the first question is an introduction, not an answer
            last = current.options[-1] if current.options else None
            if last is not None and current.last == "option" and indent > last.indent:
                last.feedback.append(match.group(1))  # indented under the option: its feedback
            else:
                current.explanation.append(match.group(1))
                current.last = "explanation"
        elif match := _NUMERIC.match(line):
            if current is None:
                continue  # like any other text above the first question
            current.numeric.append((number, match.group(1)))
            current.last = "numeric"
        elif match := _OPTION.match(line):
            if current is None:
                raise ContentError(
                    "knowledge check option before any numbered question",
                    line=number,
                    hint="questions are numbered items ('1. ...'), options are bullets below them",
                )
            text = match.group(1)
            marker = _MARKER.match(text)
            if marker:
                current.options.append(
                    DraftOption(number, marker.group(2), marker.group(1) != " ", indent)
                )
            else:
                current.options.append(DraftOption(number, text, None, indent))
            current.last = "option"
        elif current is not None and not current.explanation:
            _continue(current, line.strip(), number)
    if fence is not None:
        raise ContentError(
            f"{fence[4]} block is not closed",
            line=fence[0],
            hint=f"end it with a line of {fence[1]}",
        )
    return questions


def _continue(question: DraftQuestion, text: str, number: int) -> None:
    """A lazy continuation line: a wrapped prompt, option, option feedback or ordering item."""
    if question.last == "item":
        item_line, item = question.items[-1]
        question.items[-1] = (item_line, f"{item} {text}")
    elif question.options:
        option = question.options[-1]
        if option.feedback:
            option.feedback.append(text)
        else:
            option.text = f"{option.text} {text}"
    elif question.last == "numeric":
        raise ContentError(
            "text after an '=' answer line",
            line=number,
            hint="write the prompt above the '=' lines, and an explanation as a '> ...' line",
        )
    else:
        question.prompt.append(text)
