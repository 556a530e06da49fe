"""Lesson pages rendered once, on their first request, into static parts and named slots.

A lesson page differs between visitors only in the option order of its quiz, the CSRF token
and the signed-in user's bits. Everything else (layout, body, table of contents, option labels)
is rendered here once, so a request fills a few slots and joins strings instead of running the
template: at 32 connections that is the difference between 35% and 80%+ of /healthz.

Pages are built on first use rather than at startup: a page needs the lesson's rendered body,
and rendering every body up front made a 1,000-lesson course take half a minute to start.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jinja2
from markupsafe import Markup

from ..content import Course, Lesson
from ..quizzes.grading import ORDERS

_SLOT = re.compile("\x00slot:([^\x00]+)\x00")


def slot(name: str) -> Markup:
    """A placeholder the template emits where per-request content goes."""
    return Markup(f"\x00slot:{name}\x00")


@dataclass(frozen=True, slots=True)
class SlottedPage:
    """Static UTF-8 bytes at even positions, slot names at odd positions.

    The static parts are kept encoded: encoding a 40 KB page per request costs more than
    filling its slots.
    """

    parts: tuple[bytes | str, ...]

    @classmethod
    def compile(cls, html: str) -> SlottedPage:
        pieces = _SLOT.split(html)
        return cls(tuple(p.encode() if i % 2 == 0 else p for i, p in enumerate(pieces)))

    def fill(self, values: Mapping[str, str | bytes]) -> bytes:
        parts = list(self.parts)
        parts[1::2] = [
            value if isinstance(value, bytes) else value.encode()
            for value in map(values.__getitem__, self.parts[1::2])
        ]
        return b"".join(parts)  # type: ignore[arg-type]


#: Questions with at most this many options keep every order they have been shown in (6! = 720):
#: those whose order is picked from grading's table of permutations.
_CACHED_ORDERS_UP_TO = max(ORDERS)


@dataclass(frozen=True, slots=True)
class QuestionSlot:
    """A question's option labels (<label> with its radio button), ready to join in any order."""

    id: str
    slot: str
    labels: tuple[bytes, ...]  # in authored order
    joined: dict[tuple[int, ...], bytes]

    def options_html(self, order: tuple[int, ...]) -> bytes:
        """The labels in `order` (positions into the authored list), as one piece of HTML."""
        html = self.joined.get(order)
        if html is None:
            html = b"".join([self.labels[i] for i in order])
            if len(order) <= _CACHED_ORDERS_UP_TO:
                self.joined[order] = html  # a dict store is atomic: safe across threads
        return html


@dataclass(frozen=True, slots=True)
class LessonPage:
    page: SlottedPage
    questions: tuple[QuestionSlot, ...]


class LessonPages:
    """Lesson id → its LessonPage (every lesson's page, rendered once on its first request, with
    slots for what differs between requests); concurrent first lookups build once."""

    def __init__(
        self,
        course: Course,
        env: jinja2.Environment,
        *,
        pass_percent_for: Callable[[Lesson], int],
        train_query_for: Callable[[Lesson], str],
    ) -> None:
        self._course = course
        self._template = env.get_template("lesson.html")
        self._macros = env.get_template("_lesson_parts.html").module
        self._pass_percent_for = pass_percent_for
        self._train_query_for = train_query_for
        self._pages: dict[str, LessonPage] = {}
        self._locks: dict[str, threading.Lock] = {}

    def built(self, lesson_id: str) -> LessonPage | None:
        """The page if it has been built already (a dict lookup, never a render)."""
        return self._pages.get(lesson_id)

    def __getitem__(self, lesson_id: str) -> LessonPage:
        page = self._pages.get(lesson_id)
        if page is not None:
            return page
        lesson = self._course.get(lesson_id)
        if lesson is None:
            raise KeyError(lesson_id)
        # setdefault is atomic, so every thread gets the same lock for a lesson
        with self._locks.setdefault(lesson_id, threading.Lock()):
            page = self._pages.get(lesson_id)
            if page is None:
                page = self._pages[lesson_id] = self._build(lesson)
        return page

    def _build(self, lesson: Lesson) -> LessonPage:
        questions = lesson.quiz.questions if lesson.quiz else ()
        html = self._template.render(
            lesson=lesson,
            nav=self._course.neighbours(lesson),
            questions=questions,
            pass_percent=self._pass_percent_for(lesson),
            train_query=self._train_query_for(lesson),
            csrf_token=slot("csrf"),
            slot=slot,
        )
        slots = tuple(
            QuestionSlot(
                id=question.id,
                slot=f"options:{question.id}",
                labels=tuple(
                    str(self._macros.option_label(question, option)).encode()
                    for option in question.options
                ),
                joined={},
            )
            for question in questions
        )
        return LessonPage(SlottedPage.compile(html), slots)
