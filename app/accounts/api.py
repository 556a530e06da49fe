"""The JSON API: `/api/auth/*`, `/api/me*`, lesson completion and instructor statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.orm import Session

from ..config import Settings
from ..content.loader import ID_PATTERN
from ..models import User
from ..openapi import operation_id
from ..web.clients import client_address
from ..web.deps import CourseDep, LessonDep, SessionDep, SettingsDep
from ..web.schemas import INVALID, UNPARSABLE_BODY, ErrorBody
from ..web.security import SESSION_COOKIE
from . import limits, service
from . import progress as progress_service
from . import stats as stats_service
from .cookies import clear_session_cookie
from .deps import CurrentUser, InstructorUser, Principal, bearer_token, oauth2_scheme
from .pagination import DEFAULT_LIMIT, MAX_LIMIT, AttemptPage, decode_cursor, encode_cursor
from .schemas import (
    BUSY,
    FORBIDDEN,
    NOT_FOUND,
    THROTTLED,
    UNAUTHORIZED,
    WRONG_PASSWORD,
    CredentialOut,
    Ended,
    ExportOut,
    LessonStats,
    PasswordChangeIn,
    PasswordIn,
    ProgressEntry,
    ProgressOut,
    RegisterIn,
    StoredAttemptOut,
    TokenOut,
    UserCreated,
    UserOut,
)

router = APIRouter(prefix="/api", tags=["accounts"], generate_unique_id_function=operation_id)

MAX_ID = 2**31 - 1  # an INTEGER on PostgreSQL; larger ids cannot exist
#: What a request that repeats the user's password (check_password) may be answered with.
PASSWORD_CHECKED = {
    **UNAUTHORIZED, **WRONG_PASSWORD, **THROTTLED, **BUSY, **INVALID, **UNPARSABLE_BODY
}  # fmt: skip


def throttled(exc: limits.Throttled) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)})


def hashing_busy() -> HTTPException:
    detail = "the server is busy checking passwords; try again in a moment"
    return HTTPException(503, detail, headers={"Retry-After": str(limits.HashingBusy.retry_after)})


def sign_up(session: Session, request: Request, settings: Settings, *, username: str,
            password: str) -> User:  # fmt: skip
    """Create a learner, counted against the address's REGISTER_PER_HOUR first (Throttled);
    UsernameTaken, or HashingBusy (then the sign-up does not count)."""
    address = client_address(request, settings)
    reserved = limits.reserve_sign_up(session, address=address, per_hour=settings.register_per_hour)
    try:
        return service.create_user(session, username=username, password=password)
    except limits.HashingBusy:
        limits.forget_sign_up(session, sign_up_id=reserved)
        raise


def check_password(session: Session, request: Request, settings: Settings, user: Principal,
                   password: str) -> None:  # fmt: skip
    """403 unless `password` is the user's; the check is throttled like a login."""
    try:
        service.authenticate(
            session,
            username=user.username,
            password=password,
            address=client_address(request, settings),
        )
    except limits.Throttled as exc:
        raise throttled(exc) from None
    except limits.HashingBusy:
        raise hashing_busy() from None
    except service.InvalidCredentials:
        raise HTTPException(403, "that is not your password") from None


def current_credential(request: Request) -> str | None:
    """The digest of the session id or token this request was signed in with."""
    raw = bearer_token(request) if request.state.auth == "token" else None
    raw = raw or request.cookies.get(SESSION_COOKIE)
    return service.token_digest(raw) if raw else None


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserCreated,
    responses={
        409: {"model": ErrorBody, "description": "Username taken"},
        **THROTTLED,
        **BUSY,
        **INVALID,
        **UNPARSABLE_BODY,
    },
    summary="Create a learner account",
)
def register(
    body: RegisterIn, request: Request, session: SessionDep, settings: SettingsDep
) -> UserCreated:
    try:
        user = sign_up(session, request, settings, username=body.username, password=body.password)
    except limits.Throttled as exc:
        raise throttled(exc) from None
    except limits.HashingBusy:
        raise hashing_busy() from None
    except service.UsernameTaken:
        raise HTTPException(409, "that username is taken") from None
    return UserCreated(id=user.id, username=user.username)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses={**UNAUTHORIZED, **THROTTLED, **BUSY, **INVALID},
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
            address=client_address(request, settings),
        )
    except limits.Throttled as exc:
        raise throttled(exc) from None
    except limits.HashingBusy:
        raise hashing_busy() from None
    except service.InvalidCredentials:
        raise HTTPException(
            401, "incorrect username or password", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    raw, expires_at = service.create_token(
        session,
        user_id=user.id,
        days=settings.token_days,
        user_agent=request.headers.get("user-agent"),
    )
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
        request.app.state.token_cache.discard(token)
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
    responses=PASSWORD_CHECKED,
    summary="Delete my account and everything of mine (my password again in the body)",
)
def delete_me(
    body: PasswordIn, request: Request, user: CurrentUser, session: SessionDep,
    settings: SettingsDep,
) -> Response:  # fmt: skip
    check_password(session, request, settings, user, body.password)
    service.delete_user(session, user_id=user.id)
    request.app.state.token_cache.discard_user(user.id)
    response = Response(status_code=204)
    clear_session_cookie(request, response)
    return response


@router.get(
    "/me/sessions",
    response_model=list[CredentialOut],
    responses=UNAUTHORIZED,
    summary="My browser sessions and API tokens, newest first",
)
def my_sessions(request: Request, user: CurrentUser, session: SessionDep) -> list[dict]:
    return service.list_credentials(session, user_id=user.id, current=current_credential(request))


@router.delete(
    "/me/sessions",
    response_model=Ended,
    responses=UNAUTHORIZED,
    summary="End all my other sessions and tokens (not the one making this request)",
)
def end_other_sessions(request: Request, user: CurrentUser, session: SessionDep) -> Ended:
    ended = service.revoke_others(session, user_id=user.id, keep=current_credential(request))
    request.app.state.token_cache.discard_user(user.id)
    return Ended(ended=ended)


@router.delete(
    "/me/sessions/{credential_id}",
    status_code=204,
    response_class=Response,
    responses={**UNAUTHORIZED, 404: {"model": ErrorBody, "description": "No such session"}},
    summary="End one of my sessions or tokens (this one too, if named)",
)
def end_session(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    credential_id: Annotated[str, Path(max_length=40)],
) -> Response:
    if not service.revoke_credential(session, user_id=user.id, credential_id=credential_id):
        raise HTTPException(404, f"you have no session or token {credential_id!r}")
    request.app.state.token_cache.discard_user(user.id)
    return Response(status_code=204)


@router.post(
    "/me/password",
    response_model=Ended,
    responses=PASSWORD_CHECKED,
    summary="Change my password; every other session and token ends",
)
def change_password(
    body: PasswordChangeIn, request: Request, user: CurrentUser, session: SessionDep,
    settings: SettingsDep,
) -> Ended:  # fmt: skip
    check_password(session, request, settings, user, body.current_password)
    try:
        ended = service.change_password(
            session, user_id=user.id, password=body.new_password, keep=current_credential(request)
        )
    except limits.HashingBusy:
        raise hashing_busy() from None
    request.app.state.token_cache.discard_user(user.id)
    return Ended(ended=ended)


@router.get(
    "/me/export", response_model=ExportOut, responses=UNAUTHORIZED, summary="All of my data"
)
def export(user: CurrentUser, session: SessionDep, course: CourseDep) -> dict:
    hidden = progress_service.hidden_answer_lessons(session, user_id=user.id, course=course)
    data = service.export_user(session, user_id=user.id, hidden=hidden)
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
    course: CourseDep,
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
    hidden = progress_service.hidden_answer_lessons(session, user_id=user.id, course=course)
    more = len(attempts) > limit
    return {
        "attempts": [
            service.attempt_dict(a, hide_answers=a.lesson_id in hidden) for a in attempts[:limit]
        ],
        "next_cursor": encode_cursor(attempts[limit - 1].id) if more else None,
    }


@router.get(
    "/me/attempts/{attempt_id}",
    response_model=StoredAttemptOut,
    responses={**UNAUTHORIZED, **NOT_FOUND, **INVALID},
    summary="One of my quiz attempts",
)
def my_attempt(
    user: CurrentUser,
    session: SessionDep,
    course: CourseDep,
    attempt_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> dict:
    attempt = progress_service.get_attempt(session, user_id=user.id, attempt_id=attempt_id)
    if attempt is None:
        raise HTTPException(404, f"no attempt with id {attempt_id}")
    hidden = progress_service.hidden_answer_lessons(session, user_id=user.id, course=course)
    return service.attempt_dict(attempt, hide_answers=attempt.lesson_id in hidden)


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
    return stats_service.lesson_stats(session, lesson=lesson)
