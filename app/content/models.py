"""The course as loaded from disk: lessons, their quizzes and the problems found on the way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .claims import Claim
    from .goals import Goal
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


QuestionType = Literal["single", "multiple", "numeric", "ordering", "experiment"]
ReviewAnswers = Literal["always", "after-pass", "never"]


@dataclass(frozen=True, slots=True)
class Option:
    """One answer a learner can pick; `id` is opaque and says nothing about `correct`."""

    id: str
    html: str
    correct: bool
    #: shown beside this option in the review when the learner chose it
    feedback_html: str | None = None


#: Decimal arithmetic wide enough for any number a learner types, with nothing trapped: an
#: exponent past the range becomes Infinity (and so wrong) instead of an exception.
_EXACT = Context(prec=80, Emax=10**6, Emin=-(10**6), traps=[])

#: Checks a ```train block's or a claim's `run` mapping as /train input and returns it as it
#: will run; raises ValueError saying what is wrong. Passed in by the caller (the app and the
#: CLI pass app.training.figures.run_validator): this layer knows nothing of training.
RunValidator = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NumericAnswer:
    """One `= VALUE [+- TOL | +- P%]` line: a number and how far from it is still right."""

    value: Decimal
    tolerance: Decimal = Decimal(0)
    #: True when the line gave the tolerance as a percentage of the value
    relative: bool = False

    @property
    def absolute_tolerance(self) -> Decimal:
        """The tolerance in the value's own units."""
        return abs(self.value) * self.tolerance / 100 if self.relative else self.tolerance

    def matches(self, number: Decimal) -> bool:
        """Whether `number` is within the tolerance of the value (inclusive, exact decimals)."""
        with localcontext(_EXACT):
            return abs(number - self.value) <= self.absolute_tolerance


@dataclass(frozen=True, slots=True)
class Experiment:
    """An ```experiment block: the learner picks the `free` /train fields, a run is graded."""

    #: the line of the block's opening fence
    line: int
    dataset: str
    #: the /train fields the author fixed, as written (besides the dataset)
    fixed: dict[str, Any]
    #: the /train fields the learner chooses, in the author's order
    free: tuple[str, ...]
    goal: Goal
    #: the author's own answer, one value per free field; never sent to a learner
    solution: dict[str, Any] = field(repr=False)
    #: the solution as it trains: the RunValidator's configuration (defaults filled in)
    config: dict[str, Any] = field(repr=False)

    def merged(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """The /train request of an answer (free field → value): dataset, fixed, then answer."""
        return {"dataset": self.dataset, **self.fixed, **answer}


@dataclass(frozen=True, slots=True)
class Item:
    """One element of an ordering question; a question lists its items in the right order."""

    id: str
    html: str


@dataclass(frozen=True, slots=True)
class Question:
    """A numbered knowledge-check item: its type, what can be answered and what is right."""

    id: str
    prompt_html: str
    options: tuple[Option, ...]
    explanation_html: str | None
    line: int
    type: QuestionType = "single"
    #: numeric: the accepted `=` lines, any of which is right
    numeric: tuple[NumericAnswer, ...] = ()
    #: ordering: the items in the right order
    items: tuple[Item, ...] = ()
    #: predict-then-run: the /train configuration the review runs, or None
    run: dict[str, Any] | None = None
    #: experiment: what the learner chooses and the goal its run must reach
    experiment: Experiment | None = None
    #: single choice: the right option (None for the other types)
    correct_option: Option | None = field(init=False, repr=False)
    _by_id: dict[str, Option] = field(init=False, repr=False, compare=False)
    _items: dict[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up on every grading request: index once.
        right = next((o for o in self.options if o.correct), None)
        object.__setattr__(self, "correct_option", right if self.type == "single" else None)
        object.__setattr__(self, "_by_id", {o.id: o for o in self.options})
        object.__setattr__(self, "_items", {i.id: i for i in self.items})

    def option(self, option_id: str) -> Option | None:
        return self._by_id.get(option_id)

    def item(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    @property
    def correct_options(self) -> tuple[Option, ...]:
        """The options marked right (one for single choice, one or more for multiple select)."""
        return tuple(o for o in self.options if o.correct)


@dataclass(frozen=True, slots=True)
class Quiz:
    """A lesson's knowledge check; `pass_percent` None means the site default."""

    questions: tuple[Question, ...]
    pass_percent: int | None = None
    #: when the review shows right answers and explanations: always, once passed, or never
    review_answers: ReviewAnswers = "always"
    #: attempts allowed per learner (a guest: per visitor cookie); None is unlimited
    max_attempts: int | None = None
    _by_id: dict[str, Question] = field(init=False, repr=False, compare=False)
    #: option or item id → the id of the question it belongs to
    owners: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {q.id: q for q in self.questions})
        owners = {o.id: q.id for q in self.questions for o in q.options}
        owners.update({i.id: q.id for q in self.questions for i in q.items})
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
