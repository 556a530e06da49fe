"""HTML rendering shared by every domain's pages: one Jinja environment, the request context."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from ..root_path import app_root


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
