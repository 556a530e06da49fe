"""The lessons API's response shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..content import Lesson


class TocItem(BaseModel):
    level: int
    id: str
    title: str


class LessonSummary(BaseModel):
    id: str
    title: str
    type: str
    section: str
    order: int
    duration_minutes: int
    next_lesson_id: str | None
    question_count: int
    url: str = Field(description="The lesson's page, under ROOT_PATH when there is one")

    @classmethod
    def of(cls, lesson: Lesson, root: str = "") -> LessonSummary:
        return cls(
            id=lesson.id,
            title=lesson.title,
            type=lesson.type,
            section=lesson.section,
            order=lesson.order,
            duration_minutes=lesson.duration_minutes,
            next_lesson_id=lesson.next_lesson_id,
            question_count=lesson.question_count,
            url=root + lesson.url,
        )


class LessonDetail(LessonSummary):
    html: str
    toc: list[TocItem]

    @classmethod
    def of(cls, lesson: Lesson, root: str = "", html: str | None = None) -> LessonDetail:
        """The lesson with its body HTML (`html`: the body with its claims' boxes filled in)."""
        return cls(
            **LessonSummary.of(lesson, root).model_dump(),
            html=lesson.html if html is None else html,
            toc=[TocItem(level=t.level, id=t.id, title=t.title) for t in lesson.toc],
        )
