"""Users, passwords, browser sessions and API tokens (no web framework here); the limits on
logins, sign-ups and hashing are in limits.py."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..db import begin_write, commit
from ..models import (
    USER_AGENT_MAX,
    ApiToken,
    LessonProgress,
    LoginFailure,
    QuizAttempt,
    ReviewCard,
    User,
    WebSession,
    utcnow,
)
from . import limits

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
PASSWORD_MIN, PASSWORD_MAX = 8, 256
#: A session's or token's "last used" is written when it is older than this: a write per
#: request would put every page view in the database's one write lane.
LAST_USED_EVERY = timedelta(minutes=5)

#: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()
#: verified against when the username is unknown, so that costs what a wrong password costs
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UsernameTaken(Exception):
    """The (case-insensitive) username already exists."""


class InvalidCredentials(Exception):
    """Unknown user or wrong password: deliberately indistinguishable."""


def username_key(username: str) -> str:
    """The case-insensitive lookup key. NUL, which no username may contain and PostgreSQL refuses
    in text, becomes U+FFFD so that a login attempt with it is simply a wrong one."""
    return username.strip().lower()[:256].replace("\x00", "\ufffd")


def credential_problem(username: str, password: str) -> str | None:
    """Why a registration would be refused, or None (the same rules as the API's schema)."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        return "Usernames are 3–32 letters, digits, dots, dashes or underscores."
    return password_problem(password)


def password_problem(password: str) -> str | None:
    """Why a new password would be refused, or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"Passwords are {PASSWORD_MIN} to {PASSWORD_MAX} characters long."
    return None


def hash_password(password: str) -> str:
    """An argon2id hash, in one of the process's hashing slots (limits.HashingBusy if none)."""
    with limits.hash_gate.slot():
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches, verified in a hashing slot (limits.HashingBusy if none)."""
    with limits.hash_gate.slot():
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def token_digest(token: str) -> str:
    """What the database keeps of a session id or bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def clean_user_agent(value: str | None) -> str | None:
    """A User-Agent header fit to store and show: printable, at most USER_AGENT_MAX long."""
    if not value:
        return None
    printable = "".join(ch for ch in value if ch.isprintable())
    return printable[:USER_AGENT_MAX] or None


# --- users ------------------------------------------------------------------------------------


def create_user(session: Session, *, username: str, password: str, role: str = "learner") -> User:
    """Store a new user with an argon2id hash; UsernameTaken if the name exists in any case."""
    taken = get_user_by_name(session, username=username) is not None
    session.commit()  # end the read: no snapshot held through the hash
    if taken:  # known before paying for a hash
        raise UsernameTaken(username)
    password_hash = hash_password(password)  # before the write lock: hashing is slow
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


def authenticate(session: Session, *, username: str, password: str, address: str) -> User:
    """The user for these credentials, else InvalidCredentials; limits.Throttled (checked and
    counted before any hashing) or limits.HashingBusy."""
    key = username_key(username)
    attempt = limits.reserve_login(session, username_key=key, address=address)
    user = get_user_by_name(session, username=username) if len(username) <= 256 else None
    session.commit()  # end the read before the slow hash: no snapshot or lock held meanwhile
    try:
        ok = verify_password(user.password_hash if user else _DUMMY_HASH, password[:PASSWORD_MAX])
    except limits.HashingBusy:
        limits.forget_attempt(session, attempt_id=attempt)
        raise
    if not ok or user is None or len(password) > PASSWORD_MAX:
        raise InvalidCredentials()  # the attempt stays counted as a failure
    limits.login_succeeded(session, attempt_id=attempt, username_key=key, address=address)
    return user


def change_password(session: Session, *, user_id: int, password: str, keep: str | None) -> int:
    """Set a new password and end every session and token of the user but the one whose digest
    is `keep`; returns how many ended."""
    password_hash = hash_password(password)
    begin_write(session)
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
    ended = _revoke_all(session, user_id=user_id, keep=keep)
    commit(session)
    return ended


# --- browser sessions and API tokens ----------------------------------------------------------


def _purge_expired(
    session: Session, model: type[WebSession] | type[ApiToken], *, user_id: int, now: datetime
) -> None:
    """A user's expired sessions (or tokens) are of no further use: drop them as new ones are
    issued, so each table stays as small as its live credentials."""
    session.execute(delete(model).where(model.user_id == user_id, model.expires_at <= now))


def create_session(
    session: Session,
    *,
    user_id: int,
    days: int,
    replace_token: str | None = None,
    user_agent: str | None = None,
) -> str:
    """A new random session id for the user (the old one, if any, is deleted: no fixation)."""
    token = secrets.token_urlsafe(32)
    begin_write(session)
    if replace_token:
        replaced = WebSession.token_hash == token_digest(replace_token)
        session.execute(delete(WebSession).where(replaced))
    now = utcnow()
    _purge_expired(session, WebSession, user_id=user_id, now=now)
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(days=days),
            last_used_at=now,
            user_agent=clean_user_agent(user_agent),
        )
    )
    commit(session)
    return token


def _touch(session: Session, model: type[WebSession] | type[ApiToken], row_id: int,
           last_used: datetime | None) -> None:  # fmt: skip
    """Note that a session or token was used, unless that was noted a moment ago."""
    now = utcnow()
    if last_used is not None and now - last_used < LAST_USED_EVERY:
        return
    begin_write(session)
    session.execute(update(model).where(model.id == row_id).values(last_used_at=now))
    commit(session)


def user_for_session(session: Session, *, token: str) -> User | None:
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(User, WebSession.id, WebSession.last_used_at)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.token_hash == token_digest(token), WebSession.expires_at > utcnow())
    ).first()
    if row is None:
        return None
    _touch(session, WebSession, row[1], row[2])
    return row[0]


def delete_session(session: Session, *, token: str) -> None:
    begin_write(session)
    session.execute(delete(WebSession).where(WebSession.token_hash == token_digest(token)))
    commit(session)


def create_token(
    session: Session, *, user_id: int, days: int, user_agent: str | None = None
) -> tuple[str, datetime]:
    """A new random bearer token and its expiry; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    begin_write(session)
    now = utcnow()
    expires_at = now + timedelta(days=days)
    session.add(
        ApiToken(
            token_hash=token_digest(token),
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
            last_used_at=now,
            user_agent=clean_user_agent(user_agent),
        )
    )
    _purge_expired(session, ApiToken, user_id=user_id, now=now)
    commit(session)
    return token, expires_at


def token_owner(session: Session, *, token: str) -> tuple[User, datetime] | None:
    """The user of a live (unexpired, unrevoked) token and when it expires, or None."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(User, ApiToken.expires_at, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token), ApiToken.expires_at > utcnow())
    ).first()
    if row is None:
        return None
    _touch(session, ApiToken, row[2], row[3])
    return row[0], row[1]


def revoke_token(session: Session, *, token: str) -> None:
    begin_write(session)
    session.execute(delete(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    commit(session)


#: A credential's public id: its kind and its row's id ("session-12", "token-7").
KINDS: dict[str, type[WebSession] | type[ApiToken]] = {"session": WebSession, "token": ApiToken}


def list_credentials(session: Session, *, user_id: int, current: str | None) -> list[dict]:
    """The user's live sessions and tokens, newest first; `current` is the digest of the one
    making this request."""
    now, found = utcnow(), []
    for kind, model in KINDS.items():
        rows = session.scalars(
            select(model).where(model.user_id == user_id, model.expires_at > now)
        ).all()
        found += [
            {
                "id": f"{kind}-{row.id}",
                "kind": kind,
                "created_at": row.created_at,
                "last_used_at": row.last_used_at,
                "expires_at": row.expires_at,
                "user_agent": row.user_agent,
                "current": row.token_hash == current,
            }
            for row in rows
        ]
    return sorted(found, key=lambda c: (c["created_at"], c["id"]), reverse=True)


def revoke_credential(session: Session, *, user_id: int, credential_id: str) -> bool:
    """End one of the user's sessions or tokens by its public id; False if there is none."""
    kind, _, number = credential_id.partition("-")
    model = KINDS.get(kind)
    if model is None or not number.isdigit() or len(number) > 10:
        return False
    begin_write(session)
    result = session.execute(delete(model).where(model.id == int(number), model.user_id == user_id))
    commit(session)
    return bool(result.rowcount)


def _revoke_all(session: Session, *, user_id: int, keep: str | None) -> int:
    ended = 0
    for model in KINDS.values():
        result = session.execute(
            delete(model).where(model.user_id == user_id, model.token_hash != (keep or ""))
        )
        ended += result.rowcount
    return ended


def revoke_others(session: Session, *, user_id: int, keep: str | None) -> int:
    """End every session and token of the user but the one whose digest is `keep`."""
    begin_write(session)
    ended = _revoke_all(session, user_id=user_id, keep=keep)
    commit(session)
    return ended


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
    cards = session.scalars(
        select(ReviewCard).where(ReviewCard.user_id == user_id).order_by(ReviewCard.question_id)
    ).all()
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
        "review_cards": [_card(c) for c in cards],
        "api_tokens": [_validity(t) for t in tokens],
        "sessions": [_validity(s) for s in sessions],
        "recent_failed_logins": failures or 0,
    }


def _card(card: ReviewCard) -> dict[str, Any]:
    """A review card with its FSRS state (1 learning, 2 review, 3 relearning)."""
    return {
        "lesson_id": card.lesson_id,
        "question_id": card.question_id,
        "state": card.state,
        "step": card.step,
        "stability": card.stability,
        "difficulty": card.difficulty,
        "due": card.due.isoformat(),
        "last_review": card.last_review.isoformat() if card.last_review else None,
        "reviews": card.reviews,
        "lapses": card.lapses,
        "created_at": card.created_at.isoformat(),
    }


def _validity(row: WebSession | ApiToken) -> dict[str, Any]:
    return {
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "user_agent": row.user_agent,
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
