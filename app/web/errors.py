"""Error answers for every route: JSON for API clients, a page for people, never a traceback."""

from __future__ import annotations

import logging
from contextlib import suppress

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..root_path import route_path
from .templates import render

log = logging.getLogger("backprop")

#: Paths answered in JSON even for errors; everything else is a page for people.
JSON_PREFIXES = ("/api/", "/train", "/healthz", "/readyz", "/metrics", "/openapi.json")


def wants_json(request: Request) -> bool:
    return route_path(request.scope).startswith(JSON_PREFIXES) or request.headers.get(
        "accept", ""
    ).startswith("application/json")


_TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Check your input",
    429: "Too many requests",
}


def error_page(request: Request, status: int, detail: str, headers: dict | None = None):
    """A JSON error for API clients, a styled page for browsers."""
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    response = render(
        request,
        "error.html",
        {"status": status, "title": _TITLES.get(status, "Something went wrong"), "detail": detail},
        status_code=status,
    )
    if headers:
        response.headers.update(headers)
    return response


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"


async def _before_page(request: Request) -> None:
    """Run the app's page hooks (`app.state.page_hooks`: the accounts domain looks the user up
    off the event loop there, before the nav's context processor asks for it)."""
    for hook in getattr(request.app.state, "page_hooks", ()):
        with suppress(StarletteHTTPException):  # a bad token still gets its error page
            await hook(request)


def install_error_handlers(app: FastAPI) -> None:
    """Every error a user can cause becomes a clear 4xx; a bug becomes a 500 with no traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if isinstance(exc.detail, (dict, list)) and wants_json(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        if not wants_json(request):
            await _before_page(request)
        return error_page(request, exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        if wants_json(request):
            errors = [
                {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
            ]
            return JSONResponse(
                {"detail": _validation_message(exc), "errors": errors}, status_code=422
            )
        await _before_page(request)
        return error_page(request, 422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = "internal error; it has been logged"
        if wants_json(request):
            return JSONResponse({"detail": detail}, status_code=500)
        return HTMLResponse(
            "<!doctype html><title>Server error</title><h1>Something went wrong</h1>"
            f"<p>{detail}.</p>",
            status_code=500,
        )
