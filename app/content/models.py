"""The course as loaded from disk: lessons, their quizzes and the problems found on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .claims import Claim
    from .render import LessonBody


class ContentError(Exception):
    """A problem that makes one file unservable; carries the line it was found on."""

    def __init__(self, message: str, *, line: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (error) or suspicious (warning) in a content file."""

    path: str
    line: int | None
    message: str
    hint: str = ""
    severity: Literal["error", "warning"] = "error"

    def format(self) -> str:
        """`path:line: severity: message (hint)`, the shape editors and CI logs understand."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass(frozen=True, slots=True)
class Option:
    """One answer a learner can pick; `id` is opaque and says nothing about `correct`."""

    id: str
    html: str
    correct: bool


@dataclass(frozen=True, slots=True)
class Question:
    """A numbered knowledge-check item with its options and optional explanation."""

    id: str
    prompt_html: str
    options: tuple[Option, ...]
    explanation_html: str | None
    line: int
    correct_option: Option = field(init=False, repr=False)
    _by_id: dict[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up on every grading request: index once.
        object.__setattr__(self, "correct_option", next(o for o in self.options if o.correct))
        object.__setattr__(self, "_by_id", {o.id: o for o in self.options})

    def option(self, option_id: str) -> Option | None:
        return self._by_id.get(option_id)


@dataclass(frozen=True, slots=True)
class Quiz:
    """A lesson's knowledge check; `pass_percent` None means the site default."""

    questions: tuple[Question, ...]
    pass_percent: int | None = None
    _by_id: dict[str, Question] = field(init=False, repr=False, compare=False)
    #: option id → the id of the question it belongs to
    owners: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {q.id: q for q in self.questions})
        owners = {o.id: q.id for q in self.questions for o in q.options}
        object.__setattr__(self, "owners", owners)

    def question(self, question_id: str) -> Question | None:
        return self._by_id.get(question_id)


@dataclass(frozen=True, slots=True)
class TocEntry:
    level: int
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Lesson:
    """A validated lesson; immutable so requests can share it without locks. Its body is
    rendered on first use (see LessonBody); everything else is known once it is loaded."""

    id: str
    title: str
    type: str
    duration_minutes: int
    order: int
    section: str
    next_lesson_id: str | None
    path: str
    body: LessonBody
    quiz: Quiz | None
    pass_percent: int | None = None
    #: /train fields that preset the playground's "Train this network" link
    playground: dict | None = None
    #: the body's ```claim blocks, in order; each left a claims.SLOT in the rendered body
    claims: tuple[Claim, ...] = ()

    @property
    def html(self) -> str:
        """The body as sanitised HTML (rendered now if nothing has needed it yet)."""
        return self.body.rendered()[0]

    @property
    def toc(self) -> tuple[TocEntry, ...]:
        """The body's h2–h4 headings, for the page's table of contents."""
        return self.body.rendered()[1]

    @property
    def question_count(self) -> int:
        return len(self.quiz.questions) if self.quiz else 0

    @property
    def url(self) -> str:
        return f"/lessons/{self.id}"


@dataclass(frozen=True, slots=True)
class Neighbours:
    """Where the lesson page's previous/next links go."""

    previous: Lesson | None
    next: Lesson | None
    #: A nextLessonId that names no served lesson: shown as "coming soon".
    coming_soon: str | None


@dataclass(slots=True)
class Course:
    """Every served lesson in course order, plus what was wrong with the files that were not."""

    lessons: list[Lesson] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    _by_id: dict[str, Lesson] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {lesson.id: lesson for lesson in self.lessons}

    def get(self, lesson_id: str) -> Lesson | None:
        return self._by_id.get(lesson_id)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def sections(self) -> list[tuple[str, list[Lesson]]]:
        """Lessons grouped by section, in course order (lessons are already sorted)."""
        groups: dict[str, list[Lesson]] = {}
        for lesson in self.lessons:
            groups.setdefault(lesson.section, []).append(lesson)
        return list(groups.items())

    def neighbours(self, lesson: Lesson) -> Neighbours:
        """Previous by course order; next is nextLessonId when it resolves, else the next by order.

        A nextLessonId naming no served lesson is reported as `coming_soon` when nothing follows.
        """
        index = self.lessons.index(lesson)
        previous = self.lessons[index - 1] if index > 0 else None
        target = self.get(lesson.next_lesson_id) if lesson.next_lesson_id else None
        if target is None and index + 1 < len(self.lessons):
            target = self.lessons[index + 1]
        dangling = (
            lesson.next_lesson_id
            if lesson.next_lesson_id and not self.get(lesson.next_lesson_id)
            else None
        )
        return Neighbours(previous, target, dangling if target is None else None)
