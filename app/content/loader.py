"""Read every lesson under a folder, validate it strictly, and render it once.

A file with an error is left out of the course and reported with its path and line; it never
stops the other lessons from loading. Nothing here raises for bad content. (A formula that
cannot be drawn is an error found by rendering: the page shows it as written.)

Validation (front matter, fields, the knowledge check and its inline Markdown) always happens
at load. Rendering the body (Markdown, Pygments, nh3: most of the time) happens at load too,
unless `load_course(..., lazy=True)` defers it to the body's first use, as the server does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import frontmatter

from .cache import RenderCache
from .claims import extract_claims
from .front_matter import ID_PATTERN, KNOWN_FIELDS, parse_duration, read_front_matter  # noqa: F401
from .knowledge_check import split_knowledge_check
from .models import ContentError, Course, Lesson, Problem, RunValidator
from .questions import build_quiz
from .render import LessonBody, MathError, Render, Rendered, math_problems, render_body

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
    validate_run: RunValidator | None = None,
) -> tuple[Lesson, list[Problem]]:
    """Parse, validate and render one file; raises ContentError for the first error found.

    With `render`, the body is not rendered here but by `render` on its first use;
    `validate_run` checks each ```train block and each claim's run (see RunValidator).
    """
    source = _split(read_bytes(path) if raw is None else raw, rel)
    meta = read_front_matter(source.meta_text, source.meta_line, rel)
    warnings = list(meta.warnings)
    body, drafts, heading_line, task_lines = split_knowledge_check(source.body, source.body_line)
    quiz = (
        None
        if drafts is None
        else build_quiz(
            meta.id,
            drafts,
            heading_line,
            pass_percent=meta.pass_percent,
            review_answers=meta.review_answers,
            max_attempts=meta.max_attempts,
            validate_run=validate_run,
        )
    )
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
    quiz_line = None if drafts is None else heading_line
    body, claims = extract_claims(source.body, body, source.body_line, quiz_line, validate_run)
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
        claims=claims,
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
    path: Path,
    shown: str,
    cache: RenderCache | None,
    *,
    lazy: bool = False,
    validate_run: RunValidator | None = None,
) -> tuple[Lesson, list[Problem]]:
    """Load one file; its body is read from the cache, or rendered (now or lazily) and stored."""
    if cache is None:
        return load_lesson(
            path, shown, render=render_body if lazy else None, validate_run=validate_run
        )

    def render(source: str, math_errors: list[MathError]) -> Rendered:
        key = cache.key(source)
        rendered = cache.get(key)
        if rendered is None:
            rendered = render_body(source, math_errors)
            if not math_errors:  # kept out, so that every check reports the broken formulas
                cache.put(key, rendered)
        return rendered

    lesson, warnings = load_lesson(path, shown, render=render, validate_run=validate_run)
    if not lazy:
        lesson.body.rendered()
    return lesson, warnings


def load_course(
    content_dir: Path,
    *,
    display_root: Path | None = None,
    cache_dir: Path | None = None,
    lazy: bool = False,
    validate_run: RunValidator | None = None,
) -> Course:
    """Load every lesson under `content_dir`; bad files become Problems, never exceptions.

    With `cache_dir`, rendered bodies are kept there between runs (see cache.py), and entries
    no loaded lesson uses are deleted. With `lazy`, files are still read and validated now, but
    each body is read from the cache or rendered on its first use; `backprop check` and the
    tests load eagerly. `validate_run` checks every ```train block and the run of every
    ```claim block as /train input; without it a block need only map field names to plain
    values. The app and the CLI pass app.training.figures.run_validator, since content imports
    no domain.
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
            lesson, warnings = _load_cached(
                path, shown, cache, lazy=lazy, validate_run=validate_run
            )
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
