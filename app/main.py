"""The application factory: `create_app(settings)` builds a complete, independent Backprop site."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from . import __version__
from .accounts.api import router as accounts_api
from .accounts.cache import TokenCache
from .accounts.deps import user_of
from .accounts.pages import pages as account_pages
from .accounts.pages import user_context
from .accounts.reset import pages as reset_pages
from .config import Settings, get_settings, settings_problems
from .content import load_course, log_problems
from .content.cache import render_cache_dir
from .db import Database, current_revision, upgrade
from .health import router as health_api
from .lessons.routes import api as lessons_api
from .lessons.routes import pages as lesson_pages
from .logs import RequestLog, configure_logging
from .metrics import (
    CONTENT_ERRORS,
    FLUSH_SECONDS,
    LESSONS,
    RequestMetrics,
    multiprocess_mode,
    process_exited,
    training_load,
)
from .metrics import router as metrics_api
from .models import utcnow
from .openapi import TAGS, operation_id, polish, under_root
from .quizzes.routes import api as quizzes_api
from .quizzes.routes import pages as quiz_pages
from .review.routes import api as review_api
from .review.routes import pages as review_pages
from .root_path import RootPath, app_root, site_url
from .training.backend import make_backend
from .training.figures import RunStore, run_validator, runs_cache_dir
from .training.routes import api as training_api
from .training.routes import pages as training_pages
from .training.takeaway import api as takeaway_api
from .training.takeaway import body_limits as training_body_limits
from .web.errors import install_error_handlers
from .web.security import SecurityMiddleware
from .web.templates import make_templates, render

log = logging.getLogger("backprop")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load and validate the course once, then wire the routers; nothing is parsed per request.

    Lesson bodies are read from the render cache or rendered on their first use.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # first: a refused key stops the start before any lesson is read or the database touched
    secret = settings.resolved_secret_key()
    cache_dir = render_cache_dir(settings.make_data_dir())
    course = load_course(
        settings.content_dir,
        cache_dir=cache_dir,
        lazy=True,
        validate_run=run_validator(settings.train_work_budget),
    )
    log_problems(course)
    # every error leaves its file out; a missing folder is an error of no file
    skipped = len({p.path for p in course.errors}) if settings.content_dir.is_dir() else 0
    log.info(
        "serving %d lessons from %s%s",
        len(course.lessons),
        settings.content_dir,
        f" ({skipped} files skipped with errors)" if skipped else "",
    )

    # the schema is brought to Alembic head before serving: a fresh machine needs no extra command
    db = Database.open(settings.resolved_database_url())
    upgrade(db.engine)
    LESSONS.set(len(course.lessons))
    CONTENT_ERRORS.set(skipped)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """On shutdown: stop the training backend (processes or connections) and the database.

        With several workers, each flushes its request counts to the shared metrics files
        every second meanwhile, and once more on its way out.
        """
        flushing = None
        if settings.metrics_enabled and multiprocess_mode():
            flushing = asyncio.ensure_future(_flush_request_metrics(app))
        yield
        if flushing is not None:
            flushing.cancel()
        counted = getattr(app.state, "request_metrics", None)
        if counted is not None:
            counted.flush()
        await app.state.training.aclose()
        db.close()
        process_exited()

    app = FastAPI(
        title="Backprop",
        summary="Lessons, server-graded quizzes and a live NumPy training service.",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, with the root path in it
        lifespan=lifespan,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.course = course
    #: what `backprop check --run` measured for each claim (the lesson pages show it)
    app.state.run_store = RunStore(runs_cache_dir(settings.data_dir))
    app.state.templates = make_templates(settings.templates_dir, settings.static_dir)
    app.state.context_processors = [user_context]
    #: awaited before an error page renders: the nav's user is looked up off the event loop
    app.state.page_hooks = [user_of]
    #: bearer token → user for a few seconds (app/accounts/cache.py)
    app.state.token_cache = TokenCache()
    app.state.db = db
    #: where /train's runs train: this server's processes, or the queue (TRAINING_BACKEND)
    app.state.training = make_backend(settings, training_load)
    #: what /readyz expects the database to be at
    app.state.schema_revision = current_revision(db.engine)
    app.state.secret = secret
    #: what "now" is for review scheduling and stored attempts (aware UTC; tests set their own)
    app.state.clock = utcnow

    # Wrapped around the whole stack rather than added with add_middleware, which would put it
    # inside Starlette's ServerErrorMiddleware: a 500 then went out without these headers (and
    # unlogged by RequestLog and uncounted by RequestMetrics, which time everything inside).
    build_stack = app.build_middleware_stack

    def middleware_stack() -> Any:
        stack = SecurityMiddleware(
            build_stack(),
            secret=secret,
            max_body_bytes=settings.max_body_bytes,
            hsts_seconds=settings.hsts_seconds,
            body_limits=training_body_limits(settings.max_body_bytes),
        )
        if settings.metrics_enabled:
            stack = app.state.request_metrics = RequestMetrics(stack)
        stack = RequestLog(stack)
        # outermost: everything inside sees the full path and the prefix (app/root_path.py)
        return RootPath(stack, settings.root_path) if settings.root_path else stack

    app.build_middleware_stack = middleware_stack  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    install_error_handlers(app)

    # Routes match in order: the probes (cheap, polled often), then the busiest pages.
    add_routes(
        app,
        health_api,
        lesson_pages,
        lessons_api,
        quizzes_api,
        quiz_pages,
        training_api,
        takeaway_api,
        training_pages,
        accounts_api,
        account_pages,
        review_api,
        review_pages,
        reset_pages,
        metrics_api,
    )

    def openapi() -> dict[str, Any]:
        """FastAPI's schema (built once, kept by FastAPI), polished (app/openapi.py)."""
        return polish(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(under_root(app.openapi(), app_root(request.scope)))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon(request: Request) -> RedirectResponse:
        return RedirectResponse(site_url(request.scope, "/static/favicon.svg"), status_code=301)

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        await user_of(request)  # in the thread pool, before the nav's context processor asks
        return render(request, "docs.html")

    return app


async def _flush_request_metrics(app: FastAPI) -> None:
    """Flush the app's request counts every FLUSH_SECONDS (the stack is built on first use)."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        counted = getattr(app.state, "request_metrics", None)
        if counted is not None:
            counted.flush()


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Add the routers' routes to the app's own table, in order: one flat list to match.

    `include_router` keeps each router as a branch that FastAPI matches anew on every request;
    the routes these routers hold are complete already (prefix, tags and responses applied when
    they were declared), so one table is all the matching needs.
    """
    for router in routers:
        app.router.routes.extend(router.routes)


def __getattr__(name: str) -> Any:
    """`app.main:app` for uvicorn, built on first access so importing the module has no effects."""
    if name == "app":
        try:
            instance = create_app()
        except Exception as exc:
            problems = settings_problems(exc)
            if problems is None:
                raise
            # uvicorn answers this error with one line ("Error loading ASGI app. ...") and exit
            # code 3, which also stops a --workers supervisor instead of restarting the worker
            from uvicorn.importer import ImportFromStringError

            raise ImportFromStringError("; ".join(f"backprop: {p}" for p in problems)) from None
        globals()["app"] = instance
        # The course and the imports live as long as the process: moving them out of the
        # collector's reach keeps full collections (and tail latency) short.
        gc.freeze()
        return instance
    raise AttributeError(name)
