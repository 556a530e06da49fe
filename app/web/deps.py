"""Annotated dependency aliases every domain's routes share: settings, course, lesson, session.

Cheap dependencies are `async def`: a sync one costs a thread-pool hop on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from ..config import Settings
from ..content import Course, Lesson


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_course(request: Request) -> Course:
    return request.app.state.course


async def get_now(request: Request) -> datetime:
    """This request's time, aware UTC, from `app.state.clock` (tests give the app their own)."""
    return request.app.state.clock()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
NowDep = Annotated[datetime, Depends(get_now)]
CourseDep = Annotated[Course, Depends(get_course)]


async def get_lesson(lesson_id: str, request: Request) -> Lesson:
    """The served lesson with that id, or 404 (ids that could never be valid included)."""
    return lesson_or_404(request.app.state.course, lesson_id)


def lesson_or_404(course: Course, lesson_id: str) -> Lesson:
    lesson = course.get(lesson_id) if len(lesson_id) <= 100 else None
    if lesson is None:
        raise HTTPException(status_code=404, detail=f"no lesson with id {lesson_id[:100]!r}")
    return lesson


LessonDep = Annotated[Lesson, Depends(get_lesson)]


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; writes commit explicitly, anything left over is rolled back."""
    session = request.app.state.db.session()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]
