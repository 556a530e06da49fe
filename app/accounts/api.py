"""The JSON API: `/api/auth/*`, `/api/me*`, lesson completion and instructor statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from ..content.loader import ID_PATTERN
from ..deps import (
    SESSION_COOKIE,
    CourseDep,
    CurrentUser,
    InstructorUser,
    LessonDep,
    SessionDep,
    SettingsDep,
    oauth2_scheme,
)
from ..lessons.schemas import UNPARSABLE_BODY
from ..openapi import operation_id
from . import progress as progress_service
from . import service
from .cookies import clear_session_cookie
from .pagination import DEFAULT_LIMIT, MAX_LIMIT, AttemptPage, decode_cursor, encode_cursor
from .schemas import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    THROTTLED,
    UNAUTHORIZED,
    AttemptOut,
    ErrorBody,
    ExportOut,
    LessonStats,
    ProgressEntry,
    ProgressOut,
    RegisterIn,
    TokenOut,
    UserCreated,
    UserOut,
)

router = APIRouter(prefix="/api", tags=["accounts"], generate_unique_id_function=operation_id)

MAX_ID = 2**31 - 1  # an INTEGER on PostgreSQL; larger ids cannot exist


def client_address(request: Request) -> str:
    return request.client.host[:64] if request.client else "unknown"


def throttled(exc: service.Throttled) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)})


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserCreated,
    responses={
        409: {"model": ErrorBody, "description": "Username taken"},
        **INVALID,
        **UNPARSABLE_BODY,
    },
    summary="Create a learner account",
)
def register(body: RegisterIn, session: SessionDep) -> UserCreated:
    try:
        user = service.create_user(session, username=body.username, password=body.password)
    except service.UsernameTaken:
        raise HTTPException(409, "that username is taken") from None
    return UserCreated(id=user.id, username=user.username)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses={**UNAUTHORIZED, **THROTTLED, **INVALID},
    summary="Exchange a username and password for a bearer token (OAuth2 password flow)",
)
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenOut:
    try:
        user = service.authenticate(
            session,
            username=form.username,
            password=form.password,
            address=client_address(request),
        )
    except service.Throttled as exc:
        raise throttled(exc) from None
    except service.InvalidCredentials:
        raise HTTPException(
            401, "incorrect username or password", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    raw, expires_at = service.create_token(session, user_id=user.id, days=settings.token_days)
    return TokenOut(access_token=raw, expires_at=expires_at)


@router.post(
    "/auth/logout",
    status_code=204,
    response_class=Response,
    responses=UNAUTHORIZED,
    summary="Revoke this bearer token, or end this browser session",
)
def logout(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Response:
    response = Response(status_code=204)
    if token:
        service.revoke_token(session, token=token)
        request.app.state.db.token_cache.discard(token)
    else:
        service.delete_session(session, token=request.cookies.get(SESSION_COOKIE, ""))
        clear_session_cookie(request, response)
    return response


@router.get("/me", response_model=UserOut, responses=UNAUTHORIZED, summary="Who I am")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.delete(
    "/me",
    status_code=204,
    response_class=Response,
    responses=UNAUTHORIZED,
    summary="Delete my account and everything of mine",
)
def delete_me(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    service.delete_user(session, user_id=user.id)
    request.app.state.db.token_cache.discard_user(user.id)
    response = Response(status_code=204)
    clear_session_cookie(request, response)
    return response


@router.get(
    "/me/export", response_model=ExportOut, responses=UNAUTHORIZED, summary="All of my data"
)
def export(user: CurrentUser, session: SessionDep) -> dict:
    data = service.export_user(session, user_id=user.id)
    if not data:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"})
    return data


@router.get(
    "/me/progress",
    response_model=ProgressOut,
    responses=UNAUTHORIZED,
    summary="My status on every served lesson",
)
def my_progress(user: CurrentUser, session: SessionDep, course: CourseDep) -> dict:
    return progress_service.progress_summary(session, user_id=user.id, course=course)


@router.get(
    "/me/attempts",
    response_model=AttemptPage,
    responses={**UNAUTHORIZED, **INVALID},
    summary="My quiz attempts, newest first, a page at a time",
)
def my_attempts(
    user: CurrentUser,
    session: SessionDep,
    lesson_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page")
    ] = None,
) -> dict:
    """Up to `limit` attempts; `next_cursor` fetches the next, older page (null: no more)."""
    before_id = decode_cursor(cursor) if cursor is not None else None
    if lesson_id is not None and not ID_PATTERN.fullmatch(lesson_id):
        # no lesson can have that id (and PostgreSQL refuses NUL in text)
        return {"attempts": [], "next_cursor": None}
    attempts = progress_service.list_attempts(
        session, user_id=user.id, lesson_id=lesson_id, limit=limit + 1, before_id=before_id
    )
    more = len(attempts) > limit
    return {
        "attempts": [service.attempt_dict(a) for a in attempts[:limit]],
        "next_cursor": encode_cursor(attempts[limit - 1].id) if more else None,
    }


@router.get(
    "/me/attempts/{attempt_id}",
    response_model=AttemptOut,
    responses={**UNAUTHORIZED, **NOT_FOUND, **INVALID},
    summary="One of my quiz attempts",
)
def my_attempt(
    user: CurrentUser,
    session: SessionDep,
    attempt_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> dict:
    attempt = progress_service.get_attempt(session, user_id=user.id, attempt_id=attempt_id)
    if attempt is None:
        raise HTTPException(404, f"no attempt with id {attempt_id}")
    return service.attempt_dict(attempt)


@router.post(
    "/lessons/{lesson_id}/complete",
    response_model=ProgressEntry,
    responses={
        **UNAUTHORIZED,
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "The lesson has a quiz: pass it to complete"},
    },
    tags=["progress"],
    summary="Mark a lesson without a quiz as completed",
)
def complete_lesson(user: CurrentUser, lesson: LessonDep, session: SessionDep) -> dict:
    try:
        row = progress_service.mark_completed(session, user_id=user.id, lesson=lesson)
    except progress_service.QuizLesson:
        raise HTTPException(409, "this lesson has a quiz: pass it to complete the lesson") from None
    except progress_service.NoSuchUser:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"}) from None
    return progress_service.lesson_entry(lesson.id, row)


@router.get(
    "/lessons/{lesson_id}/stats",
    response_model=LessonStats,
    responses={**UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND},
    tags=["instructors"],
    summary="Attempts, pass rate and distractor analysis for one lesson (instructors)",
)
def lesson_stats(user: InstructorUser, lesson: LessonDep, session: SessionDep) -> dict:
    return progress_service.lesson_stats(session, lesson=lesson)
