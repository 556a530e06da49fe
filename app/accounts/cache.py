"""Bearer token → the user's frozen Principal for a few seconds, so the hot API path skips the DB.

Logout and account deletion on this instance drop entries at once; another instance's logout
takes effect here within `ttl` seconds (5 by default). Expiry is checked on every hit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from ..models import utcnow

if TYPE_CHECKING:
    from .deps import Principal


class TokenCache:
    def __init__(self, *, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, datetime, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(self._key(token))
        if entry is None:
            return None
        user, expires_at, cached_at = entry
        if time.monotonic() - cached_at > self.ttl or expires_at <= utcnow():
            self.discard(token)
            return None
        return user

    def put(self, token: str, user: Principal, expires_at: datetime) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._key(token)] = (user, expires_at, time.monotonic())

    def discard(self, token: str) -> None:
        with self._lock:
            self._entries.pop(self._key(token), None)

    def discard_user(self, user_id: int) -> None:
        with self._lock:
            for key in [k for k, (u, _, _) in self._entries.items() if u.id == user_id]:
                del self._entries[key]
