"""The browser session cookie, set and cleared with the same flags everywhere."""

from __future__ import annotations

from fastapi import Request, Response

from ..root_path import app_root
from .deps import SESSION_COOKIE


def _flags(request: Request) -> dict:
    # HttpOnly: no script reads it; Lax: not sent on cross-site posts; Secure over https.
    return {
        "path": app_root(request.scope) + "/",  # only this site's pages, under ROOT_PATH
        "httponly": True,
        "samesite": "lax",
        "secure": request.url.scheme == "https",
    }


def set_session_cookie(request: Request, response: Response, token: str, days: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=days * 86400, **_flags(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, **_flags(request))
