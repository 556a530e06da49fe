"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from .accounts.service import user_for_session, user_for_token
from .config import Settings
from .content import Course, Lesson
from .models import User


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_course(request: Request) -> Course:
    return request.app.state.course


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CourseDep = Annotated[Course, Depends(get_course)]


def get_lesson(lesson_id: str, course: CourseDep) -> Lesson:
    """The served lesson with that id, or 404 (ids that could never be valid included)."""
    lesson = course.get(lesson_id) if len(lesson_id) <= 100 else None
    if lesson is None:
        raise HTTPException(status_code=404, detail=f"no lesson with id {lesson_id[:100]!r}")
    return lesson


LessonDep = Annotated[Lesson, Depends(get_lesson)]


# --- database and the signed-in user ----------------------------------------------------------

SESSION_COOKIE = "bp_session"
#: Shown by /docs "Authorize"; auto_error=False so a missing token can fall back to the cookie.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; writes commit explicitly, anything left over is rolled back."""
    session = request.app.state.db.session()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]


def get_optional_user(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User | None:
    """The user of a bearer token (a bad one is 401) or else of the session cookie, or None."""
    user = None
    if token:
        user = user_for_token(session, token=token)
        if user is None:
            raise HTTPException(
                status_code=401,
                detail="invalid or expired token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.auth = "token"
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            user = user_for_session(session, token=cookie)
            request.state.auth = "session" if user else None
    request.state.user = user
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def get_current_user(user: OptionalUser) -> User:
    """The signed-in user, or 401."""
    if user is None:
        raise HTTPException(
            status_code=401, detail="not signed in", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_instructor(user: CurrentUser) -> User:
    """The signed-in instructor: 401 anonymous, 403 anyone else."""
    if user.role != "instructor":
        raise HTTPException(status_code=403, detail="instructors only")
    return user


InstructorUser = Annotated[User, Depends(get_instructor)]
