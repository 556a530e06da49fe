"""Read every lesson under a folder, validate it strictly, and render it once.

A file with an error is left out of the course and reported with its path and line; it never
stops the other lessons from loading. Nothing here raises for bad content. (A formula that
cannot be drawn is an error found by rendering: the page shows it as written.)

Validation (front matter, fields, the knowledge check and its inline Markdown) always happens
at load. Rendering the body (Markdown, Pygments, nh3: most of the time) happens at load too,
unless `load_course(..., lazy=True)` defers it to the body's first use, as the server does.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import frontmatter

from .cache import RenderCache
from .front_matter import ID_PATTERN, KNOWN_FIELDS, parse_duration, read_front_matter  # noqa: F401
from .knowledge_check import DraftQuestion, split_knowledge_check
from .models import ContentError, Course, Lesson, Option, Problem, Question, Quiz
from .render import (
    LessonBody,
    MathError,
    Render,
    Rendered,
    math_problems,
    render_body,
    render_inline,
)

log = logging.getLogger("backprop.content")

MAX_FILE_BYTES = 2 * 1024 * 1024

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


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
    # A lone CR is a line break to YAML, to Python-Markdown and to editors: to the loader too.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
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


def _build_quiz(
    lesson_id: str, drafts: list[DraftQuestion], pass_percent: int | None, heading_line: int
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
                id=_option_id(lesson_id, qid, text),
                html=render_inline(text, line=draft.options[i][0]),
                correct=i == right,
            )
            for i, text in enumerate(texts)
        )
        explanation = " ".join(s.strip() for s in draft.explanation).strip()
        questions.append(
            Question(
                id=qid,
                prompt_html=render_inline(prompt, line=draft.line),
                options=options,
                explanation_html=(
                    render_inline(explanation, line=draft.line) if explanation else None
                ),
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
    render: Render | None = None,
) -> tuple[Lesson, list[Problem]]:
    """Parse, validate and render one file; raises ContentError for the first error found.

    With `render`, the body is not rendered here but by `render` on its first use.
    """
    source = _split(read_bytes(path) if raw is None else raw, rel)
    meta = read_front_matter(source.meta_text, source.meta_line, rel)
    warnings = list(meta.warnings)
    body, drafts, heading_line, task_lines = split_knowledge_check(source.body, source.body_line)
    quiz = None if drafts is None else _build_quiz(meta.id, drafts, meta.pass_percent, heading_line)
    warnings.extend(
        Problem(
            rel,
            line,
            "task-list item outside the knowledge check: the page shows it as written, "
            "[x] marks included",
            hint="put quiz questions under a 'Knowledge Check' heading, "
            "or drop the '[ ]' / '[x]' from a plain list",
            severity="warning",
        )
        for line in task_lines
    )
    text = _strip_title_heading(body, meta.title)
    lesson = Lesson(
        id=meta.id,
        title=meta.title,
        type=meta.type,
        duration_minutes=meta.duration_minutes,
        order=meta.order,
        section=meta.section,
        next_lesson_id=meta.next_lesson_id,
        path=rel,
        body=LessonBody(text, render=render or render_body, first_line=source.body_line),
        quiz=quiz,
        pass_percent=meta.pass_percent,
        playground=meta.playground,
    )
    if render is None:
        lesson.body.rendered()
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

    def render(source: str, math_errors: list[MathError]) -> Rendered:
        key = cache.key(source)
        rendered = cache.get(key)
        if rendered is None:
            rendered = render_body(source, math_errors)
            if not math_errors:  # kept out, so that every check reports the broken formulas
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
        problems.extend(math_problems(shown, lesson.body))  # none until the body is rendered
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
