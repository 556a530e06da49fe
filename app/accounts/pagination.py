"""Cursor pagination for `GET /api/me/attempts`: pages of attempts, newest first."""

from __future__ import annotations

import base64
import binascii

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from .schemas import StoredAttemptOut

DEFAULT_LIMIT, MAX_LIMIT = 50, 100
#: An INTEGER on PostgreSQL; no attempt can have a larger id.
MAX_ID = 2**31 - 1


class AttemptPage(BaseModel):
    attempts: list[StoredAttemptOut] = Field(description="Newest first; at most `limit`")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page",
        examples=["YTo0Mg"],
    )


def encode_cursor(last_id: int) -> str:
    """An opaque cursor: the page continues below this attempt id."""
    return base64.urlsafe_b64encode(f"a:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The attempt id inside a cursor this API gave out; anything else is a 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, _, number = text.partition(":")
        last_id = int(number) if prefix == "a" and number.isdigit() else 0
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last_id = 0
    if not 1 <= last_id <= MAX_ID:
        # answered as any other invalid query parameter: {"detail", "errors"}
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "cursor"),
                    "msg": "not a cursor this API gave out (pass a next_cursor)",
                    "type": "value_error",
                }
            ]
        )
    return last_id
