"""Administering accounts (the `backprop user ...` commands) and one-time password-reset links."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..db import begin_write, commit
from ..models import ApiToken, PasswordReset, User, WebSession, utcnow
from .service import get_user_by_name, hash_password, token_digest

ROLES = ("learner", "instructor")
#: How long a reset link works, unless used first.
RESET_LINK_LIFETIME = timedelta(hours=1)


class NoSuchUser(LookupError):
    """No account has that username (in any case)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"no user called {username!r}")
        self.username = username


class InvalidResetLink(Exception):
    """The link is unknown, expired or already used: indistinguishable on purpose."""


def _user(session: Session, username: str) -> User:
    user = get_user_by_name(session, username=username) if len(username) <= 256 else None
    if user is None:
        raise NoSuchUser(username)
    return user


def list_users(session: Session, *, role: str | None = None) -> Sequence[User]:
    """Every user (or those of one role), oldest first."""
    query = select(User).order_by(User.id)
    if role is not None:
        query = query.where(User.role == role)
    return session.scalars(query).all()


def set_role(session: Session, *, username: str, role: str) -> User:
    """Make a user a learner or an instructor; NoSuchUser, or ValueError for another role."""
    if role not in ROLES:
        raise ValueError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
    begin_write(session)
    user = _user(session, username)
    user.role = role
    commit(session)
    return user


def _sign_out_everywhere(session: Session, user_id: int) -> None:
    """Delete every browser session, API token and reset link of the user (in the caller's
    write transaction)."""
    for model in (WebSession, ApiToken, PasswordReset):
        session.execute(delete(model).where(model.user_id == user_id))


def set_password(session: Session, *, username: str, password: str) -> User:
    """A new password for a user, who is signed out everywhere (sessions, tokens, reset links)."""
    password_hash = hash_password(password)  # before the write lock: hashing takes ~0.1 s
    begin_write(session)
    user = _user(session, username)
    user.password_hash = password_hash
    _sign_out_everywhere(session, user.id)
    commit(session)
    return user


def delete_user(session: Session, *, username: str) -> User:
    """Delete a user and, by cascade, everything of theirs; the deleted user is returned."""
    begin_write(session)
    user = _user(session, username)
    session.execute(delete(User).where(User.id == user.id))
    commit(session)
    return user


def create_reset_link(
    session: Session, *, username: str, now: datetime | None = None
) -> tuple[str, datetime]:
    """A new one-time reset token for the user and its expiry; only its SHA-256 is stored, and
    any earlier link of theirs stops working (only the newest one is ever valid)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    begin_write(session)
    user = _user(session, username)
    session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id))
    expires_at = now + RESET_LINK_LIFETIME
    session.add(
        PasswordReset(
            token_hash=token_digest(token), user_id=user.id, created_at=now, expires_at=expires_at
        )
    )
    commit(session)
    return token, expires_at


def reset_link_user(session: Session, *, token: str) -> User | None:
    """The user a live reset link is for, or None (unknown, expired or used)."""
    if not token or len(token) > 100:
        return None
    return session.scalar(
        select(User)
        .join(PasswordReset, PasswordReset.user_id == User.id)
        .where(PasswordReset.token_hash == token_digest(token), PasswordReset.expires_at > utcnow())
    )


def use_reset_link(session: Session, *, token: str, password: str) -> User:
    """Set the password of the link's user, then end the link and every session and token of
    theirs, in one transaction; InvalidResetLink if the link is not live (a second use too)."""
    password_hash = hash_password(password)
    if not token or len(token) > 100:
        raise InvalidResetLink()
    begin_write(session)
    # Deleting the link is what claims it: of two requests using it at once, only one deletes
    # the row (the other, on PostgreSQL, waits for that commit and then deletes nothing).
    user_id = session.scalar(
        delete(PasswordReset)
        .where(PasswordReset.token_hash == token_digest(token), PasswordReset.expires_at > utcnow())
        .returning(PasswordReset.user_id)
    )
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        session.rollback()
        raise InvalidResetLink()
    user.password_hash = password_hash
    _sign_out_everywhere(session, user.id)
    commit(session)
    return user
