"""HTML rendering and error pages shared by every domain's router."""

from __future__ import annotations

import hashlib
import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .deps import user_of
from .root_path import app_root, route_path

log = logging.getLogger("backprop")

#: Paths answered in JSON even for errors; everything else is a page for people.
JSON_PREFIXES = ("/api/", "/train", "/healthz", "/readyz", "/metrics", "/openapi.json")


def asset_version(static_dir: Path) -> str:
    """A short hash of the static files, appended to their URLs so browsers never run stale JS."""
    digest = hashlib.sha256()
    for path in sorted(static_dir.rglob("*")):
        if path.is_file() and "vendor" not in path.parts:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def make_templates(templates_dir: Path, static_dir: Path) -> jinja2.Environment:
    """One Jinja environment per app, autoescaping, compiled templates cached."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["asset_version"] = asset_version(static_dir)
    return env


class _CsrfToken:
    """The request's CSRF token, looked up only if a template prints it: pages without a form
    then neither read nor issue the visitor cookie."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request

    def __html__(self) -> str:
        return self.request.state.csrf_token

    __str__ = __html__


def render_string(request: Request, name: str, context: dict[str, Any] | None = None) -> str:
    """A template rendered with the request's context (CSRF token, context processors)."""
    env: jinja2.Environment = request.app.state.templates
    values = {
        "request": request,
        "csrf_token": _CsrfToken(request),
        "root": app_root(request.scope),  # every link is "{{ root }}/..."
    }
    for processor in request.app.state.context_processors:
        values.update(processor(request))
    if context:
        values.update(context)
    return env.get_template(name).render(values)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page straight from the environment (cheaper than TemplateResponse)."""
    return HTMLResponse(render_string(request, name, context), status_code=status_code)


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


async def _resolve_user(request: Request) -> None:
    """Look up the signed-in user off the event loop before an error page renders its nav
    (the nav's context processor would otherwise query the database on the loop)."""
    with suppress(StarletteHTTPException):  # a bad token still gets its error page
        await user_of(request)


def install_error_handlers(app: FastAPI) -> None:
    """Every error a user can cause becomes a clear 4xx; a bug becomes a 500 with no traceback."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if isinstance(exc.detail, (dict, list)) and wants_json(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        if not wants_json(request):
            await _resolve_user(request)
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
        await _resolve_user(request)
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
