"""Annotated dependency aliases shared by the routers.

Cheap dependencies are `async def`: a sync one costs a thread-pool hop on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from .accounts.service import token_owner, user_for_session
from .config import Settings
from .content import Course, Lesson
from .models import User
from .root_path import route_path
from .security import csrf_ok, raw_header, read_cookie


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_course(request: Request) -> Course:
    return request.app.state.course


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
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


def resolve_user(db, *, token: str | None, cookie: str | None) -> User | None | bool:
    """The user of a bearer token (False when the token is bad) or else of a session cookie."""
    with db.session() as session:
        if token:
            owner = token_owner(session, token=token)
            if owner is None:
                return False
            db.token_cache.put(token, *owner)
            return owner[0]
        return user_for_session(session, token=cookie) if cookie else None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, token = (raw_header(request.scope, b"authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def user_of(request: Request) -> User | None:
    """The user of a bearer token (a bad one is 401) or else of the session cookie, or None.

    Guests (no credential) never touch the database or the thread pool, nor do recently seen
    bearer tokens (TokenCache); otherwise the lookup runs in the thread pool with its own short
    session, once per request (kept on request.state).
    """
    # the dict behind request.state, used directly: the wrapper's attribute misses cost more
    # than a guest's whole check
    state = request.scope.setdefault("state", {})
    if "user" in state:
        return state["user"]
    token = bearer_token(request)
    cookie = read_cookie(request.scope, SESSION_COOKIE)
    db = request.app.state.db
    user = db.token_cache.get(token) if token else None  # the hot API path: no thread hop
    if user is None and (token or cookie):
        user = await run_in_threadpool(resolve_user, db, token=token, cookie=cookie)
    if user is False:
        raise HTTPException(
            status_code=401,
            detail="invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    state["auth"] = auth = ("token" if token else "session") if user else None
    state["user"] = user
    if auth == "session" and _unsafe_api_call(request):
        # A cookie rides along with any request the browser makes; a header does not: an API
        # write authenticated by the session cookie must also carry the page's CSRF token.
        token_header = request.headers.get(CSRF_HEADER)
        if not csrf_ok(request.app.state.secret, request.state.visitor, token_header):
            raise HTTPException(
                status_code=403,
                detail=f"an API write signed in by cookie needs the {CSRF_HEADER} header "
                "(the csrf_token of any page's form); API clients should use a bearer token",
            )
    return user


CSRF_HEADER = "X-CSRF-Token"


def _unsafe_api_call(request: Request) -> bool:
    path = route_path(request.scope)
    return request.method not in ("GET", "HEAD", "OPTIONS") and path.startswith("/api/")


async def get_optional_user(
    request: Request, _token: Annotated[str | None, Depends(oauth2_scheme)]
) -> User | None:
    """`user_of` as a dependency; the OAuth2 scheme makes /docs offer "Authorize"."""
    return await user_of(request)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    """The signed-in user, or 401."""
    if user is None:
        raise HTTPException(
            status_code=401, detail="not signed in", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_instructor(user: CurrentUser) -> User:
    """The signed-in instructor: 401 anonymous, 403 anyone else."""
    if user.role != "instructor":
        raise HTTPException(status_code=403, detail="instructors only")
    return user


InstructorUser = Annotated[User, Depends(get_instructor)]
