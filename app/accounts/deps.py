"""Who is asking: the signed-in user of a bearer token or the session cookie, as dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from ..db import Database
from ..models import User
from ..root_path import route_path
from ..web.security import SESSION_COOKIE, csrf_ok, raw_header, read_cookie
from .cache import TokenCache
from .service import token_owner, user_for_session

CSRF_HEADER = "X-CSRF-Token"
#: Shown by /docs "Authorize"; auto_error=False so a missing token can fall back to the cookie.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as a request sees it: plain values, safe to cache and share."""

    id: int
    username: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(id=user.id, username=user.username, role=user.role, created_at=user.created_at)


def resolve_user(
    db: Database, tokens: TokenCache, *, token: str | None, cookie: str | None
) -> Principal | None | bool:
    """The user of a bearer token (False when the token is bad) or else of a session cookie."""
    with db.session() as session:
        if token:
            owner = token_owner(session, token=token)
            if owner is None:
                return False
            principal = Principal.of(owner[0])
            tokens.put(token, principal, owner[1])
            return principal
        user = user_for_session(session, token=cookie) if cookie else None
        return Principal.of(user) if user else None


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, token = (raw_header(request.scope, b"authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def user_of(request: Request) -> Principal | None:
    """The user of a bearer token (a bad one is 401) or else of the session cookie, or None.

    Guests (no credential) never touch the database, nor do recently seen bearer tokens
    (TokenCache); otherwise the lookup runs in the thread pool, once per request.
    """
    state = request.state
    if hasattr(state, "user"):
        return state.user
    token = bearer_token(request)
    cookie = read_cookie(request.scope, SESSION_COOKIE)
    tokens: TokenCache = request.app.state.token_cache
    user = tokens.get(token) if token else None
    if user is None and (token or cookie):
        user = await run_in_threadpool(
            resolve_user, request.app.state.db, tokens, token=token, cookie=cookie
        )
    if user is False:
        raise HTTPException(
            status_code=401,
            detail="invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    state.auth = ("token" if token else "session") if user else None
    state.user = user
    if state.auth == "session" and _unsafe_api_call(request):
        # A cookie rides along with any request the browser makes; a header does not: an API
        # write authenticated by the session cookie must also carry the page's CSRF token.
        token_header = request.headers.get(CSRF_HEADER)
        if not csrf_ok(request.app.state.secret, request.state.csrf_subject, token_header):
            raise HTTPException(
                status_code=403,
                detail=f"an API write signed in by cookie needs the {CSRF_HEADER} header "
                "(the csrf_token of any page's form); API clients should use a bearer token",
            )
    return user


def _unsafe_api_call(request: Request) -> bool:
    path = route_path(request.scope)
    return request.method not in ("GET", "HEAD", "OPTIONS") and path.startswith("/api/")


async def get_optional_user(
    request: Request, _token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal | None:
    """`user_of` as a dependency; the OAuth2 scheme makes /docs offer "Authorize"."""
    return await user_of(request)


OptionalUser = Annotated[Principal | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> Principal:
    """The signed-in user, or 401."""
    if user is None:
        raise HTTPException(
            status_code=401, detail="not signed in", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def get_instructor(user: CurrentUser) -> Principal:
    """The signed-in instructor: 401 anonymous, 403 anyone else."""
    if user.role != "instructor":
        raise HTTPException(status_code=403, detail="instructors only")
    return user


InstructorUser = Annotated[Principal, Depends(get_instructor)]
