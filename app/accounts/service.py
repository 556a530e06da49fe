"""Users, passwords, browser sessions, API tokens and login throttling (no web framework here)."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..db import begin_write, commit
from ..models import ApiToken, LessonProgress, LoginFailure, QuizAttempt, User, WebSession, utcnow

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 256
THROTTLE_LIMIT = 10
THROTTLE_WINDOW = timedelta(minutes=15)

#: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()
#: verified against when the username is unknown, so that costs what a wrong password costs
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UsernameTaken(Exception):
    """The (case-insensitive) username already exists."""


class InvalidCredentials(Exception):
    """Unknown user or wrong password: deliberately indistinguishable."""


class Throttled(Exception):
    """Too many failed logins for this username or address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def username_key(username: str) -> str:
    """The case-insensitive lookup key. NUL, which no username may contain and PostgreSQL refuses
    in text, becomes U+FFFD so that a login attempt with it is simply a wrong one."""
    return username.strip().lower()[:256].replace("\x00", "\ufffd")


def credential_problem(username: str, password: str) -> str | None:
    """Why a registration would be refused, or None (the same rules as the API's schema)."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        return "Usernames are 3–32 letters, digits, dots, dashes or underscores."
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"Passwords are {PASSWORD_MIN} to {PASSWORD_MAX} characters long."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users ------------------------------------------------------------------------------------


def create_user(session: Session, *, username: str, password: str, role: str = "learner") -> User:
    """Store a new user with an argon2id hash; UsernameTaken if the name exists in any case."""
    password_hash = hash_password(password)  # before the write lock: hashing takes ~0.1 s
    begin_write(session)
    user = User(username=username, username_key=username_key(username), password_hash=password_hash)
    user.role = role
    session.add(user)
    try:
        session.flush()
        commit(session)
    except IntegrityError as exc:
        session.rollback()
        raise UsernameTaken(username) from exc
    return user


def get_user_by_name(session: Session, *, username: str) -> User | None:
    return session.scalar(select(User).where(User.username_key == username_key(username)))


def delete_user(session: Session, *, user_id: int) -> None:
    """Delete a user and, by cascade, their sessions, tokens, attempts and progress."""
    begin_write(session)
    session.execute(delete(User).where(User.id == user_id))
    commit(session)


# --- login throttling -------------------------------------------------------------------------


def throttle_retry_after(
    session: Session, *, username: str, address: str, now: datetime | None = None
) -> int | None:
    """Seconds until another login may be tried, or None when neither counter is at the limit."""
    now = now or utcnow()
    waits = []
    for column, value in (
        (LoginFailure.username_key, username_key(username)),
        (LoginFailure.address, address),
    ):
        recent = session.scalars(
            select(LoginFailure.created_at)
            .where(column == value, LoginFailure.created_at > now - THROTTLE_WINDOW)
            .order_by(LoginFailure.created_at.desc())
            .limit(THROTTLE_LIMIT)
        ).all()
        if len(recent) >= THROTTLE_LIMIT:
            # once the THROTTLE_LIMIT-th most recent failure leaves the window, one more try is due
            waits.append(math.ceil((recent[-1] + THROTTLE_WINDOW - now).total_seconds()))
    return max(1, max(waits)) if waits else None


def record_failure(session: Session, *, username: str, address: str) -> None:
    begin_write(session)
    now = utcnow()
    session.add(LoginFailure(username_key=username_key(username), address=address, created_at=now))
    # keep the table small: failures outside the window no longer count
    session.execute(delete(LoginFailure).where(LoginFailure.created_at <= now - THROTTLE_WINDOW))
    commit(session)


def authenticate(session: Session, *, username: str, password: str, address: str) -> User:
    """The user for these credentials, else InvalidCredentials (or Throttled, checked first)."""
    retry_after = throttle_retry_after(session, username=username, address=address)
    if retry_after is not None:
        raise Throttled(retry_after)
    user = get_user_by_name(session, username=username) if len(username) <= 256 else None
    session.commit()  # end the read before the slow hash: no snapshot or lock held meanwhile
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password[:PASSWORD_MAX])
    if not ok or user is None or len(password) > PASSWORD_MAX:
        record_failure(session, username=username, address=address)
        raise InvalidCredentials()
    return user


# --- browser sessions and API tokens ----------------------------------------------------------


def _purge_expired(
    session: Session, model: type[WebSession] | type[ApiToken], *, user_id: int, now: datetime
) -> None:
    """A user's expired sessions (or tokens) are of no further use: drop them as new ones are
    issued, so each table stays as small as its live credentials."""
    session.execute(delete(model).where(model.user_id == user_id, model.expires_at <= now))


def create_session(
    session: Session, *, user_id: int, days: int, replace_token: str | None = None
) -> str:
    """A new random session id for the user (the old one, if any, is deleted: no fixation)."""
    token = secrets.token_urlsafe(32)
    begin_write(session)
    if replace_token:
        session.execute(delete(WebSession).where(WebSession.token_hash == _digest(replace_token)))
    now = utcnow()
    _purge_expired(session, WebSession, user_id=user_id, now=now)
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    commit(session)
    return token


def user_for_session(session: Session, *, token: str) -> User | None:
    if not token or len(token) > 100:
        return None
    return session.scalar(
        select(User)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.token_hash == _digest(token), WebSession.expires_at > utcnow())
    )


def delete_session(session: Session, *, token: str) -> None:
    begin_write(session)
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
    commit(session)


def create_token(session: Session, *, user_id: int, days: int) -> tuple[str, datetime]:
    """A new random bearer token and its expiry; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    begin_write(session)
    now = utcnow()
    expires_at = now + timedelta(days=days)
    session.add(
        ApiToken(token_hash=_digest(token), user_id=user_id, created_at=now, expires_at=expires_at)
    )
    _purge_expired(session, ApiToken, user_id=user_id, now=now)
    commit(session)
    return token, expires_at


def token_owner(session: Session, *, token: str) -> tuple[User, datetime] | None:
    """The user of a live (unexpired, unrevoked) token and when it expires, or None."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(User, ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _digest(token), ApiToken.expires_at > utcnow())
    ).first()
    return (row[0], row[1]) if row else None


def revoke_token(session: Session, *, token: str) -> None:
    begin_write(session)
    session.execute(delete(ApiToken).where(ApiToken.token_hash == _digest(token)))
    commit(session)


# --- export -----------------------------------------------------------------------------------


def export_user(session: Session, *, user_id: int, hidden: Collection[str] = ()) -> dict[str, Any]:
    """Everything stored about one user, as JSON-ready data (no password or token hashes); the
    right answers of attempts at the `hidden` lessons are left out (see attempt_dict)."""
    user = session.get(User, user_id)
    if user is None:
        return {}
    attempts = session.scalars(
        select(QuizAttempt)
        .where(QuizAttempt.user_id == user_id)
        .options(selectinload(QuizAttempt.answers))
        .order_by(QuizAttempt.id)
    ).all()
    progress = session.scalars(
        select(LessonProgress)
        .where(LessonProgress.user_id == user_id)
        .order_by(LessonProgress.started_at, LessonProgress.lesson_id)
    ).all()
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)).all()
    sessions = session.scalars(select(WebSession).where(WebSession.user_id == user_id)).all()
    failures = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.username_key == user.username_key)
    )
    return {
        "user": {
            "id": user.id,
            "username": user.username,
            "role": user.role,
            "created_at": user.created_at.isoformat(),
        },
        "progress": [
            {
                "lesson_id": p.lesson_id,
                "status": p.status,
                "attempts": p.attempts,
                "best_percent": p.best_percent,
                "started_at": p.started_at.isoformat(),
                "completed_at": p.completed_at.isoformat() if p.completed_at else None,
            }
            for p in progress
        ],
        "attempts": [attempt_dict(a, hide_answers=a.lesson_id in hidden) for a in attempts],
        "api_tokens": [
            {"created_at": t.created_at.isoformat(), "expires_at": t.expires_at.isoformat()}
            for t in tokens
        ],
        "sessions": [
            {"created_at": s.created_at.isoformat(), "expires_at": s.expires_at.isoformat()}
            for s in sessions
        ],
        "recent_failed_logins": failures or 0,
    }


def attempt_dict(attempt: QuizAttempt, *, hide_answers: bool = False) -> dict[str, Any]:
    """One attempt with its typed answers, as the API returns it (in the content's ids); with
    `hide_answers`, without what was right (the lesson's reviewAnswers does not show it)."""
    return {
        "id": attempt.id,
        "lesson_id": attempt.lesson_id,
        "score": attempt.score,
        "total": attempt.total,
        "percent": attempt.percent,
        "passed": attempt.passed,
        "created_at": attempt.created_at.isoformat(),
        "answers": [
            {
                "question_id": a.question_id,
                "type": a.type,
                "answer": a.answer,
                "correct_answer": None if hide_answers else a.correct_answer,
                "selected_option_id": a.selected_option_id,
                "correct_option_id": None if hide_answers else a.correct_option_id,
                "correct": a.correct,
            }
            for a in attempt.answers
        ],
    }
