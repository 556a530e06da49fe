"""Read every lesson under a folder, validate it strictly, and render it once.

A file with an error is left out of the course and reported with its path and line; it never
stops the other lessons from loading. Nothing here raises for bad content.

Validation (front matter, fields, the knowledge check and its inline Markdown) always happens
at load. Rendering the body (Markdown, Pygments, nh3: most of the time) happens at load too,
unless `load_course(..., lazy=True)` defers it to the body's first use, as the server does.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from .cache import RenderCache
from .models import Course, Lesson, Option, Problem, Question, Quiz
from .render import LessonBody, Rendered, render_body, render_inline

log = logging.getLogger("backprop.content")

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
MAX_ID_LENGTH = 100
KNOWN_FIELDS = (
    "id",
    "title",
    "type",
    "duration",
    "order",
    "section",
    "nextLessonId",
    "passPercent",
)
MAX_FILE_BYTES = 2 * 1024 * 1024

_DURATION_TOKEN = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)\b\s*,?", re.IGNORECASE
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_QUESTION = re.compile(r"^\s{0,3}(\d+)[.)]\s+(.*)$")
_OPTION = re.compile(r"^\s*[-*+]\s+(.*)$")
_MARKER = re.compile(r"^\[([ xX])\]\s+(.*)$")
_EXPLANATION = re.compile(r"^\s*>\s?(.*)$")


class ContentError(Exception):
    """A problem that makes one file unservable; carries the line it was found on."""

    def __init__(self, message: str, *, line: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:  # `? [a]` or `{a: 1}: x`: a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_duration(value: object) -> int:
    """`55 mins`, `1 hr 10 mins`, `1h 30m`, `90 minutes` (or a bare number of minutes) → minutes."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int):
        minutes = float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos, minutes, tokens = 0, 0.0, 0
        while pos < len(text):
            match = _DURATION_TOKEN.match(text, pos)
            if not match:
                raise ValueError("not a duration")
            amount, unit = float(match.group(1)), match.group(2).lower()
            minutes += amount * 60 if unit.startswith("h") else amount
            pos, tokens = match.end(), tokens + 1
        if tokens == 0:
            raise ValueError("not a duration")
    else:
        raise ValueError("not a duration")
    if minutes <= 0 or minutes > 100 * 60:
        raise ValueError("duration out of range")
    return round(minutes)


@dataclass(slots=True)
class _Source:
    """A decoded file split into front matter and body, with the line each starts on."""

    path: str
    meta_text: str
    meta_line: int
    body: str
    body_line: int


def read_bytes(path: Path) -> bytes:
    """A lesson file's bytes, refusing files over the size limit before reading them."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ContentError(
                f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit",
                hint="split the lesson into smaller ones",
            )
        return path.read_bytes()
    except OSError as exc:
        raise ContentError(f"cannot read file: {exc.strerror}") from None


def _split(raw: bytes, rel: str) -> _Source:
    if not raw.strip():
        raise ContentError("file is empty", line=1, hint="start with a '---' front matter block")
    if b"\x00" in raw:
        raise ContentError("file looks binary (contains NUL bytes)", hint="lessons are UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ContentError(
            f"not valid UTF-8 (byte {exc.start})", line=line, hint="save the file as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n")
    boundaries = list(frontmatter.YAMLHandler.FM_BOUNDARY.finditer(text))
    if not boundaries or boundaries[0].start() != 0 or text[: boundaries[0].start()].strip():
        raise ContentError(
            "no front matter", line=1, hint="the file must begin with a line of '---'"
        )
    if len(boundaries) < 2:
        raise ContentError(
            "front matter is not closed", line=1, hint="end the front matter with a line of '---'"
        )
    opening, closing = boundaries[0], boundaries[1]
    opening_end = text.index("\n", opening.start()) + 1 if "\n" in text else len(text)
    closing_end = text.find("\n", closing.start())
    closing_end = len(text) if closing_end == -1 else closing_end + 1
    return _Source(
        path=rel,
        meta_text=text[opening_end : closing.start()],
        meta_line=2,
        body=text[closing_end:],
        body_line=text[:closing_end].count("\n") + 1,
    )


def _field_lines(source: _Source) -> dict[str, int]:
    lines: dict[str, int] = {}
    for offset, line in enumerate(source.meta_text.splitlines()):
        match = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
        if match:
            lines.setdefault(match.group(1), source.meta_line + offset)
    return lines


def _parse_meta(source: _Source) -> tuple[dict[str, Any], dict[str, int], list[Problem]]:
    try:
        meta = yaml.load(source.meta_text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = source.meta_line + mark.line if mark else source.meta_line
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(
            f"invalid YAML in front matter: {problem}",
            line=line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values it parsed but cannot build, such as
        # `date: 2024-13-01` or a bare `!!int`; uncaught, one such file stopped the whole site.
        raise ContentError(
            f"invalid value in front matter: {exc or type(exc).__name__}",
            line=source.meta_line,
            hint="quote the value to keep it as text",
        ) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError(
            "front matter must be a mapping of 'key: value' lines", line=source.meta_line
        )
    lines = _field_lines(source)
    warnings = []
    for key in meta:
        if key not in KNOWN_FIELDS:
            close = difflib.get_close_matches(str(key), KNOWN_FIELDS, n=1)
            warnings.append(
                Problem(
                    source.path,
                    lines.get(str(key)),
                    f"unknown front matter field {key!r}",
                    hint=f"did you mean {close[0]!r}?" if close else "it is ignored",
                    severity="warning",
                )
            )
    return meta, lines, warnings


def _string(meta: dict, lines: dict[str, int], key: str, *, required: bool) -> str | None:
    value = meta.get(key)
    if value is None:
        if required:
            raise ContentError(
                f"missing required field {key!r}",
                line=lines.get(key, 2),
                hint=f"add a line '{key}: ...' to the front matter",
            )
        return None
    if not isinstance(value, str) or not value.strip():
        raise ContentError(
            f"field {key!r} must be a non-empty string, not {type(value).__name__}",
            line=lines.get(key),
            hint="quote the value",
        )
    return value.strip()


def _identifier(meta: dict, lines: dict[str, int], key: str, *, required: bool) -> str | None:
    value = _string(meta, lines, key, required=required)
    if value is not None and (len(value) > MAX_ID_LENGTH or not ID_PATTERN.fullmatch(value)):
        raise ContentError(
            f"field {key!r} is {value!r}, not a valid lesson id",
            line=lines.get(key),
            hint=f"use lowercase letters, digits and '-', starting with a letter or digit, "
            f"at most {MAX_ID_LENGTH} characters",
        )
    return value


def _integer(
    meta: dict, lines: dict[str, int], key: str, default: int | None, lo: int, hi: int
) -> int | None:
    value = meta.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ContentError(
            f"field {key!r} must be a whole number from {lo} to {hi}, not {value!r}",
            line=lines.get(key),
        )
    return value


def _playground(meta: dict, lines: dict[str, int]) -> dict[str, Any] | None:
    """The optional preset for "Train this network": /train fields, scalars or lists of ints."""
    value = meta.get("playground")
    if value is None:
        return None
    scalar = (str, int, float, bool)
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and (
            isinstance(v, scalar)
            or v is None
            or (isinstance(v, list) and all(isinstance(i, int) for i in v))
        )
        for k, v in value.items()
    ):
        raise ContentError(
            "field 'playground' must map /train fields to values",
            line=lines.get("playground"),
            hint="for example 'playground: {dataset: digits, hidden_layers: [128, 64]}'",
        )
    return value


def _question_ids(lesson_id: str, prompts: list[str]) -> list[str]:
    """Stable, opaque question ids: a hash of the prompt, so reordering keeps history valid."""
    ids: list[str] = []
    for index, prompt in enumerate(prompts):
        qid = "q" + hashlib.sha256(f"{lesson_id}\0{prompt}".encode()).hexdigest()[:10]
        if qid in ids:  # identical prompts: disambiguate by position
            qid = f"{qid}-{index + 1}"
        ids.append(qid)
    return ids


def _option_id(lesson_id: str, question_id: str, text: str) -> str:
    return "o" + hashlib.sha256(f"{lesson_id}\0{question_id}\0{text}".encode()).hexdigest()[:12]


@dataclass(slots=True)
class _DraftQuestion:
    line: int
    prompt: list[str]
    options: list[tuple[int, str, bool | None]]  # (line, text, marker)
    explanation: list[str]


def split_knowledge_check(
    body: str, first_line: int
) -> tuple[str, list[_DraftQuestion] | None, int]:
    """Cut the `Knowledge Check` out of a body: the rest, its questions, its heading line."""
    lines = body.split("\n")
    in_fence: str | None = None
    start = end = None
    level = 0
    for index, line in enumerate(lines):
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(1)[0] * 3
            if in_fence is None:
                in_fence = marker
            elif fence.group(1).startswith(in_fence):
                in_fence = None
            continue
        if in_fence:
            continue
        heading = _HEADING.match(line)
        if not heading:
            continue
        if start is None:
            if heading.group(2).strip().lower() == "knowledge check":
                start, level = index, len(heading.group(1))
        elif len(heading.group(1)) <= level:
            end = index
            break
    if start is None:
        return body, None, 0
    end = len(lines) if end is None else end
    rest = "\n".join(lines[:start] + lines[end:])
    return (
        rest,
        _parse_questions(lines[start + 1 : end], first_line + start + 1),
        first_line + start,
    )


def _parse_questions(lines: list[str], first_line: int) -> list[_DraftQuestion]:
    questions: list[_DraftQuestion] = []
    for offset, line in enumerate(lines):
        number = first_line + offset
        if not line.strip():
            continue
        if match := _QUESTION.match(line):
            questions.append(_DraftQuestion(number, [match.group(2)], [], []))
            continue
        current = questions[-1] if questions else None
        if match := _EXPLANATION.match(line):
            if current is None:
                continue  # a quote above the first question is an introduction, not an answer
            current.explanation.append(match.group(1))
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
                current.options.append((number, marker.group(2), marker.group(1) != " "))
            else:
                current.options.append((number, text, None))
        elif current is not None and not current.explanation:
            # Lazy continuation: a wrapped prompt or a wrapped option.
            if current.options:
                opt_line, text, mark = current.options[-1]
                current.options[-1] = (opt_line, f"{text} {line.strip()}", mark)
            else:
                current.prompt.append(line.strip())
    return questions


def _build_quiz(
    lesson_id: str, drafts: list[_DraftQuestion], pass_percent: int | None, heading_line: int
) -> Quiz:
    if not drafts:
        raise ContentError(
            "the Knowledge Check section has no numbered questions",
            line=heading_line,
            hint="write questions as '1. Question?' with '- option' bullets below",
        )
    prompts = [" ".join(d.prompt).strip() for d in drafts]
    ids = _question_ids(lesson_id, prompts)
    questions = []
    for draft, prompt, qid in zip(drafts, prompts, ids, strict=True):
        if len(draft.options) < 2:
            raise ContentError(
                f"question has {len(draft.options)} option(s); it needs at least two",
                line=draft.line,
                hint="list the options as '- ...' bullets indented under the question",
            )
        marks = [mark for _, _, mark in draft.options]
        ticked = [line for line, _, mark in draft.options if mark]
        if len(ticked) > 1:
            raise ContentError(
                f"question marks {len(ticked)} options [x]; exactly one may be right",
                line=ticked[1],
                hint="leave one '- [x]' and make the others '- [ ]'",
            )
        if any(m is not None for m in marks) and not ticked:
            raise ContentError(
                "question uses [ ] markers but marks no option [x]",
                line=draft.line,
                hint="mark the right option with '- [x]'",
            )
        texts = [text.strip() for _, text, _ in draft.options]
        if len(set(texts)) != len(texts):
            raise ContentError(
                "question lists the same option twice",
                line=draft.line,
                hint="every option's text must differ",
            )
        right = texts.index(next(t for (_, t, m) in draft.options if m)) if ticked else 0
        options = tuple(
            Option(
                id=_option_id(lesson_id, qid, text), html=render_inline(text), correct=i == right
            )
            for i, text in enumerate(texts)
        )
        explanation = " ".join(s.strip() for s in draft.explanation).strip()
        questions.append(
            Question(
                id=qid,
                prompt_html=render_inline(prompt),
                options=options,
                explanation_html=render_inline(explanation) if explanation else None,
                line=draft.line,
            )
        )
    return Quiz(questions=tuple(questions), pass_percent=pass_percent)


def _strip_title_heading(body: str, title: str) -> str:
    """Drop a leading `# Title` that repeats the front matter title: the page shows it once."""
    stripped = body.lstrip("\n")
    first, _, rest = stripped.partition("\n")
    heading = _HEADING.match(first)
    if heading and len(heading.group(1)) == 1 and heading.group(2).strip() == title:
        return "\n" * (len(body) - len(stripped) + 1) + rest
    return body


def load_lesson(
    path: Path,
    rel: str,
    raw: bytes | None = None,
    *,
    render: Callable[[str], Rendered] | None = None,
) -> tuple[Lesson, list[Problem]]:
    """Parse, validate and render one file; raises ContentError for the first error found.

    With `render`, the body is not rendered here but by `render` on its first use.
    """
    source = _split(read_bytes(path) if raw is None else raw, rel)
    meta, lines, warnings = _parse_meta(source)
    lesson_id = _identifier(meta, lines, "id", required=True)
    title = _string(meta, lines, "title", required=True)
    section = _string(meta, lines, "section", required=True)
    kind = _string(meta, lines, "type", required=False) or "lesson"
    if "duration" not in meta:
        raise ContentError(
            "missing required field 'duration'", line=2, hint="for example 'duration: 55 mins'"
        )
    try:
        duration = parse_duration(meta["duration"])
    except ValueError:
        raise ContentError(
            f"cannot read duration {meta['duration']!r}",
            line=lines.get("duration"),
            hint="write it like '55 mins', '1 hr 10 mins' or '1h 30m'",
        ) from None
    order = _integer(meta, lines, "order", 0, -(10**6), 10**6)
    pass_percent = _integer(meta, lines, "passPercent", None, 0, 100)
    next_id = _identifier(meta, lines, "nextLessonId", required=False)
    playground = _playground(meta, lines)
    assert lesson_id and title and section and order is not None

    body, drafts, heading_line = split_knowledge_check(source.body, source.body_line)
    quiz = None if drafts is None else _build_quiz(lesson_id, drafts, pass_percent, heading_line)
    source = _strip_title_heading(body, title)
    lesson = Lesson(
        id=lesson_id,
        title=title,
        type=kind,
        duration_minutes=duration,
        order=order,
        section=section,
        next_lesson_id=next_id,
        path=rel,
        body=LessonBody(source, render=render)
        if render
        else LessonBody(source, render_body(source)),
        quiz=quiz,
        pass_percent=pass_percent,
        playground=playground,
    )
    return lesson, warnings


def discover(content_dir: Path) -> list[tuple[Path, str]]:
    """Every `*.md` under the folder, recursively, skipping hidden files and folders, sorted."""
    found = []
    for path in content_dir.rglob("*.md"):
        rel = path.relative_to(content_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found.append((path, rel.as_posix()))
    return sorted(found, key=lambda item: item[1])


def _load_cached(
    path: Path, shown: str, cache: RenderCache | None, *, lazy: bool = False
) -> tuple[Lesson, list[Problem]]:
    """Load one file; its body is read from the cache, or rendered (now or lazily) and stored."""
    if cache is None:
        return load_lesson(path, shown, render=render_body if lazy else None)

    def render(source: str) -> Rendered:
        key = cache.key(source)
        rendered = cache.get(key)
        if rendered is None:
            rendered = render_body(source)
            cache.put(key, rendered)
        return rendered

    lesson, warnings = load_lesson(path, shown, render=render)
    if not lazy:
        lesson.body.rendered()
    return lesson, warnings


def load_course(
    content_dir: Path,
    *,
    display_root: Path | None = None,
    cache_dir: Path | None = None,
    lazy: bool = False,
) -> Course:
    """Load every lesson under `content_dir`; bad files become Problems, never exceptions.

    With `cache_dir`, rendered bodies are kept there between runs (see cache.py), and entries
    no loaded lesson uses are deleted. With `lazy`, files are still read and validated now, but
    each body is read from the cache or rendered on its first use; `backprop check` and the
    tests load eagerly.
    """
    cache = RenderCache(cache_dir) if cache_dir else None
    problems: list[Problem] = []
    lessons: dict[str, Lesson] = {}
    if not content_dir.is_dir():
        problems.append(
            Problem(str(content_dir), None, "content folder does not exist", "set CONTENT_DIR")
        )
        return Course([], problems)
    for path, rel in discover(content_dir):
        shown = (display_root / rel).as_posix() if display_root else rel
        try:
            lesson, warnings = _load_cached(path, shown, cache, lazy=lazy)
        except ContentError as exc:
            problems.append(Problem(shown, exc.line, exc.message, exc.hint))
            continue
        problems.extend(warnings)
        if lesson.id in lessons:
            problems.append(
                Problem(
                    shown,
                    2,
                    f"duplicate lesson id {lesson.id!r}, already used by {lessons[lesson.id].path}",
                    hint="every lesson needs its own id; this file is not served",
                )
            )
            continue
        lessons[lesson.id] = lesson
    for lesson in lessons.values():
        if lesson.next_lesson_id and lesson.next_lesson_id not in lessons:
            problems.append(
                Problem(
                    lesson.path,
                    None,
                    f"nextLessonId {lesson.next_lesson_id!r} names no lesson",
                    hint="shown as 'coming soon' until that lesson exists",
                    severity="warning",
                )
            )
    if cache is not None:
        cache.prune(cache.key(lesson.body.source) for lesson in lessons.values())
    return Course(_course_order(list(lessons.values())), problems)


def _course_order(lessons: list[Lesson]) -> list[Lesson]:
    """Sections by their lowest `order` (ties by name), lessons within by `order` then id."""
    rank: dict[str, int] = {}
    for lesson in lessons:
        rank[lesson.section] = min(rank.get(lesson.section, lesson.order), lesson.order)
    return sorted(lessons, key=lambda les: (rank[les.section], les.section, les.order, les.id))


def log_problems(course: Course) -> None:
    """Log every problem once, at load time."""
    for problem in course.problems:
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        log.log(level, "%s", problem.format())
