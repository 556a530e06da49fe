"""The page a one-time reset link opens: `GET/POST /reset/{token}`, a plain form (no script)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ..web.deps import SessionDep
from ..web.templates import render
from . import admin, limits, service
from .api import hashing_busy
from .pages import require_csrf

pages = APIRouter(include_in_schema=False)

TEMPLATE = "accounts/reset.html"


@pages.get("/reset/{token}", response_class=HTMLResponse)
def reset_page(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    """The form for a live link; for any other, a page saying it does not work (404)."""
    user = admin.reset_link_user(session, token=token)
    if user is None:
        return render(request, TEMPLATE, {}, status_code=404)
    return render(request, TEMPLATE, {"token": token, "username": user.username})


@pages.post("/reset/{token}", response_class=HTMLResponse)
def reset_submit(
    request: Request,
    token: str,
    session: SessionDep,
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Set the password (the rules of registration), then end the link, sessions and tokens."""
    require_csrf(request, csrf_token)
    user = admin.reset_link_user(session, token=token)
    if user is None:
        return render(request, TEMPLATE, {}, status_code=404)
    problem = service.credential_problem(user.username, password)
    if problem:
        context = {"token": token, "username": user.username, "error": problem}
        return render(request, TEMPLATE, context, status_code=422)
    try:
        user = admin.use_reset_link(session, token=token, password=password)
    except admin.InvalidResetLink:  # used by another request in the meantime
        return render(request, TEMPLATE, {}, status_code=404)
    except limits.HashingBusy:
        raise hashing_busy() from None
    request.app.state.token_cache.discard_user(user.id)
    return render(request, TEMPLATE, {"done": True, "username": user.username})
