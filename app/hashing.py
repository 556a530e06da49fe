"""Keyed BLAKE2b from the site secret, shared by cookie signatures and quiz option orders."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=16)
def keyed_hasher(purpose: str, secret: str, digest_size: int) -> Any:
    """A BLAKE2b keyed for one purpose with the key already absorbed: callers `.copy()` it,
    cheaper than keying a new one on every request. (BLAKE2b's keyed mode is a MAC.)"""
    key = hashlib.sha256(f"{purpose}|{secret}".encode()).digest()
    return hashlib.blake2b(key=key, digest_size=digest_size)
