"""Limits on what accounts cost: login throttling, sign-ups per address, password-hash slots.

Login attempts are counted before the slow hash, in the same write transaction as the check
(BEGIN IMMEDIATE on SQLite; advisory locks on PostgreSQL), so a burst cannot slip more than the
limit past the check while earlier attempts are still being verified. An attempt is stored as a
failure up front and deleted if the password turns out right.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from ..db import begin_write, commit
from ..models import LoginFailure, SignUp, utcnow

#: Failures in a window: for one username from one address, and from one address in all.
PAIR_LIMIT = 10
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
#: From this many failures for one username (from anywhere), an address that has failed for it
#: waits 1 s after its last failure, then 2 s, 4 s... (one doubling per further failure, at
#: most WINDOW): a username under attack slows down for the attackers only, and an address that
#: has not failed for it still signs in at once.
USERNAME_ALERT = 10
SIGN_UP_WINDOW = timedelta(hours=1)


class Throttled(Exception):
    """Too many attempts; try again in `retry_after` seconds."""

    def __init__(self, retry_after: float, reason: str) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"{reason}; try again in {self.retry_after} s")


class HashingBusy(Exception):
    """Every password-hashing slot is taken and the waiting line is full (answered 503)."""

    retry_after = 1


class HashGate:
    """At most `slots` password hashes at once in this process (each takes about 64 MiB and a
    core for a tenth of a second); `waiting` more wait up to `wait_s`, the rest are refused."""

    def __init__(self, slots: int, waiting: int, wait_s: float) -> None:
        self.slots = slots
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = 0
        self._limit = slots + waiting
        self._lock = threading.Lock()
        self.wait_s = wait_s

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self._limit:
                raise HashingBusy()
            self._admitted += 1
        try:
            if not self._running.acquire(timeout=self.wait_s):
                raise HashingBusy()
            try:
                yield
            finally:
                self._running.release()
        finally:
            with self._lock:
                self._admitted -= 1


CORES = os.cpu_count() or 1
#: The process's gate: one hash per core, four per core waiting (a waiter holds a thread of the
#: server's pool, and pages need those too).
hash_gate = HashGate(CORES, waiting=4 * CORES, wait_s=5.0)


def _lock(session: Session, *names: str) -> None:
    """On PostgreSQL, transaction-scoped advisory locks on these names, always in one order (no
    deadlock); SQLite's BEGIN IMMEDIATE already lets one writer in at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted(
        int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        for name in names
    )
    for key in keys:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _recent(session: Session, *conditions, since: datetime, limit: int) -> list[datetime]:
    """The newest `limit` failure times matching the conditions, newest first."""
    return list(
        session.scalars(
            select(LoginFailure.created_at)
            .where(*conditions, LoginFailure.created_at > since)
            .order_by(LoginFailure.created_at.desc())
            .limit(limit)
        )
    )


def reserve_login(session: Session, *, username_key: str, address: str) -> int:
    """Check the limits and, in the same transaction, count this attempt as a failure; returns
    the row's id (delete it with `login_succeeded` or `forget_attempt`). Throttled if over."""
    begin_write(session)
    _lock(session, f"login-user|{username_key}", f"login-address|{address}")
    now = utcnow()
    since = now - WINDOW
    # keep the table small: failures outside the window no longer count
    session.execute(delete(LoginFailure).where(LoginFailure.created_at <= since))
    same_user = LoginFailure.username_key == username_key
    same_address = LoginFailure.address == address
    pair = _recent(session, same_user, same_address, since=since, limit=PAIR_LIMIT)
    waits: list[tuple[float, str]] = []
    if len(pair) >= PAIR_LIMIT:
        # once the PAIR_LIMIT-th most recent failure leaves the window, one more try is due
        wait = (pair[-1] + WINDOW - now).total_seconds()
        waits.append((wait, "too many failed logins for this username from your address"))
    from_address = _recent(session, same_address, since=since, limit=ADDRESS_LIMIT)
    if len(from_address) >= ADDRESS_LIMIT:
        wait = (from_address[-1] + WINDOW - now).total_seconds()
        waits.append((wait, "too many failed logins from your address"))
    if pair and not waits:
        failures = session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(same_user, LoginFailure.created_at > since)
        )
        if failures >= USERNAME_ALERT:
            delay = min(WINDOW.total_seconds(), 2.0 ** min(failures - USERNAME_ALERT, 20))
            wait = (pair[0] + timedelta(seconds=delay) - now).total_seconds()
            if wait > 0:
                waits.append((wait, "this username is under attack and your address failed"))
    if waits:
        session.rollback()
        raise Throttled(*max(waits))
    row = LoginFailure(username_key=username_key, address=address, created_at=now)
    session.add(row)
    session.flush()
    commit(session)
    return row.id


def login_succeeded(session: Session, *, attempt_id: int, username_key: str, address: str) -> None:
    """The password was right: this attempt and the address's failures for the user are void."""
    begin_write(session)
    session.execute(
        delete(LoginFailure).where(
            (LoginFailure.id == attempt_id)
            | ((LoginFailure.username_key == username_key) & (LoginFailure.address == address))
        )
    )
    commit(session)


def forget_attempt(session: Session, *, attempt_id: int) -> None:
    """The attempt never reached verification (no hashing slot): it does not count."""
    begin_write(session)
    session.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
    commit(session)


def reserve_sign_up(session: Session, *, address: str, per_hour: int) -> int:
    """Count a sign-up from this address, or Throttled past `per_hour` in the last hour; returns
    the row's id (`forget_sign_up` voids it)."""
    begin_write(session)
    _lock(session, f"sign-up|{address}")
    now = utcnow()
    session.execute(delete(SignUp).where(SignUp.created_at <= now - SIGN_UP_WINDOW))
    recent = list(
        session.scalars(
            select(SignUp.created_at)
            .where(SignUp.address == address, SignUp.created_at > now - SIGN_UP_WINDOW)
            .order_by(SignUp.created_at.desc())
            .limit(per_hour)
        )
    )
    if len(recent) >= per_hour:
        session.rollback()
        wait = (recent[-1] + SIGN_UP_WINDOW - now).total_seconds()
        raise Throttled(wait, f"at most {per_hour} sign-ups an hour from one address")
    row = SignUp(address=address, created_at=now)
    session.add(row)
    session.flush()
    commit(session)
    return row.id


def forget_sign_up(session: Session, *, sign_up_id: int) -> None:
    begin_write(session)
    session.execute(delete(SignUp).where(SignUp.id == sign_up_id))
    commit(session)
